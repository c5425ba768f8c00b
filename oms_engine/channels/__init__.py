"""Channel accounts (shops on channels) and pulling their orders by cursor."""

"""Orders: the state machine, intake and creation, numbering, commands, splitting, queries and explain."""

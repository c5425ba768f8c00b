"""Built-in channels plugins."""

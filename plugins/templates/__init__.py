"""Built-in templates plugins."""

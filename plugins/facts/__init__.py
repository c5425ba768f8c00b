"""Built-in facts plugins."""

"""Built-in connectors plugins."""

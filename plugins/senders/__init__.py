"""Built-in senders plugins."""

"""Messaging: the outbox every side effect leaves through, customer notifications and their templates."""

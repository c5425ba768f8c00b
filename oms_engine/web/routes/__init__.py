"""The admin API's routes, one blueprint per area."""

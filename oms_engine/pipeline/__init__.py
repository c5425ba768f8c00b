"""The pipeline: the runner and one module per stage (timers, tasks, inbox, screen, split, route,
outbox, parents), the plugin context lent to connectors, and holds."""

"""The pipeline: the runner and one module per stage (timers, tasks, inbox, screen, split, route,
documents, outbox, parents), the decision-stage helper, the plugin context lent to connectors, and holds."""

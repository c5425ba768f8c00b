"""Built-in plugins of oms-engine, installed as the package ``oms_plugins``."""

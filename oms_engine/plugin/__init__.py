"""Plugins: the hookspecs, the plugin manager, the registry of named components, the contracts and
views plugins see, parameter helpers, fault containment, and a pytest plugin for plugin authors."""

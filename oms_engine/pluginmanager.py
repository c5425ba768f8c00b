"""The one place that builds the pluggy plugin manager.

Plugins come from, in this order: the built-in modules below, the ``oms``
entry-point group of installed distributions, and the ``plugins:`` list of
config.yaml (importable module names). Environment switches:

``OMS_LOAD_PLUGINS``
    comma-separated plugin names: load only these (built-ins included).
``OMS_BLOCK_PLUGINS``
    comma-separated plugin names never to load.
``OMS_TRACE_HOOKS=1``
    log every hook call and its result at DEBUG level, logger ``oms.hooks``.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable

import pluggy

from . import hookspecs

# Built-in behaviour is itself plugins: each is an ordinary module whose hook
# implementations are marked trylast, so any other plugin overrides it.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "oms_plugins.json_channel",
    "oms_plugins.blocking",
    "oms_plugins.split_strategies",
    "oms_plugins.routing_strategies",
    "oms_plugins.sim_wms",
    "oms_plugins.sim_carrier",
    "oms_plugins.notifications",
)

log = logging.getLogger("oms.hooks")


class PluginError(Exception):
    pass


def _names(env: str) -> set[str] | None:
    raw = os.environ.get(env)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def build_plugin_manager(extra_modules: Iterable[str] = (), *, entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    only = _names("OMS_LOAD_PLUGINS")
    blocked = _names("OMS_BLOCK_PLUGINS") or set()
    for name in blocked:
        pm.set_blocked(name)

    def wanted(name: str) -> bool:
        return name not in blocked and (only is None or name in only)

    for modname in (*DEFAULT_PLUGINS, *extra_modules):
        if not wanted(modname):
            continue
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            raise PluginError(f"plugin '{modname}' could not be imported: {exc}") from exc
        if pm.get_plugin(modname) is None:
            pm.register(module, name=modname)
    if entry_points:
        if only is None:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        else:
            for name in only:
                pm.load_setuptools_entrypoints(hookspecs.PROJECT, name=name)
    # A hook implementation whose name matches no spec is a typo: fail at start.
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    if os.environ.get("OMS_TRACE_HOOKS"):
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return pm

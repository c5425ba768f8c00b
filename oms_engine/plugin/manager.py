"""The one place that builds the pluggy plugin manager.

Plugins come from, in this order: the built-in modules below, the ``oms``
entry-point group of installed distributions, and the ``plugins:`` list of
config.yaml. A ``plugins:`` entry is a module name, looked up on the Python
path and then in the directory of config.yaml (so ``my_router`` finds
``my_router.py`` next to it), or a path to a ``.py`` file, relative to that
directory. Environment switches:

``OMS_LOAD_PLUGINS``
    comma-separated plugin names: load only these (built-ins included).
``OMS_BLOCK_PLUGINS``
    comma-separated plugin names never to load.
``OMS_TRACE_HOOKS=1``
    log every hook call (and, for pluggy's own calls, its result) at DEBUG level, logger ``oms.hooks``.

Every hook implementation is checked before its plugin is registered: a
misspelt hook name or argument, or a wrapper (``wrapper=True`` or
``hookwrapper=True``: the registry calls each implementation on its own, so a
wrapper would never run), stops the start with one line naming the plugin,
the hook and the argument.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy

from ..errors import OmsError
from . import hookspecs

# Built-in behaviour is itself plugins: each is an ordinary module whose hook
# implementations are marked trylast, so any other plugin overrides it.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "oms_plugins.channels.json_channel",
    "oms_plugins.channels.shopify",
    "oms_plugins.channels.woocommerce",
    "oms_plugins.channels.amazon",
    "oms_plugins.channels.csv_orders",
    "oms_plugins.facts.risk",
    "oms_plugins.strategies.split",
    "oms_plugins.strategies.routing",
    "oms_plugins.connectors.sim_wms",
    "oms_plugins.connectors.sim_carrier",
    "oms_plugins.connectors.wms_json",
    "oms_plugins.connectors.wms_xml",
    "oms_plugins.connectors.carrier_http",
    "oms_plugins.connectors.sim_payment",
    "oms_plugins.connectors.payment_http",
    "oms_plugins.connectors.sim_tax",
    "oms_plugins.connectors.tax_http",
    "oms_plugins.senders.files",
    "oms_plugins.senders.smtp",
    "oms_plugins.senders.gateways",
    "oms_plugins.templates.directory",
    "oms_plugins.invoices.formats",
)

log = logging.getLogger("oms.hooks")


class PluginError(OmsError):
    pass


@dataclass(frozen=True)
class PluginInfo:
    name: str
    origin: str          # "built-in", "entry point <dist> <version>", "config.yaml"
    location: str        # the module's file
    hooks: tuple[str, ...]


@dataclass
class LoadedPlugins:
    pm: pluggy.PluginManager
    info: dict[str, PluginInfo] = field(default_factory=dict)


def tracing() -> bool:
    """OMS_TRACE_HOOKS set to anything but empty, 0, false or no."""
    return os.environ.get("OMS_TRACE_HOOKS", "").strip().lower() not in ("", "0", "false", "no")


def _names(env: str) -> set[str] | None:
    raw = os.environ.get(env)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


_SPEC_ARGS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(fn).parameters)
    for name, fn in vars(hookspecs).items() if name.startswith("oms_") and callable(fn)
}


def check_plugin(name: str, module: object, pm: pluggy.PluginManager) -> tuple[str, ...]:
    """The hooks ``module`` implements; raises PluginError (one line) for a misspelt hook or argument."""
    hooks = []
    for attr in dir(module):
        opts = pm.parse_hookimpl_opts(module, attr)
        if opts is None:
            continue
        hook = opts.get("specname") or attr
        if hook not in _SPEC_ARGS:
            close = difflib.get_close_matches(hook, list(_SPEC_ARGS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PluginError(f"plugin '{name}': '{hook}' is not an oms hook{hint}")
        if opts.get("wrapper") or opts.get("hookwrapper"):
            # The registry calls each implementation on its own, so that a fault names its plugin and one
            # observer's failure does not stop the others: a wrapper would be accepted and never run.
            raise PluginError(f"plugin '{name}': hook '{hook}' is a wrapper (wrapper=True or hookwrapper=True); "
                              "the OMS calls each implementation of a hook on its own, so wrappers are not "
                              "supported: implement the hook plainly")
        impl = getattr(module, attr)
        given = [p for p in inspect.signature(impl).parameters if p != "self"]
        unknown = [a for a in given if a not in _SPEC_ARGS[hook]]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(_SPEC_ARGS[hook]), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PluginError(f"plugin '{name}': hook '{hook}' has no argument '{unknown[0]}'{hint}; "
                              f"it offers: {', '.join(_SPEC_ARGS[hook])}")
        hooks.append(hook)
    return tuple(hooks)


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def _import(spec: str, base_dir: Path | None) -> tuple[str, ModuleType]:
    """A ``plugins:`` entry: a module name, or a path to a .py file (relative to config.yaml)."""
    if _is_path(spec):
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise PluginError(f"plugin '{spec}': no such file {path}")
        name = path.stem
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise PluginError(f"plugin '{spec}': cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise PluginError(f"plugin '{spec}' failed to import: {type(exc).__name__}: {exc}") from exc
        return name, module
    if base_dir is not None and importlib.util.find_spec(spec.split(".")[0]) is None \
            and str(base_dir) not in sys.path:
        # A module kept next to config.yaml: that directory joins the path for good,
        # so the plugin's own imports keep working after start-up.
        sys.path.append(str(base_dir))
    try:
        return spec, importlib.import_module(spec)
    except ImportError as exc:
        where = f" (looked on the Python path and in {base_dir})" if base_dir is not None else ""
        raise PluginError(f"plugin '{spec}' could not be imported{where}: {exc}") from exc


def load_plugins(extra: Iterable[str] = (), *, base_dir: Path | None = None,
                 use_entry_points: bool = True) -> LoadedPlugins:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm)
    only = _names("OMS_LOAD_PLUGINS")
    blocked = _names("OMS_BLOCK_PLUGINS") or set()
    for name in blocked:
        pm.set_blocked(name)

    def wanted(name: str) -> bool:
        return name not in blocked and (only is None or name in only)

    def add(name: str, module: ModuleType, origin: str) -> None:
        if pm.get_plugin(name) is not None:
            return
        hooks = check_plugin(name, module, pm)
        pm.register(module, name=name)
        loaded.info[name] = PluginInfo(name, origin, str(getattr(module, "__file__", "") or ""), hooks)

    for modname in DEFAULT_PLUGINS:
        if wanted(modname):
            add(*_import(modname, None), "built-in")
    if use_entry_points:
        for ep in entry_points(group=hookspecs.PROJECT):
            if not wanted(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin '{ep.name}' (entry point {ep.value}) failed to import: "
                                  f"{type(exc).__name__}: {exc}") from exc
            dist = f" of {ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
            add(ep.name, module, f"entry point{dist}")
    for spec in extra:
        # A path entry is named by its file's stem: the switches may name it either way.
        name = Path(spec).stem if _is_path(spec) else spec
        if not {spec, name} & blocked and (only is None or {spec, name} & only):
            add(*_import(spec, base_dir), "config.yaml")
    if tracing():
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return loaded


def build_plugin_manager(extra: Iterable[str] = (), *, base_dir: Path | None = None,
                         entry_points: bool = True) -> pluggy.PluginManager:
    return load_plugins(extra, base_dir=base_dir, use_entry_points=entry_points).pm

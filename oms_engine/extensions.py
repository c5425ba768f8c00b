"""The typed facade through which the core reaches plugins.

The core never calls ``pm.hook.*`` elsewhere: it asks an :class:`Extensions`
object, built once from the plugin manager, for a channel, a strategy, a
connector or a sender by name. Registration goes through callbacks so that
names, duplicates and shapes are checked here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from .contracts import ChannelAdapter, Connector, FactProvider, Sender, Template
from .domain import OrderView
from .pluginmanager import DEFAULT_PLUGINS


class RegistryError(Exception):
    pass


@dataclass(frozen=True)
class RuleActionHandler:
    point: str
    name: str
    handler: Callable[[OrderView, Mapping[str, Any]], None]
    validate: Callable[[Mapping[str, Any]], None] | None
    description: str


def _is_builtin(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return module in DEFAULT_PLUGINS


@dataclass(frozen=True)
class Strategy:
    name: str
    run: Callable[..., Any]
    validate_params: Callable[[Mapping[str, Any]], None] | None


class _Named:
    """A registry of named components: duplicates are errors, lookups explain."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, Any] = {}

    def add(self, name: str, item: Any, *, origin: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a {self.what} must have a non-empty name, got {name!r}")
        if name in self._items:
            # Built-ins register last (trylast): a plugin that took the name overrides them.
            if _is_builtin(origin if origin is not None else item):
                return
            raise RegistryError(f"{self.what} '{name}' is registered twice")
        self._items[name] = item

    def get(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.what} '{name}' (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._items.items())

    def values(self) -> list[Any]:
        """In registration order."""
        return list(self._items.values())


class Extensions:
    def __init__(self, pm: pluggy.PluginManager, config: Any) -> None:
        self.pm = pm
        self.config = config
        self.channels = _Named("channel")
        self.split_strategies = _Named("split strategy")
        self.routing_strategies = _Named("routing strategy")
        self.connectors = _Named("connector")
        self.senders = _Named("sender")
        self.templates = _Named("template")
        self.fact_providers = _Named("fact provider")
        self.rule_actions: dict[str, _Named] = {}
        self._collect()

    def _collect(self) -> None:
        hook = self.pm.hook

        def channel(adapter: ChannelAdapter) -> None:
            if not isinstance(adapter, ChannelAdapter):
                raise RegistryError(f"{adapter!r} is not a channel adapter (needs name, parse, verify)")
            self.channels.add(adapter.name, adapter)

        def strategy(reg: _Named) -> Callable[..., None]:
            def add(name: str, fn: Any, validate: Callable[..., None] | None = None) -> None:
                if not callable(fn):
                    raise RegistryError(f"{reg.what} '{name}' is not callable")
                reg.add(name, Strategy(name, fn, validate), origin=fn)
            return add

        def connector(c: Connector) -> None:
            if not isinstance(c, Connector) or c.kind not in ("wms", "carrier"):
                raise RegistryError(f"{c!r} is not a connector of kind 'wms' or 'carrier'")
            self.connectors.add(c.name, c)

        def sender(s: Sender) -> None:
            if not isinstance(s, Sender):
                raise RegistryError(f"{s!r} is not a sender (needs name, medium, send)")
            self.senders.add(s.name, s)

        def template(t: Template) -> None:
            # Templates are data, not code: the first registration of a name
            # wins, so a plugin's template replaces a built-in file of that name.
            if t.name not in self.templates:
                self.templates.add(t.name, t)

        def provider(p: FactProvider) -> None:
            self.fact_providers.add(p.name, p)

        def action(point: str, name: str, handler: Callable[..., None],
                   validate: Callable[..., None] | None = None, description: str = "") -> None:
            self.rule_actions.setdefault(point, _Named(f"{point} action")).add(
                name, RuleActionHandler(point, name, handler, validate, description), origin=handler)

        # Built-in plugins are trylast, so they register after everyone else.
        hook.oms_register_channels(register=channel, config=self.config)
        hook.oms_register_split_strategies(register=strategy(self.split_strategies), config=self.config)
        hook.oms_register_routing_strategies(register=strategy(self.routing_strategies), config=self.config)
        hook.oms_register_connectors(register=connector, config=self.config)
        hook.oms_register_senders(register=sender, config=self.config)
        hook.oms_register_templates(register=template, config=self.config)
        hook.oms_register_fact_providers(register=provider, config=self.config)
        hook.oms_register_rule_actions(register=action, config=self.config)

    def sender_for(self, medium: str) -> Sender:
        # In registration order: plugins register before the (trylast) built-ins, so they win.
        for s in self.senders.values():
            if s.medium == medium:
                return s
        raise RegistryError(f"no sender for medium '{medium}'")

    def resolve_sku(self, channel: str, sku: str) -> str:
        mapped = self.pm.hook.oms_resolve_sku(channel=channel, sku=sku)
        return mapped if mapped else sku

    def after_transition(self, **kw: Any) -> None:
        self.pm.hook.oms_after_transition(**kw)

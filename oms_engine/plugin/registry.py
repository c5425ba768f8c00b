"""The typed facade through which the core reaches plugins.

The core never calls ``pm.hook.*`` elsewhere: it asks a :class:`PluginRegistry`,
built once from the plugin manager, for a channel, a strategy, a connector or
a sender by name. Registration goes through callbacks so that names,
duplicates and shapes are checked here, in one place, and every component
remembers the plugin that registered it, so a fault names its plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pluggy

from ..config import Config
from ..errors import OmsError
from .contracts import (
    ChannelAdapter,
    Connector,
    EInvoiceFormat,
    FactProvider,
    ParamsValidator,
    RoutingStrategy,
    RuleAction,
    Sender,
    SplitStrategy,
    Template,
)
from .faults import PluginFault, blame
from .manager import DEFAULT_PLUGINS, tracing
from .views import OrderView, Quote, RoutePlan, ServiceView, Shipment, SplitPlan, StockView

log = logging.getLogger("oms.hooks")
T = TypeVar("T")


class RegistryError(OmsError):
    pass


@dataclass(frozen=True)
class RuleActionHandler:
    point: str
    name: str
    handler: RuleAction
    validate: ParamsValidator | None
    description: str
    plugin: str


@dataclass(frozen=True)
class Strategy(Generic[T]):
    name: str
    run: T
    validate_params: ParamsValidator | None
    plugin: str


class Named(Generic[T]):
    """A registry of named components: duplicates are errors, lookups explain."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        self._plugins: dict[str, str] = {}

    def add(self, name: str, item: T, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"plugin '{plugin}': a {self.what} must have a non-empty name, got {name!r}")
        if name in self._items:
            # Built-ins register last (trylast): a plugin that took the name overrides them.
            if plugin in DEFAULT_PLUGINS:
                return
            raise RegistryError(f"{self.what} '{name}' is registered twice "
                                f"(by plugins '{self._plugins[name]}' and '{plugin}')")
        self._items[name] = item
        self._plugins[name] = plugin

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.what} '{name}' (known: {known})") from None

    def plugin_of(self, name: str) -> str:
        return self._plugins[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def values(self) -> list[T]:
        """In registration order."""
        return list(self._items.values())


class PluginRegistry:
    def __init__(self, pm: pluggy.PluginManager, config: Config) -> None:
        self.pm = pm
        self.config = config
        self.channels: Named[ChannelAdapter] = Named("channel")
        self.split_strategies: Named[Strategy[SplitStrategy]] = Named("split strategy")
        self.routing_strategies: Named[Strategy[RoutingStrategy]] = Named("routing strategy")
        self.connectors: Named[Connector] = Named("connector")
        self.senders: Named[Sender] = Named("sender")
        self.templates: Named[Template] = Named("template")
        self.einvoice_formats: Named[EInvoiceFormat] = Named("e-invoice format")
        self.fact_providers: Named[FactProvider] = Named("fact provider")
        self.rule_actions: dict[str, Named[RuleActionHandler]] = {}
        self._trace = tracing()
        self._collect()
        self._check_senders()

    def _each(self, hook: str, make: Callable[[str], Callable[..., None]]) -> None:
        """Call every implementation of a registry hook, each with a register callback that knows its plugin.

        In pluggy's own order: later-registered first, trylast (the built-ins) after everyone else.
        """
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            kwargs = {"register": make(impl.plugin_name), "config": self.config}
            if self._trace:
                log.debug("%s (plugin %s)", hook, impl.plugin_name)
            try:
                with blame(impl.plugin_name, hook):
                    impl.function(**{k: kwargs[k] for k in impl.argnames})
            except PluginFault as fault:
                if isinstance(fault.error, RegistryError):
                    raise fault.error from None  # already names the plugin
                raise

    def _collect(self) -> None:
        def channel(plugin: str) -> Callable[..., None]:
            def add(adapter: ChannelAdapter) -> None:
                if not isinstance(adapter, ChannelAdapter):
                    raise RegistryError(f"plugin '{plugin}': {adapter!r} is not a channel adapter "
                                        "(needs name, parse, verify)")
                self.channels.add(adapter.name, adapter, plugin)
            return add

        def strategy(reg: Named[Any]) -> Callable[[str], Callable[..., None]]:
            def bind(plugin: str) -> Callable[..., None]:
                def add(name: str, fn: Any, validate: ParamsValidator | None = None) -> None:
                    if not callable(fn):
                        raise RegistryError(f"plugin '{plugin}': {reg.what} '{name}' is not callable")
                    reg.add(name, Strategy(name, fn, validate, plugin), plugin)
                return add
            return bind

        def connector(plugin: str) -> Callable[..., None]:
            def add(c: Connector) -> None:
                if not isinstance(c, Connector) or c.kind not in ("wms", "carrier", "payment", "tax", "events"):
                    raise RegistryError(f"plugin '{plugin}': {c!r} is not a connector of kind 'wms', 'carrier', "
                                        f"'payment', 'tax' or 'events'")
                self.connectors.add(c.name, c, plugin)
            return add

        def sender(plugin: str) -> Callable[..., None]:
            def add(s: Sender) -> None:
                if not isinstance(s, Sender):
                    raise RegistryError(f"plugin '{plugin}': {s!r} is not a sender (needs name, medium, send)")
                self.senders.add(s.name, s, plugin)
            return add

        def template(plugin: str) -> Callable[..., None]:
            def add(t: Template) -> None:
                if not isinstance(t, Template):
                    raise RegistryError(f"plugin '{plugin}': {t!r} is not a Template")
                self.templates.add(t.key, t, plugin)
            return add

        def einvoice_format(plugin: str) -> Callable[..., None]:
            def add(f: EInvoiceFormat) -> None:
                if not isinstance(f, EInvoiceFormat):
                    raise RegistryError(f"plugin '{plugin}': {f!r} is not an e-invoice format (needs name, render)")
                self.einvoice_formats.add(f.name, f, plugin)
            return add

        def provider(plugin: str) -> Callable[..., None]:
            def add(p: FactProvider) -> None:
                if not isinstance(p, FactProvider):
                    raise RegistryError(f"plugin '{plugin}': {p!r} is not a FactProvider")
                self.fact_providers.add(p.name, p, plugin)
            return add

        def action(plugin: str) -> Callable[..., None]:
            def add(point: str, name: str, handler: RuleAction, validate: ParamsValidator | None = None,
                    description: str = "") -> None:
                if not callable(handler):
                    raise RegistryError(f"plugin '{plugin}': rule action '{name}' is not callable")
                self.rule_actions.setdefault(point, Named(f"{point} action")).add(
                    name, RuleActionHandler(point, name, handler, validate, description, plugin), plugin)
            return add

        self._each("oms_register_channels", channel)
        self._each("oms_register_split_strategies", strategy(self.split_strategies))
        self._each("oms_register_routing_strategies", strategy(self.routing_strategies))
        self._each("oms_register_connectors", connector)
        self._each("oms_register_senders", sender)
        self._each("oms_register_templates", template)
        self._each("oms_register_einvoice_formats", einvoice_format)
        self._each("oms_register_fact_providers", provider)
        self._each("oms_register_rule_actions", action)

    # -- calls into plugin code, each blamed on its plugin ---------------------------
    def render_einvoice(self, name: str, invoice: Mapping[str, Any]) -> Mapping[str, Any] | str:
        """``invoice`` in the e-invoice format ``name``; PluginFault when the format fails or answers nonsense."""
        fmt = self.einvoice_formats.get(name)
        with blame(self.einvoice_formats.plugin_of(name), f"e-invoice format '{name}'"):
            out = fmt.render(invoice)
            if not isinstance(out, Mapping | str):
                raise TypeError(f"returned {type(out).__name__}, not a mapping or text")
            return out

    def split(self, name: str, order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
        strategy = self.split_strategies.get(name)
        with blame(strategy.plugin, f"split strategy '{name}'"):
            plan = strategy.run(order, stock, params)
            if not isinstance(plan, SplitPlan):
                raise TypeError(f"returned {type(plan).__name__}, not a SplitPlan")
            return plan

    def route(self, name: str, order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
        strategy = self.routing_strategies.get(name)
        with blame(strategy.plugin, f"routing strategy '{name}'"):
            plan = strategy.run(order, stock, params)
            if plan is not None and not isinstance(plan, RoutePlan):
                raise TypeError(f"returned {type(plan).__name__}, not a RoutePlan or None")
            return plan

    def quote(self, connector: str, shipment: Shipment, service: ServiceView, settings: Mapping[str, Any]) -> Quote:
        """The carrier connector's quote; one that does not quote takes what the service's limits allow."""
        c = self.connectors.get(connector)
        ask = getattr(c, "quote", None)
        if ask is None:
            return Quote(True)
        with blame(self.connectors.plugin_of(connector), f"connector '{connector}' quote"):
            q = ask(shipment, service, settings)
            if not isinstance(q, Quote):
                raise TypeError(f"returned {type(q).__name__}, not a Quote")
            return q

    def _check_senders(self) -> None:
        """Each sender config.yaml's ``senders:`` names is registered for its medium: a misspelt name stops the
        start, rather than every message of that medium failing later."""
        for medium, name in self.config.senders.items():
            chosen = self.senders.get(name) if name in self.senders else None
            if chosen is not None and chosen.medium == medium:
                continue
            fits = ", ".join(n for n, s in self.senders.items() if s.medium == medium) or "none"
            why = "is not registered" if chosen is None else f"sends medium '{chosen.medium}'"
            raise RegistryError(f"config senders: medium '{medium}' names sender '{name}', which {why} "
                                f"(senders of medium '{medium}': {fits})")

    def sender_for(self, medium: str) -> Sender:
        chosen = self.config.senders.get(medium)
        if chosen is not None:
            return self.senders.get(chosen)   # checked at start: registered, of this medium
        # In registration order: plugins register before the (trylast) built-ins, so they win.
        for s in self.senders.values():
            if s.medium == medium:
                return s
        raise RegistryError(f"no sender for medium '{medium}'")

    def resolve_sku(self, channel: str, sku: str) -> str:
        """The first SKU mapper that answers, else the SKU as sent."""
        for impl in reversed(self.pm.hook.oms_resolve_sku.get_hookimpls()):
            kwargs = {"channel": channel, "sku": sku, "config": self.config}
            with blame(impl.plugin_name, "oms_resolve_sku"):
                mapped = impl.function(**{k: kwargs[k] for k in impl.argnames})
            if self._trace:
                log.debug("oms_resolve_sku(channel=%r, sku=%r) by %s -> %r", channel, sku, impl.plugin_name, mapped)
            if mapped is not None:
                if not isinstance(mapped, str) or not mapped:
                    with blame(impl.plugin_name, "oms_resolve_sku"):
                        raise TypeError(f"returned {mapped!r}, not a non-empty SKU")
                return mapped
        return sku

    def after_transition(self, **kw: Any) -> None:
        """Every observer, each blamed on its plugin; the first fault is raised after all have run."""
        first: BaseException | None = None
        for impl in reversed(self.pm.hook.oms_after_transition.get_hookimpls()):
            if self._trace:
                log.debug("oms_after_transition(%s) by %s", ", ".join(f"{k}={v!r}" for k, v in kw.items()),
                          impl.plugin_name)
            try:
                with blame(impl.plugin_name, "oms_after_transition"):
                    impl.function(**{k: kw[k] for k in impl.argnames})
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

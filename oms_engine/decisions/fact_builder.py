"""Building the facts of a batch of orders: core facts, customer statistics, and every fact provider.

Facts are built once per order per transaction (:class:`FactCache`): an
order's facts do not change with its state (state is not a fact; the
transition is added separately by the notifier), so they are safe to reuse
within a batch. A fact provider that raises is called again one order at a
time, and only the orders it fails on carry the fault (``cache.faults``);
the stage deciding on such an order holds it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..orders.views import order_view
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.models import Order
from .order_facts import STATISTICS, channel_facts, channel_fields, customer_stats, order_facts
from .rulebook import Rulebook


@dataclass
class FactCache:
    """Per-transaction memo: customer statistics and rule facts, computed once per batch."""

    stats: dict[int, tuple[int, int]] = field(default_factory=dict)
    facts: dict[int, dict[str, Any]] = field(default_factory=dict)
    counted: set[int] = field(default_factory=set)  # orders whose cached facts carry real statistics
    faults: dict[int, PluginFault] = field(default_factory=dict)  # a fact provider failed on this order


class FactBuilder:
    def __init__(self, rulebook: Rulebook, plugins: PluginRegistry, clock: Clock) -> None:
        self.rulebook, self.plugins, self.clock = rulebook, plugins, clock

    def facts(self, s: Session, orders: Sequence[Order], cache: FactCache, *, point: str | None = None
              ) -> dict[int, dict[str, Any]]:
        """Rule facts for a batch: core facts, then every fact provider once for the whole batch.

        Customer statistics cost a query; they are computed only when the
        decision point's rules read them (``point=None``: always).
        """
        stats = point is None or self.rulebook.reads(point, *STATISTICS)
        todo = [o for o in orders if o.id not in cache.facts or (stats and o.id not in cache.counted)]
        if stats:
            missing = [o for o in todo if o.customer_id not in cache.stats]
            if missing:
                cache.stats.update(customer_stats(s, missing, self.clock.now()))
            cache.counted.update(o.id for o in todo)
        core = {o.id: order_facts(o, cache.stats if stats else {}) for o in todo}
        keys = self.plugins.config.channel_facts
        # Whenever any ruleset reads the channel's words (not only this point's), so the facts cached for the
        # batch serve every point; a deployment whose rules read none pays nothing.
        if todo and self.rulebook.reads_anywhere(channel_fields(keys)):
            for order_id, facts in channel_facts(s, todo, keys).items():
                core[order_id]["channel"] = facts
        if todo and self.plugins.fact_providers.names():
            self._provide(todo, core, cache)
        cache.facts.update(core)
        return cache.facts

    def _provide(self, orders: list[Order], core: dict[int, dict[str, Any]], cache: FactCache) -> None:
        views = [order_view(o) for o in orders]
        for name, provider in self.plugins.fact_providers.items():
            role = f"fact provider '{name}'"
            plugin = self.plugins.fact_providers.plugin_of(name)
            try:
                with blame(plugin, role):
                    extra = dict(provider.provide(views, {o.number: core[o.id] for o in orders}))
            except PluginFault:
                # Find the orders it fails on: only those are held, the rest go on.
                extra = {}
                for o, v in zip(orders, views, strict=True):
                    try:
                        with blame(plugin, role):
                            extra.update(provider.provide([v], {o.number: core[o.id]}))
                    except PluginFault as fault:
                        cache.faults.setdefault(o.id, fault)
            for o in orders:
                for key, value in (extra.get(o.number) or {}).items():
                    if isinstance(value, dict):
                        core[o.id].setdefault(key, {}).update(value)
                    else:
                        core[o.id][key] = value

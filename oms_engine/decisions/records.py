"""Decision records: every rules evaluation about an order, and the plugin actions it fired.

A record keeps the ruleset's name and content hash, the rules that fired with
their actions, what the OMS did (the outcome) and the projected facts the
rules read, so "why was this order held / sent there?" has an exact answer
and the decision can be replayed against another ruleset version later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..orders.incidents import record_incident
from ..orders.views import order_view
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..rules import Decision
from ..storage.db import append
from ..storage.models import DecisionRecord, Order


class DecisionRecorder:
    def __init__(self, clock: Clock, plugins: PluginRegistry) -> None:
        self.clock, self.plugins = clock, plugins

    def record(self, s: Session, order: Order, point: str, decision: Decision | None,
               outcome: Mapping[str, Any], *, version: str | None = None) -> None:
        """``version``: for what follows from an earlier decision of the point (no rules asked now), the
        version of its ruleset in force."""
        fired = [{"rule": f.name, "priority": f.priority,
                  "actions": [{a.name: dict(a.params)} for a in f.actions]} for f in decision.fired] \
            if decision is not None else []
        facts = getattr(decision, "facts", None)
        append(s, DecisionRecord, order_id=order.id, point=point,
               ruleset=decision.ruleset if decision is not None else point,
               version=decision.version if decision is not None else version or "(no ruleset)",
               fired=fired, outcome=dict(outcome), facts=dict(facts) if facts else None, at=self.clock.now())
        if decision is not None and point in self.plugins.rule_actions:
            self._plugin_actions(s, order, point, decision)

    def _plugin_actions(self, s: Session, order: Order, point: str, decision: Decision) -> None:
        """Run the plugin actions the decision fired, after it is stored; a failing one is an incident."""
        handlers = self.plugins.rule_actions[point]
        view = None
        for action in decision.actions:
            if action.name not in handlers:
                continue
            handler = handlers.get(action.name)
            view = view or order_view(order)
            try:
                with blame(handler.plugin, f"rule action '{action.name}'"):
                    handler.handler(view, dict(action.params))
            except PluginFault as fault:
                record_incident(s, order_id=order.id, stage=point, error=fault,
                                action="rule action failed; the decision stands", at=self.clock.now())

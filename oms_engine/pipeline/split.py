"""Splitting: the split rules choose a strategy; the plan is checked, refined by stock, and made into children."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..orders.machine import Event, OrderMachine, State
from ..orders.records import OrderRec, load_records
from ..orders.splitting import (
    ChildPlan,
    PlanError,
    check_plan,
    describe,
    make_children,
    plan_children,
    refine_by_stock,
)
from ..orders.steps import Step
from ..orders.views import order_view
from ..plugin.faults import PluginFault
from ..plugin.registry import PluginRegistry
from ..plugin.views import SplitGroup
from ..rules import Decision, FactError, RuleEngineError
from ..stock.reservations import reservations_of, reserved_map
from ..stock.warehouses import WarehouseCache, stock_view
from ..storage.claims import claim
from ..storage.db import savepoint
from ..storage.models import Order
from ..storage.retry import LostRace, is_retryable
from .holding import hold_on_fault
from .stage import RulesInForce, StageName, Unit, UnitKind, rules_as_loaded

POINT = DecisionPoint.SPLIT.value
log = logging.getLogger("oms.pipeline")


class SplitStage:
    name = StageName.SPLIT

    def __init__(self, *, batch_size: int, clock: Clock, facts: FactBuilder, rulebook: Rulebook,
                 decisions: DecisionRecorder, machine: OrderMachine, plugins: PluginRegistry,
                 warehouses: WarehouseCache,
                 rules_in_force: RulesInForce = rules_as_loaded) -> None:
        self.batch_size, self.clock, self.facts, self.rulebook = batch_size, clock, facts, rulebook
        self.decisions, self.machine, self.plugins, self.warehouses = decisions, machine, plugins, warehouses
        self.rules_in_force = rules_in_force
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim(s, select(Order.id).where(Order.status == State.PAID.value, Order.stage == Step.SPLIT.value)
                    .order_by(Order.id), self.batch_size)
        if ids:
            self.rules_in_force(s)
        orders = load_records(s, ids)
        facts = self.facts.facts(s, orders, cache)
        reservations = reservations_of(s, ids)
        stock = stock_view(s, {ln.sku for o in orders for ln in o.lines}, self.warehouses.get(s))
        splitting: list[tuple[ChildPlan, dict[str, Any], Decision | None, str]] = []
        for order in orders:
            self.current = Unit(UnitKind.ORDER, order.id)
            res = reservations.get(order.id, [])
            try:
                fault = cache.faults.get(order.id)
                if fault is not None:
                    raise fault
                decision = self.rulebook.decide(POINT, facts[order.id])
                action = next((a for a in (decision.actions if decision else []) if a.name == "split"), None)
                view = order_view(order, reserved_map(res))
                if action is None:
                    groups: tuple[SplitGroup, ...] = (SplitGroup({ln.line_no: ln.quantity for ln in order.lines}),)
                    used = "single"
                else:
                    used = action.params["strategy"]
                    groups = self.plugins.split(used, view, stock, action.params).groups
                    check_plan(order, groups)
                groups = refine_by_stock(view, stock, groups)
                check_plan(order, groups)
                plan = plan_children(order, groups, res, self.clock.now()) if len(groups) > 1 else None
            except (PluginFault, PlanError, FactError, RuleEngineError) as exc:
                hold_on_fault(s, self.machine, order, Step.SPLIT, exc, cache)
                continue
            outcome: dict[str, Any] = {"strategy": used, "groups": describe(groups)}
            if plan is None:
                order.stage = Step.ROUTE.value
                self.decisions.record(s, order, POINT, decision, {**outcome, "children": []})
            else:
                splitting.append((plan, outcome, decision, used))
        self.current = None
        for (plan, outcome, decision, used), children in zip(splitting, self._make(s, splitting), strict=True):
            order = plan.parent
            self.current = Unit(UnitKind.ORDER, order.id)
            outcome["children"] = [c.number for c in children]
            self.decisions.record(s, order, POINT, decision, outcome)
            order.stage = None
            self.machine.fire(s, order, Event.SPLIT, actor="rules:split",
                              cause=f"{used}: {len(children)} child orders", cache=cache)
        self.current = None
        return len(orders)

    def _make(self, s: Session, splitting: Sequence[tuple[ChildPlan, Any, Any, str]]) -> list[list[OrderRec]]:
        """The children of every splitting order, written together; should the database refuse a row,
        order by order, so that the refused order alone is set aside (the stage's ``current``)."""
        plans = [p for p, _, _, _ in splitting]
        if not plans:
            return []
        try:
            with savepoint(s):
                return make_children(s, self.machine, plans)
        except LostRace:
            raise
        except SQLAlchemyError as exc:
            if is_retryable(exc):
                raise
            log.info("split: the batch's children were refused; writing them order by order to find why")
        made = []
        for plan in plans:
            self.current = Unit(UnitKind.ORDER, plan.parent.id)
            with savepoint(s):
                made += make_children(s, self.machine, [plan])
        self.current = None
        return made

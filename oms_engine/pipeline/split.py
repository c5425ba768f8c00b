"""Splitting: the split rules choose a strategy; the plan is checked, refined by stock, and made into children.

The algorithm is orders/splitting.py's; this stage reads the batch's
reservations and stock, asks the strategy the rules named, and writes every
splitting order's children together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..decisions.points import DecisionPoint
from ..orders import flow
from ..orders.kits import stock_skus
from ..orders.machine import Event
from ..orders.records import OrderRec
from ..orders.splitting import (
    ChildPlan,
    PlanError,
    check_plan,
    describe,
    make_children,
    plan_children,
    refine_by_stock,
)
from ..orders.views import order_view
from ..payments.status import is_cod
from ..plugin.registry import PluginRegistry
from ..plugin.views import SplitGroup, StockView
from ..rules import Decision
from ..stock.reservations import Held, reservations_of
from ..stock.warehouses import WarehouseCache, stock_view
from ..storage.db import savepoint
from ..storage.retry import LostRace, is_retryable
from .deciding import DecisionStage
from .stage import StageName, Unit, UnitKind

log = logging.getLogger("oms.pipeline")


@dataclass
class _Batch:
    reservations: dict[int, list[Held]]
    stock: StockView
    splitting: list[tuple[ChildPlan, dict[str, Any], Decision | None, str]] = field(default_factory=list)


class SplitStage(DecisionStage):
    name = StageName.SPLIT
    step = flow.Step.SPLIT
    point = DecisionPoint.SPLIT.value
    faults = (*DecisionStage.faults, PlanError)

    def __init__(self, *, clock: Clock, plugins: PluginRegistry, warehouses: WarehouseCache, **kw: Any) -> None:
        super().__init__(**kw)
        self.clock, self.plugins, self.warehouses = clock, plugins, warehouses

    def prepare(self, s: Session, orders: list[OrderRec]) -> _Batch:
        return _Batch(reservations_of(s, [o.id for o in orders]),
                      stock_view(s, {sku for o in orders for sku in stock_skus(o.lines)}, self.warehouses.get(s)))

    def decide(self, s: Session, order: OrderRec, decision: Decision | None, batch: _Batch, cache: FactCache
               ) -> None:
        res = batch.reservations.get(order.id, [])
        action = next((a for a in (decision.actions if decision else []) if a.name == "split"), None)
        view = order_view(order, res)
        if is_cod(order):
            # Cash on delivery ships whole: the carrier collects one amount against one order and its invoice
            # (routing holds it when no warehouse can ship all of it).
            action = None
        if action is None:
            groups: tuple[SplitGroup, ...] = (SplitGroup({ln.line_no: ln.quantity for ln in order.lines}),)
            used = "single"
        else:
            used = action.params["strategy"]
            groups = self.plugins.split(used, view, batch.stock, action.params).groups
            check_plan(order, groups)
        if not is_cod(order):
            groups = refine_by_stock(view, batch.stock, groups)
            check_plan(order, groups)
        plan = plan_children(order, groups, res, self.clock.now()) if len(groups) > 1 else None
        outcome: dict[str, Any] = {"strategy": used, "groups": describe(groups)}
        if is_cod(order):
            outcome["why"] = "cash on delivery ships whole"
        if plan is None:
            flow.advance(order, self.step)
            self.decisions.record(s, order, self.point, decision, {**outcome, "children": []})
        else:
            batch.splitting.append((plan, outcome, decision, used))

    def finish(self, s: Session, batch: _Batch, cache: FactCache) -> None:
        splitting = batch.splitting
        for (plan, outcome, decision, used), children in zip(splitting, self._make(s, splitting), strict=True):
            order = plan.parent
            self.current = Unit(UnitKind.ORDER, order.id)
            outcome["children"] = [c.number for c in children]
            self.decisions.record(s, order, self.point, decision, outcome)
            order.stage = None   # the parent follows its children from now on (flow: split, check)
            self.machine.fire(s, order, Event.SPLIT, actor="rules:split",
                              cause=f"{used}: {len(children)} child orders", cache=cache)

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

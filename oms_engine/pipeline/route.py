"""Routing: the routing rules try strategies in priority order; the first warehouse that can take the
order's reservation wins (core fallback: where the stock is already held), and the WMS document is queued."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..fulfilment.documents import wms_document
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..orders.machine import Event, OrderMachine, State
from ..orders.records import OrderRec, load_records
from ..orders.steps import HoldStage, Step
from ..orders.views import order_view
from ..plugin.faults import PluginFault
from ..plugin.registry import PluginRegistry
from ..plugin.views import StockView
from ..rules import Decision, FactError, RuleEngineError
from ..stock.batch import stock_batch
from ..stock.reservations import Held, move_to_warehouse, reservations_of, reserved_map
from ..stock.warehouses import WarehouseCache
from ..storage.claims import claim
from ..storage.models import Order
from .holding import hold, hold_on_fault
from .stage import RulesInForce, StageName, Unit, UnitKind, rules_as_loaded

POINT = DecisionPoint.ROUTING.value


class RouteStage:
    name = StageName.ROUTE

    def __init__(self, *, batch_size: int, clock: Clock, facts: FactBuilder, rulebook: Rulebook,
                 decisions: DecisionRecorder, machine: OrderMachine, plugins: PluginRegistry,
                 warehouses: WarehouseCache, outbox: OutboxWriter, wms: str, carrier: str,
                 rules_in_force: RulesInForce = rules_as_loaded) -> None:
        self.batch_size, self.clock, self.facts, self.rulebook = batch_size, clock, facts, rulebook
        self.decisions, self.machine, self.plugins, self.warehouses = decisions, machine, plugins, warehouses
        self.outbox, self.wms, self.carrier = outbox, wms, carrier
        self.rules_in_force = rules_in_force
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim(s, select(Order.id).where(Order.status == State.PAID.value, Order.stage == Step.ROUTE.value)
                    .order_by(Order.id), self.batch_size)
        if ids:
            self.rules_in_force(s)
        orders = load_records(s, ids)
        facts = self.facts.facts(s, orders, cache)
        reservations = reservations_of(s, ids)
        # One stock view for the batch: the transaction's stock batch, whose figures move as orders move
        # their reservations. Every stock row the batch may touch is read (on PostgreSQL locked, in the
        # global order) here, before the first order moves anything.
        whs = self.warehouses.get(s)
        batch = stock_batch(s)
        batch.load({(w.code, ln.sku) for o in orders for ln in o.lines for w in whs}
                   | {(r.warehouse, r.sku) for held in reservations.values() for r in held})
        stock = StockView(whs, batch.available)
        for order in orders:
            self.current = Unit(UnitKind.ORDER, order.id)
            res = reservations.get(order.id, [])
            try:
                fault = cache.faults.get(order.id)
                if fault is not None:
                    raise fault
                decision = self.rulebook.decide(POINT, facts[order.id])
            except (PluginFault, FactError, RuleEngineError) as exc:
                hold_on_fault(s, self.machine, order, Step.ROUTE, exc, cache)
                continue
            self._route(s, order, res, stock, decision, cache)
        self.current = None
        return len(orders)

    def _candidates(self, order: OrderRec, res: Sequence[Held], stock: StockView, decision: Decision | None,
                    tried: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
        """(warehouse, strategy, reason) of each strategy in the rules' order, asked only when the
        ones before it have not placed the order; then the core fallback. Each answer goes in ``tried``."""
        view = order_view(order, reserved_map(res))
        for action in (decision.actions if decision else []):
            if action.name != "route":
                continue
            name = action.params["strategy"]
            plan = self.plugins.route(name, view, stock, action.params)
            tried.append({"strategy": name, "warehouse": plan.warehouse if plan else None,
                          "reason": plan.reason if plan else "no answer"})
            if plan is not None:
                yield plan.warehouse, name, plan.reason
        reserved_at = {r.warehouse for r in res}
        if len(reserved_at) == 1 and sum(r.quantity for r in res) == sum(ln.quantity for ln in order.lines):
            # Core fallback: the stock is already held in one warehouse.
            yield next(iter(reserved_at)), "core-fallback", "all units already reserved there"

    def _route(self, s: Session, order: OrderRec, res: Sequence[Held], stock: StockView, decision: Decision | None,
               cache: FactCache) -> None:
        now = self.clock.now()
        need = {ln.line_no: (ln.sku, ln.quantity) for ln in order.lines}
        tried: list[dict[str, Any]] = []
        candidates = self._candidates(order, res, stock, decision, tried)
        while True:
            try:
                wh, strategy, reason = next(candidates)
            except StopIteration:
                break
            except PluginFault as exc:   # a strategy failed on this order: held, nothing moved yet
                hold_on_fault(s, self.machine, order, Step.ROUTE, exc, cache)
                return
            if not move_to_warehouse(s, order.id, f"order:{order.number}", wh, need, res, now):
                tried.append({"strategy": strategy, "warehouse": wh, "reason": "stock moved away; tried next"})
                continue
            order.warehouse, order.stage, order.carrier = wh, None, self.carrier
            self.decisions.record(s, order, POINT, decision, {"warehouse": wh, "strategy": strategy,
                                                              "reason": reason, "tried": tried})
            self.machine.fire(s, order, Event.ROUTE, actor="rules:routing", cause=f"{wh} by {strategy}: {reason}",
                              cache=cache)
            self.outbox.enqueue(s, order, Kind.CONNECTOR, self.wms, Topic.WMS_CREATE, wms_document(order))
            return
        self.decisions.record(s, order, POINT, decision, {"warehouse": None, "tried": tried})
        hold(s, self.machine, order, HoldStage.ROUTING, "no warehouse can ship the whole order",
             actor="rules:routing", cache=cache)

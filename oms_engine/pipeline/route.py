"""Routing: the warehouse each order ships from, chosen by orders/routing.py, and its reservation moved there.

This stage owns the locking: every stock row the batch may touch is read
(on PostgreSQL locked, in the global order) before the first order moves
anything, into the transaction's stock batch, whose figures move as orders
move their reservations; the strategies see those figures through one stock
view for the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..decisions.points import DecisionPoint
from ..orders import flow
from ..orders.backorders import stock_waits
from ..orders.flow import HoldStage
from ..orders.kits import needs, stock_skus
from ..orders.machine import Event
from ..orders.moves import take
from ..orders.records import OrderRec
from ..orders.routing import route_order
from ..orders.views import order_view
from ..orders.waits import record_waits
from ..plugin.registry import PluginRegistry
from ..plugin.views import StockView
from ..rules import Decision
from ..stock.batch import stock_batch
from ..stock.reservations import Held, reservations_of
from ..stock.warehouses import WarehouseCache
from .deciding import DecisionStage
from .holding import hold
from .stage import StageName


@dataclass(frozen=True)
class _Batch:
    reservations: dict[int, list[Held]]
    stock: StockView


class RouteStage(DecisionStage):
    name = StageName.ROUTE
    step = flow.Step.ROUTE
    point = DecisionPoint.ROUTING.value

    def __init__(self, *, clock: Clock, plugins: PluginRegistry, warehouses: WarehouseCache,
                 shelf_life: Mapping[str, int] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.clock, self.plugins, self.warehouses = clock, plugins, warehouses
        self.shelf_life = dict(shelf_life or {})

    def prepare(self, s: Session, orders: list[OrderRec]) -> _Batch:
        reservations = reservations_of(s, [o.id for o in orders])
        whs = self.warehouses.get(s)
        batch = stock_batch(s)
        batch.load({(w.code, sku) for o in orders for sku in stock_skus(o.lines) for w in whs}
                   | {(r.warehouse, r.sku) for held in reservations.values() for r in held})
        return _Batch(reservations, StockView(whs, batch.available))

    def decide(self, s: Session, order: OrderRec, decision: Decision | None, batch: _Batch, cache: FactCache
               ) -> None:
        now = self.clock.now()
        res = batch.reservations.get(order.id, [])
        need = needs(order.lines)
        view = order_view(order, res)
        stock = batch.stock
        if order.avoid_warehouse:
            # A warehouse that reported it cannot fill the order is out of the strategies' sight this time.
            stock = StockView(tuple(w for w in stock.warehouses if w.code != order.avoid_warehouse), stock.available)
        outcome = route_order(
            view, res, decision,
            ask=lambda name, params: self.plugins.route(name, view, stock, params),
            take=lambda wh: (f"{wh} reported it cannot fill the order" if wh == order.avoid_warehouse
                             else take(s, order, wh, need, res, now, self.shelf_life)))
        order.avoid_warehouse = None   # avoided for this routing only: stock arriving there later counts
        self.decisions.record(s, order, self.point, decision, outcome.record())
        chosen = outcome.chosen
        if chosen is None:
            order.stage = None
            hold(s, self.machine, order, HoldStage.ROUTING, "no warehouse can ship the whole order",
                 actor="rules:routing", cache=cache)
            # Stock coming in may let a warehouse take it whole: released by itself then (backorders).
            record_waits(s, order.id, stock_waits(order), self.clock.now())
            return
        order.warehouse = chosen.warehouse
        flow.advance(order, self.step)
        self.machine.fire(s, order, Event.ROUTE, actor="rules:routing",
                          cause=f"{chosen.warehouse} by {chosen.strategy}: {chosen.reason}", cache=cache)


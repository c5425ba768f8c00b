"""Backorders: held orders whose waits are ready are looked at again, oldest paid first (orders/backorders.py).

The orders are claimed (on PostgreSQL locked, skipping those a person or
another worker holds) before the stock they may reserve, and their waits are
written last, after the stock: the lock order every transaction keeps
(orders, stock, waits). Few orders wait at a time, so they are read through
the ORM one by one, as commands do.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..orders import flow
from ..orders.backorders import recheck_intake, routable, stock_waits
from ..orders.flow import HoldStage
from ..orders.machine import Event, OrderMachine
from ..orders.waits import clear_waits, replace_waits
from ..payments.status import cleared
from ..plugin.registry import PluginRegistry
from ..stock.warehouses import WarehouseCache
from ..storage.claims import claim
from ..storage.models import Order, OrderWait
from .stage import StageName, Unit, UnitKind

ACTOR = "oms:backorders"


class BackordersStage:
    name = StageName.BACKORDERS
    step = flow.Step.RECHECK

    def __init__(self, *, batch_size: int, clock: Clock, machine: OrderMachine, plugins: PluginRegistry,
                 warehouses: WarehouseCache) -> None:
        self.batch_size, self.clock, self.machine = batch_size, clock, machine
        self.plugins, self.warehouses = plugins, warehouses
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ready = select(OrderWait.order_id).where(OrderWait.ready.is_(True))
        ids = claim(s, select(Order.id).where(Order.status == flow.state_of(self.step).value, Order.id.in_(ready))
                    .order_by(Order.paid_at.is_(None), Order.paid_at, Order.id), self.batch_size)
        released = 0
        for oid in ids:
            self.current = Unit(UnitKind.ORDER, oid)
            order = s.get(Order, oid)
            if order is None:
                continue
            released += self._recheck(s, order)
        self.current = None
        return released

    def _recheck(self, s: Session, order: Order) -> int:
        """1 when the order was released, 0 when it still waits."""
        now = self.clock.now()
        whs = self.warehouses.get(s)
        if order.hold_stage == HoldStage.INTAKE.value:
            problems = recheck_intake(s, order, self.plugins, whs, now)
            if any(wait is None for wait, _, _ in problems):
                # Something a person must judge now (a product deactivated meanwhile): it waits for them.
                clear_waits(s, order.id)
                order.hold_reason = "; ".join(dict.fromkeys(text for _, _, text in problems))[:2000]
                return 0
            if problems:
                order.hold_reason = "; ".join(dict.fromkeys(text for _, _, text in problems))[:2000]
                replace_waits(s, order.id, [(w, key) for w, key, _ in problems if w is not None], now)
                return 0
            cause = "released: every SKU mapped and every unit reserved"
        elif order.hold_stage == HoldStage.ROUTING.value:
            warehouse = routable(s, order, whs)
            if warehouse is None:
                replace_waits(s, order.id, stock_waits(order), now)
                return 0
            cause = f"released: {warehouse} can ship the whole order now"
        else:
            clear_waits(s, order.id)   # no other hold waits for stock or SKUs
            return 0
        paid = cleared(order) or order.parent_id is not None
        order.stage = flow.resume(order.hold_stage).value if paid else flow.FIRST.value
        self.machine.fire(s, order, Event.RELEASE if paid else Event.RELEASE_UNPAID, actor=ACTOR, cause=cause)
        return 1

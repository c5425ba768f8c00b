"""Timers: orders whose deadline passed move on (payment timeout, auto-confirm, close)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..orders.machine import TIMEOUTS, OrderMachine, State
from ..orders.records import load_records
from ..stock.reservations import lock_held
from ..storage.claims import claim
from ..storage.models import Order
from .stage import StageName, Unit, UnitKind


class TimersStage:
    name = StageName.TIMERS

    def __init__(self, *, batch_size: int, clock: Clock, facts: FactBuilder, machine: OrderMachine) -> None:
        self.batch_size, self.clock, self.facts, self.machine = batch_size, clock, facts, machine
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim(s, select(Order.id).where(Order.due_at <= self.clock.now(),
                                              Order.status.in_([st.value for st in TIMEOUTS]))
                    .order_by(Order.due_at, Order.id), self.batch_size)
        orders = load_records(s, ids)
        lock_held(s, orders)  # a payment timeout releases stock: the batch's rows, locked in order first
        self.facts.facts(s, orders, cache, point=DecisionPoint.NOTIFICATIONS.value)
        for order in orders:
            self.current = Unit(UnitKind.ORDER, order.id)
            event, why = TIMEOUTS[State(order.status)]
            self.machine.fire(s, order, event, actor="timer", cause=why, cache=cache)
        self.current = None
        return len(ids)

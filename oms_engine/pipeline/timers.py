"""Timers: orders whose deadline passed move on (payment timeout, auto-confirm, close), or, past a late step's
limit, are alerted to operations once (orders/late_steps.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..orders.late_steps import LateLimits, raise_alert, timed_statuses
from ..orders.machine import TIMEOUTS, OrderMachine, State
from ..orders.records import load_records
from ..stock.reservations import lock_held
from ..storage.claims import claim_rows
from ..storage.models import Order
from .stage import StageName, Unit, UnitKind

_OWN_TIMERS = frozenset(st.value for st in TIMEOUTS)


class TimersStage:
    name = StageName.TIMERS

    def __init__(self, *, batch_size: int, clock: Clock, facts: FactBuilder, machine: OrderMachine) -> None:
        self.batch_size, self.clock, self.facts, self.machine = batch_size, clock, facts, machine
        self.current: Unit | None = None
        # One claim over the (status, due_at) index serves both kinds of timer.
        self.statuses = timed_statuses(machine.late)

    def run(self, s: Session, cache: FactCache) -> int:
        now = self.clock.now()
        rows = claim_rows(s, select(Order.id, Order.number, Order.status, Order.due_at, Order.warehouse,
                                    Order.carrier)
                          .where(Order.due_at <= now, Order.status.in_(self.statuses))
                          .order_by(Order.due_at, Order.id), self.batch_size)
        late = [r for r in rows if r.status not in _OWN_TIMERS]
        if late and self.machine.late is not None:
            self._alert(s, self.machine.late, late, now)
        orders = load_records(s, [r.id for r in rows if r.status in _OWN_TIMERS])
        lock_held(s, orders)  # a payment timeout releases stock: the batch's rows, locked in order first
        self.facts.facts(s, orders, cache, point=DecisionPoint.NOTIFICATIONS.value)
        for order in orders:
            self.current = Unit(UnitKind.ORDER, order.id)
            event, why = TIMEOUTS[State(order.status)]
            self.machine.fire(s, order, event, actor="timer", cause=why, cache=cache)
        self.current = None
        return len(rows)

    def _alert(self, s: Session, limits: LateLimits, rows: list[Any], now: datetime) -> None:
        for row in rows:
            self.current = Unit(UnitKind.ORDER, row.id)
            raise_alert(s, limits, self.machine.outbox, row, now)
        # Alerted once: the states it moves to inside the span keep no clock either.
        s.execute(update(Order).where(Order.id.in_([r.id for r in rows])).values(due_at=None),
                  execution_options={"synchronize_session": False})
        self.current = None

"""Parents: a split parent follows its children, done when all are, cancelled when all are.

A child that ends flags its parent (stage ``check``) in the same
transaction, so only flagged parents are looked at and none is missed.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..orders import flow
from ..orders.machine import Event, OrderMachine, State
from ..orders.records import load_records
from ..stock.reservations import lock_held
from ..storage.models import Order
from .stage import StageName, Unit, UnitKind, claim_step

FINAL = frozenset({State.COMPLETED.value, State.CLOSED.value, State.CANCELLED.value})


class ParentsStage:
    name = StageName.PARENTS
    step = flow.Step.CHECK

    def __init__(self, *, batch_size: int, machine: OrderMachine) -> None:
        self.batch_size, self.machine = batch_size, machine
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim_step(s, self.step, self.batch_size)
        if not ids:
            return 0
        done = 0
        statuses: dict[int, set[str]] = defaultdict(set)
        for pid, status in s.execute(select(Order.parent_id, Order.status).where(Order.parent_id.in_(ids))):
            statuses[pid].add(status)
        parents = load_records(s, ids)
        lock_held(s, parents)  # a parent cancelled with its children gives back whatever it still holds
        for order in parents:
            self.current = Unit(UnitKind.ORDER, order.id)
            kids = statuses[order.id]
            flow.advance(order, self.step)
            if not kids <= FINAL:
                continue
            if kids == {State.CANCELLED.value}:
                self.machine.fire(s, order, Event.CHILDREN_CANCELLED, actor="oms",
                                  cause="every child order was cancelled", cache=cache)
            else:
                self.machine.fire(s, order, Event.CHILDREN_DONE, actor="oms", cause="every child order is finished",
                                  cache=cache)
            done += 1
        self.current = None
        return done

"""Inbox: warehouse and carrier callbacks, applied in arrival order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..fulfilment.callbacks import Callbacks, InboxStatus, Unreadable
from ..orders.records import load_records
from ..plugin.contracts import CallbackEvent
from ..plugin.faults import PluginFault
from ..plugin.registry import RegistryError
from ..stock.reservations import lock_held
from ..storage.claims import claim_rows, lock_orders
from ..storage.models import InboxMessage, Order
from .stage import StageName, Unit, UnitKind


class InboxStage:
    name = StageName.INBOX

    def __init__(self, *, batch_size: int, facts: FactBuilder, callbacks: Callbacks) -> None:
        self.batch_size, self.facts, self.callbacks = batch_size, facts, callbacks
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        rows = claim_rows(s, select(InboxMessage.id, InboxMessage.source, InboxMessage.payload)
                          .where(InboxMessage.status == InboxStatus.PENDING.value).order_by(InboxMessage.id),
                          self.batch_size)
        events: dict[int, list[CallbackEvent]] = {}
        results: dict[int, tuple[str, str]] = {}
        for row in rows:
            try:
                events[row.id] = list(self.callbacks.parse(row.source, row.payload))
            except (Unreadable, RegistryError) as exc:
                results[row.id] = (InboxStatus.REJECTED.value, f"unreadable callback: {exc}")
            except PluginFault as fault:
                results[row.id] = (InboxStatus.REJECTED.value, f"the connector could not read it: {fault}")
        wanted = sorted({e.order_number for evs in events.values() for e in evs})
        # The orders (and the parents a finished child flags) are locked before they are read, then
        # the stock they may ship, release or take back: orders first, then stock, each in one order.
        family = s.execute(select(Order.id, Order.parent_id).where(Order.number.in_(wanted))).all() if wanted else []
        lock_orders(s, {i for row in family for i in row if i is not None})
        by_number = {o.number: o for o in load_records(s, [row.id for row in family])}
        lock_held(s, list(by_number.values()))
        # Facts for the notifications are built once for the whole batch.
        self.facts.facts(s, list(by_number.values()), cache, point=DecisionPoint.NOTIFICATIONS.value)
        for row in rows:
            if row.id not in events:
                continue
            self.current = Unit(UnitKind.CALLBACK, row.id)
            connector = self.callbacks.plugins.connectors.get(row.source)
            outcomes = [self.callbacks.apply(s, connector, ev, by_number.get(ev.order_number), cache)
                        for ev in events[row.id]]
            results[row.id] = (InboxStatus.REJECTED.value if any(o.startswith("rejected") for o in outcomes)
                               else InboxStatus.APPLIED.value, "; ".join(outcomes)[:4000])
        self.current = None
        if results:
            s.execute(update(InboxMessage), [{"id": i, "status": st, "outcome": oc} for i, (st, oc) in results.items()])
        return len(rows)


def reject(s: Session, inbox_id: int, why: str) -> None:
    """Set a callback aside for good (the runner calls this when applying it failed unexpectedly)."""
    values: dict[str, Any] = {"status": InboxStatus.REJECTED.value, "outcome": why[:4000]}
    s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id).values(**values),
              execution_options={"synchronize_session": False})

"""Inbox: warehouse and carrier callbacks, applied in arrival order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..fulfilment.callbacks import Callbacks, InboxStatus, Unreadable
from ..invoices.submission import read_states
from ..orders.records import load_records
from ..plugin.contracts import CallbackEvent
from ..plugin.faults import PluginFault
from ..plugin.registry import RegistryError
from ..stock.batch import stock_batch
from ..stock.reservations import lock_held
from ..storage.claims import claim_rows, lock_orders
from ..storage.models import Exchange, InboxMessage, MergeGroup, Order, StockDocument
from .stage import StageName, Unit, UnitKind


class InboxStage:
    name = StageName.INBOX

    def __init__(self, *, batch_size: int, facts: FactBuilder, callbacks: Callbacks) -> None:
        self.batch_size, self.facts, self.callbacks = batch_size, facts, callbacks
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        rows = claim_rows(s, select(InboxMessage.id, InboxMessage.source, InboxMessage.payload,
                                    InboxMessage.warehouse, InboxMessage.correlation_id)
                          .where(InboxMessage.status == InboxStatus.PENDING.value).order_by(InboxMessage.id),
                          self.batch_size)
        events: dict[int, list[CallbackEvent]] = {}
        results: dict[int, tuple[str, str]] = {}
        first = _first_of(s, rows)
        for row in rows:
            if row.correlation_id and first.get((row.source, row.correlation_id), row.id) < row.id:
                results[row.id] = (InboxStatus.DUPLICATE.value, f"duplicate of callback "
                                   f"{first[(row.source, row.correlation_id)]} (id {row.correlation_id}): nothing done")
                continue
            try:
                events[row.id] = list(self.callbacks.parse(row.source, row.payload))
            except (Unreadable, RegistryError) as exc:
                results[row.id] = (InboxStatus.REJECTED.value, f"unreadable callback: {exc}")
            except PluginFault as fault:
                results[row.id] = (InboxStatus.REJECTED.value, f"the connector could not read it: {fault}")
        # An address answer changes its order too: locked with the rest, in the same order.
        wanted = sorted({e.order_number for evs in events.values() for e in evs if e.kind in ("order", "readdress")})
        # The orders (and the parents a finished child flags) are locked before they are read, then
        # the stock they may ship, release or take back: orders first, then stock, each in one order.
        family = s.execute(select(Order.id, Order.parent_id, Order.number)
                           .where(Order.number.in_(wanted))).all() if wanted else []
        # A merged parcel's document number stands for every order still in it.
        parcels = _parcels(s, sorted(set(wanted) - {row.number for row in family}))
        family += [row for rows in parcels.values() for row in rows]
        lock_orders(s, {i for row in family for i in (row.id, row.parent_id) if i is not None})
        by_number = {o.number: o for o in load_records(s, [row.id for row in family])}
        by_id = {o.id: o for o in by_number.values()}
        in_parcel = {number: [by_id[row.id] for row in rows if row.id in by_id] for number, rows in parcels.items()}
        lock_held(s, list(by_number.values()))
        # Then the stock rows the batch's receipts and goods sent out will move: in the same global order.
        stock_batch(s).load(_report_keys(s, rows, events))
        # How the invoices the tax platform answers about stand, read for the whole batch (invoices/submission.py).
        read_states(s, (str(ev.data.get("invoice") or "") for evs in events.values() for ev in evs
                        if ev.kind == "einvoice"))
        # Facts for the notifications are built once for the whole batch.
        self.facts.facts(s, list(by_number.values()), cache, point=DecisionPoint.NOTIFICATIONS.value)
        for row in rows:
            if row.id not in events:
                continue
            self.current = Unit(UnitKind.CALLBACK, row.id)
            connector = self.callbacks.plugins.connectors.get(row.source)
            outcomes = [self.callbacks.apply(s, connector, ev, order, cache, warehouse=row.warehouse)
                        for ev in events[row.id]
                        for order in (in_parcel.get(ev.order_number) or [by_number.get(ev.order_number)])
                        ] or ["ignored: no events in it"]
            if any(o.startswith("rejected") for o in outcomes):
                status = InboxStatus.REJECTED
            elif all(o.startswith("ignored") for o in outcomes):
                status = InboxStatus.IGNORED
            else:
                status = InboxStatus.APPLIED
            results[row.id] = (status.value, "; ".join(outcomes)[:4000])
            exchange = row.payload.get("exchange_id") if isinstance(row.payload, dict) else None
            about = next((ev.order_number for ev in events[row.id] if ev.order_number), "")
            if exchange and about:
                # The bytes of an HTTP callback, now that they are read, belong to the order they are about.
                s.execute(update(Exchange).where(Exchange.id == exchange).values(order_number=about[:32]),
                          execution_options={"synchronize_session": False})
        self.current = None
        if results:
            s.execute(update(InboxMessage), [{"id": i, "status": st, "outcome": oc} for i, (st, oc) in results.items()])
        return len(rows)


def _parcels(s: Session, numbers: Sequence[str]) -> dict[str, list[Any]]:
    """Merged parcels' document numbers among ``numbers`` -> (id, parent_id) of the orders still in each."""
    if not numbers:
        return {}
    groups = dict(s.execute(select(MergeGroup.id, MergeGroup.number).where(MergeGroup.number.in_(numbers)))
                  .all())
    if not groups:
        return {}
    out: dict[str, list[Any]] = {n: [] for n in groups.values()}
    for row in s.execute(select(Order.id, Order.parent_id, Order.number, Order.merge_group_id)
                         .where(Order.merge_group_id.in_(list(groups)), Order.status != "cancelled")
                         .order_by(Order.id)):
        out[groups[row.merge_group_id]].append(row)
    return out


def reject(s: Session, inbox_id: int, why: str) -> None:
    """Set a callback aside for good (the runner calls this when applying it failed unexpectedly)."""
    values: dict[str, Any] = {"status": InboxStatus.REJECTED.value, "outcome": why[:4000]}
    s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id).values(**values),
              execution_options={"synchronize_session": False})


def _first_of(s: Session, rows: Sequence[Any]) -> dict[tuple[str, str], int]:
    """(source, callback id) -> the first inbox row that carried it, for the ids in this batch."""
    ids = sorted({r.correlation_id for r in rows if r.correlation_id})
    out: dict[tuple[str, str], int] = {}
    for i in range(0, len(ids), 500):
        for inbox_id, source, cid in s.execute(
                select(InboxMessage.id, InboxMessage.source, InboxMessage.correlation_id)
                .where(InboxMessage.correlation_id.in_(ids[i:i + 500])).order_by(InboxMessage.id)):
            out.setdefault((source, cid), inbox_id)
    return out


def _report_keys(s: Session, rows: Sequence[Any], events: dict[int, list[CallbackEvent]]) -> set[tuple[str, str]]:
    """(warehouse, sku) of every line the batch's receipts and goods sent out name."""
    reports = [(row, ev) for row in rows for ev in events.get(row.id, ()) if ev.kind in ("receipt", "shipped_out")]
    if not reports:
        return set()
    numbers = {str(ev.data.get("document")) for _, ev in reports}
    where = dict(s.execute(select(StockDocument.number, StockDocument.warehouse)
                           .where(StockDocument.number.in_(sorted(numbers)))).all())
    keys: set[tuple[str, str]] = set()
    for row, ev in reports:
        warehouse = where.get(str(ev.data.get("document"))) or row.warehouse
        lines = ev.data.get("lines")
        if warehouse and isinstance(lines, list):
            keys.update((warehouse, ln["sku"]) for ln in lines
                        if isinstance(ln, dict) and isinstance(ln.get("sku"), str))
    return keys

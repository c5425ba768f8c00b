"""Reconciliation: a warehouse's own stock count (its WMS's snapshot) against the OMS's, difference by difference.

A snapshot names, per warehouse and SKU, the quantity the WMS holds; for
every warehouse it names it is taken as complete (a SKU the OMS holds there
and the snapshot leaves out counts 0 there), unless ``partial``.

Algorithm, per warehouse and SKU (``difference = WMS - OMS on hand``):

1. a SKU the catalogue does not know: cause **unknown SKU** (nothing can be
   posted for it: import the product first);
2. the difference that documents in flight explain is set apart:
   - the WMS may hold *less* by the units of orders it holds (dispatched,
     accepted, picking, packed, interception asked) whose shipment the OMS has
     not heard of yet, and of returns to vendors it has not reported sent;
   - it may hold *more* by what open purchase orders and customer returns
     still expect, received but not reported yet;
   within those bounds the cause is **documents in flight** (naming them), and
   nothing is to be posted: the callbacks will post it;
3. a WMS may count the goods customers sent back damaged, which the OMS keeps
   apart from on hand (damaged.py): holding *more* by up to those units, the
   cause is **damaged stock**, and nothing is posted (an adjustment would put
   damaged goods on sale);
4. the rest is unexplained: cause **missing receipt** when the WMS holds more
   (goods came in that no document announced), **unreported loss** when it
   holds less; with ``post``, a compensating ``adjustment`` of exactly that
   rest is posted (never below what orders have reserved: such a row is
   reported, not posted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..masterdata.files import Row
from ..masterdata.service import ImportRefused, Report, RowError, checked_rows
from ..storage.models import (
    DamagedStock,
    Order,
    Product,
    Reservation,
    Stock,
    StockDocument,
    StockDocumentLine,
    Warehouse,
)
from .batch import StockError, stock_batch
from .movements import Movement

# Orders whose goods the warehouse holds and may have shipped before the OMS hears of it.
AT_WAREHOUSE = ("dispatched", "accepted", "picking", "packed", "intercept_requested")


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    warehouse: str = Field(min_length=1, max_length=32)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=0, le=10**9)


@dataclass
class Difference:
    warehouse: str
    sku: str
    oms: int
    wms: int
    cause: str
    detail: str = ""
    to_post: int = 0              # the unexplained rest, posted as an adjustment with ``post``
    posted: bool = False
    refused: str = ""             # why it could not be posted

    @property
    def difference(self) -> int:
        return self.wms - self.oms

    def to_dict(self) -> dict[str, Any]:
        return {"warehouse": self.warehouse, "sku": self.sku, "oms_on_hand": self.oms, "wms_quantity": self.wms,
                "difference": self.difference, "cause": self.cause, "detail": self.detail,
                "unexplained": self.to_post, "posted": self.posted, "refused": self.refused}


@dataclass
class Reconciliation:
    warehouses: list[str]
    compared: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if (d.to_post and not d.posted) or d.cause == "unknown SKU"]

    def to_dict(self) -> dict[str, Any]:
        return {"warehouses": self.warehouses, "compared": self.compared, "ok": not self.unexplained,
                "differences": [d.to_dict() for d in self.differences]}


def read_snapshot(rows: Sequence[Row], source: str) -> list[SnapshotIn]:
    """Checked rows; ImportRefused naming file, row and field when one is bad (nothing is compared)."""
    report = Report("snapshot row", source)
    out = [rec for _, rec in checked_rows(rows, SnapshotIn, ("warehouse", "sku"), report)]
    if report.errors:
        report.applied = False
        raise ImportRefused(report)
    return out


def _in_flight(s: Session, warehouses: list[str]) -> tuple[dict[tuple[str, str], list[tuple[str, int]]],
                                                           dict[tuple[str, str], list[tuple[str, int]]]]:
    """(less, more): per (warehouse, sku), the documents that may make the WMS hold less, or more, with units."""
    less: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    more: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for number, w, sku, q in s.execute(
            select(Order.number, Reservation.warehouse, Reservation.sku, func.sum(Reservation.quantity))
            .join(Order, Order.id == Reservation.order_id)
            .where(Order.status.in_(AT_WAREHOUSE), Order.warehouse == Reservation.warehouse,
                   Reservation.warehouse.in_(warehouses))
            .group_by(Order.number, Reservation.warehouse, Reservation.sku)):
        less[(w, sku)].append((number, int(q)))
    for number, kind, w, sku, left in s.execute(
            select(StockDocument.number, StockDocument.kind, StockDocument.warehouse, StockDocumentLine.sku,
                   StockDocumentLine.quantity - StockDocumentLine.done)
            .join(StockDocumentLine, StockDocumentLine.document_id == StockDocument.id)
            .where(StockDocument.warehouse.in_(warehouses), StockDocument.status.in_(["open", "partial"]))):
        if left > 0:
            (less if kind == "return_to_vendor" else more)[(w, sku)].append((number, int(left)))
    return less, more


def reconcile(s: Session, snapshot: Sequence[SnapshotIn], *, partial: bool = False, post: bool = False,
              actor: str = "", at: datetime, document: str = "reconciliation") -> Reconciliation:
    warehouses = sorted({r.warehouse for r in snapshot})
    wms = {(r.warehouse, r.sku): r.quantity for r in snapshot}
    oms: dict[tuple[str, str], int] = {}
    for w, sku, on_hand in s.execute(select(Stock.warehouse, Stock.sku, Stock.on_hand)
                                     .where(Stock.warehouse.in_(warehouses))):
        oms[(w, sku)] = on_hand
    keys = set(wms) | (set() if partial else {k for k, q in oms.items() if q})
    known = set(s.scalars(select(Product.sku).where(Product.sku.in_(sorted({k for _, k in keys})))))
    less, more = _in_flight(s, warehouses)
    damaged = {(w, sku): q for w, sku, q in s.execute(
        select(DamagedStock.warehouse, DamagedStock.sku, DamagedStock.quantity)
        .where(DamagedStock.warehouse.in_(warehouses), DamagedStock.quantity > 0))}
    result = Reconciliation(warehouses, len(keys))
    for key in sorted(keys):
        w, sku = key
        ours, theirs = oms.get(key, 0), wms.get(key, 0)
        if ours == theirs:
            continue
        if sku not in known:
            result.differences.append(Difference(w, sku, ours, theirs, "unknown SKU",
                                                 "not in the catalogue: import the product, then reconcile again"))
            continue
        diff = theirs - ours
        docs = less.get(key, []) if diff < 0 else more.get(key, [])
        room = sum(q for _, q in docs)
        named = ", ".join(f"{n} ({q})" for n, q in docs)
        if abs(diff) <= room:
            what = ("shipments or returns to vendors not reported yet" if diff < 0
                    else "receipts not reported yet")
            result.differences.append(Difference(w, sku, ours, theirs, "documents in flight", f"{what}: {named}"))
            continue
        kept = damaged.get(key, 0) if diff > 0 else 0
        if kept and diff <= room + kept:
            detail = f"the WMS may count the {kept} damaged unit(s) the OMS keeps apart from on hand"
            result.differences.append(Difference(w, sku, ours, theirs, "damaged stock",
                                                 detail + (f" (in flight: {named})" if docs else "")))
            continue
        rest = diff + room if diff < 0 else diff - room - kept
        cause = "missing receipt" if diff > 0 else "unreported loss"
        detail = ("the warehouse holds goods no document announced" if diff > 0
                  else "the warehouse holds fewer than the OMS and no document in flight explains it")
        if docs:
            detail += f" (in flight, set apart: {named})"
        if kept:
            detail += f" (damaged, set apart: {kept})"
        result.differences.append(Difference(w, sku, ours, theirs, cause, detail, to_post=rest))
    if post:
        batch = stock_batch(s)
        batch.load((d.warehouse, d.sku) for d in result.differences if d.to_post)
        for d in result.differences:
            if not d.to_post:
                continue
            try:
                # Posted around the ledger's verbs, which would tell the event sink: the batch tells it instead.
                batch.post(Movement.ADJUSTMENT, d.warehouse, d.sku, d.to_post, document=document[:64], at=at,
                           actor=actor, note=f"reconciliation: {d.cause}: WMS {d.wms}, OMS {d.oms}", tell=True)
                d.posted = True
            except StockError as exc:
                d.refused = str(exc)
    return result


class Reconciler:
    def __init__(self, *, db: Any, clock: Any) -> None:
        self.db, self.clock = db, clock

    def run(self, rows: Sequence[Row], *, source: str, partial: bool = False, post: bool = False,
            actor: str = "") -> Reconciliation:
        """Compare (and with ``post``, adjust) in one transaction; ImportRefused for a bad snapshot row."""
        snapshot = read_snapshot(rows, source)

        def run() -> Reconciliation:
            with self.db.session() as s:
                unknown = sorted({r.warehouse for r in snapshot} - set(s.scalars(select(Warehouse.code))))
                if unknown:
                    report = Report("snapshot row", source, applied=False)
                    report.errors = [RowError(source, "warehouse", f"no warehouse '{w}'") for w in unknown]
                    raise ImportRefused(report)
                return reconcile(s, snapshot, partial=partial, post=post, actor=actor, at=self.clock.now(),
                                 document=f"reconcile:{source}"[:64])

        return self.db.run_retrying(run, what=f"reconciliation of {source}")

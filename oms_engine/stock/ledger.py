"""The stock ledger's verbs: goods in, goods out, adjustments, transfers and counts, each a typed movement.

What each movement does to a balance is defined once, in movements.py; every
one is posted through the transaction's stock batch (batch.py), under the
stock row locks taken in the global order (locking.py). Reservations and their
release are posted by reservations.py. Each verb states the invariant it
keeps: available never goes below zero (a movement that would take it there
raises :class:`StockError` and changes nothing), and every change of on hand,
reserved and value is a ledger row with its source document, so balances can
be recomputed from the ledger (verify.py). Each movement posted here is also an
event for downstream systems when the OMS publishes them (events/sink.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from ..events.sink import sink_of
from ..storage.models import StockLot
from . import lots
from .batch import StockError, stock_batch
from .movements import Movement, MovementError, deltas

__all__ = ["StockError", "count", "post", "transfer"]


def post(s: Session, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, at: datetime,
         order_id: int | None = None, unit_cost: int | None = None, actor: str = "", note: str = "",
         lot: str | None = None, expires_on: date | None = None, damaged: int = 0) -> int:
    """Post one movement (movements.py says what ``qty`` may be for its kind); returns the value it moved.
    Goods of a lot-tracked product name their ``lot`` (and, coming in, its ``expires_on``): lots.py.
    ``damaged``: a regrade's change of damaged stock, which damaged.py keeps (it calls this)."""
    _lot(s, kind, warehouse, sku, qty, lot, expires_on)
    value = stock_batch(s).post(kind, warehouse, sku, qty, document=document, at=at, order_id=order_id,
                                unit_cost=unit_cost, actor=actor, note=note, lot=lot, damaged=damaged)
    _told(s, kind, warehouse, sku, qty, document=document, at=at, order_id=order_id, lot=lot, damaged=damaged)
    return value


def _told(s: Session, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, at: datetime,
          order_id: int | None = None, lot: str | None = None, damaged: int = 0) -> None:
    """The movement just posted, to the OMS's event sink if it publishes events (after the post: one it refused
    is no event)."""
    events = sink_of(s)
    if events is not None:
        on_hand, reserved = deltas(kind, qty)
        events.movement(s, kind.value, warehouse, sku, qty, on_hand=on_hand, reserved=reserved, damaged=damaged,
                        document=document, at=at, order_id=order_id, lot=lot)


def _lot(s: Session, kind: Movement, warehouse: str, sku: str, qty: int, lot: str | None,
         expires_on: date | None) -> None:
    """Keep the lot of a lot-tracked product's goods movement; StockError when it is missing or not one."""
    try:
        on_hand, _ = deltas(kind, qty)
    except MovementError as exc:
        raise StockError(str(exc)) from None
    if not on_hand:
        return
    if not lots.tracked(s, [sku]):
        if lot:
            raise StockError(f"{sku} is not kept in lots: a lot cannot be given for it")
        return
    if not lot:
        raise StockError(f"{sku} is kept in lots: name the lot of the {abs(qty)} unit(s) ({kind.value} at {warehouse})")
    lots.move(s, warehouse, sku, lot, on_hand, expires_on=expires_on)


def transfer(s: Session, sku: str, qty: int, source: str, target: str, *, document: str, at: datetime,
             actor: str = "", note: str = "", lot: str | None = None) -> int:
    """Move ``qty`` units from one warehouse to another: two transfer rows of one document, the units
    and their value leaving ``source`` and arriving at ``target`` (a lot-tracked product's lot with them).
    Returns the value moved."""
    if source == target:
        raise StockError(f"a transfer of {sku} needs two warehouses, got {source} twice")
    if qty <= 0:
        raise StockError(f"transfer of {sku}: the quantity must be positive, got {qty}")
    batch = stock_batch(s)
    batch.load(sorted([(source, sku), (target, sku)]))   # both rows, in the global lock order
    expires = None
    if lot and lots.tracked(s, [sku]):
        found = s.get(StockLot, (source, sku, lot))
        expires = found.expires_on if found is not None else None
    _lot(s, Movement.TRANSFER, source, sku, -qty, lot, None)
    _lot(s, Movement.TRANSFER, target, sku, qty, lot, expires)
    value = -batch.post(Movement.TRANSFER, source, sku, -qty, document=document, at=at, actor=actor, note=note,
                        lot=lot)
    batch.post(Movement.TRANSFER, target, sku, qty, document=document, at=at, value=value, actor=actor, note=note,
               lot=lot)
    _told(s, Movement.TRANSFER, source, sku, -qty, document=document, at=at, lot=lot)
    _told(s, Movement.TRANSFER, target, sku, qty, document=document, at=at, lot=lot)
    return value


def count(s: Session, warehouse: str, sku: str, counted: int, *, document: str, at: datetime, actor: str = "",
          note: str = "", lot: str | None = None, expires_on: date | None = None) -> int:
    """A stocktake: on hand becomes ``counted`` (of the ``lot``, for a lot-tracked product); returns the
    difference posted (0: nothing to post)."""
    if counted < 0:
        raise StockError(f"stocktake of {sku} at {warehouse}: a count cannot be negative, got {counted}")
    batch = stock_batch(s)
    if lot and lots.tracked(s, [sku]):
        found = s.get(StockLot, (warehouse, sku, lot))
        diff = counted - (found.on_hand if found is not None else 0)
    else:
        diff = counted - batch.on_hand(warehouse, sku)
    if diff:
        _lot(s, Movement.STOCKTAKE, warehouse, sku, diff, lot, expires_on)
        batch.post(Movement.STOCKTAKE, warehouse, sku, diff, document=document, at=at, actor=actor, note=note,
                   lot=lot)
        _told(s, Movement.STOCKTAKE, warehouse, sku, diff, document=document, at=at, lot=lot)
    return diff

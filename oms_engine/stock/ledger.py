"""The stock ledger's verbs: goods in, goods out, adjustments, transfers and counts, each a typed movement.

What each movement does to a balance is defined once, in movements.py; every
one is posted through the transaction's stock batch (batch.py), under the
stock row locks taken in the global order (locking.py). Reservations and their
release are posted by reservations.py. Each verb states the invariant it
keeps: available never goes below zero (a movement that would take it there
raises :class:`StockError` and changes nothing), and every change of on hand,
reserved and value is a ledger row with its source document, so balances can
be recomputed from the ledger (verify.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .batch import StockError, stock_batch
from .movements import Movement

__all__ = ["StockError", "count", "post", "transfer"]


def post(s: Session, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, at: datetime,
         order_id: int | None = None, unit_cost: int | None = None, actor: str = "", note: str = "") -> int:
    """Post one movement (movements.py says what ``qty`` may be for its kind); returns the value it moved."""
    return stock_batch(s).post(kind, warehouse, sku, qty, document=document, at=at, order_id=order_id,
                               unit_cost=unit_cost, actor=actor, note=note)


def transfer(s: Session, sku: str, qty: int, source: str, target: str, *, document: str, at: datetime,
             actor: str = "", note: str = "") -> int:
    """Move ``qty`` units from one warehouse to another: two transfer rows of one document, the units
    and their value leaving ``source`` and arriving at ``target``. Returns the value moved."""
    if source == target:
        raise StockError(f"a transfer of {sku} needs two warehouses, got {source} twice")
    if qty <= 0:
        raise StockError(f"transfer of {sku}: the quantity must be positive, got {qty}")
    batch = stock_batch(s)
    batch.load(sorted([(source, sku), (target, sku)]))   # both rows, in the global lock order
    value = -batch.post(Movement.TRANSFER, source, sku, -qty, document=document, at=at, actor=actor, note=note)
    batch.post(Movement.TRANSFER, target, sku, qty, document=document, at=at, value=value, actor=actor, note=note)
    return value


def count(s: Session, warehouse: str, sku: str, counted: int, *, document: str, at: datetime, actor: str = "",
          note: str = "") -> int:
    """A stocktake: on hand becomes ``counted``; returns the difference posted (0: nothing to post)."""
    if counted < 0:
        raise StockError(f"stocktake of {sku} at {warehouse}: a count cannot be negative, got {counted}")
    batch = stock_batch(s)
    diff = counted - batch.on_hand(warehouse, sku)
    if diff:
        batch.post(Movement.STOCKTAKE, warehouse, sku, diff, document=document, at=at, actor=actor, note=note)
    return diff

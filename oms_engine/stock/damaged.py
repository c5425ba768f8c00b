"""Damaged stock: goods a customer sent back damaged, kept apart from sellable stock until written off or regraded.

Per warehouse and SKU, ``damaged_stock`` holds the units; each change is a
ledger row of its own kind (movements.py) whose ``damaged_delta`` says it, so
``oms stock verify`` recomputes it like any balance:

* ``return_damaged`` (+q): a customer return received damaged;
* ``scrap`` (-q): written off, or sent back to the supplier;
* ``regrade`` (-q damaged, +q on hand): repaired, or found sellable after all.
  Its on-hand part is posted through the ledger (ledger.py, batch.py) at the
  current average cost, on the same row, so value, availability, lots and the
  orders waiting for the SKU are served as for any goods in; a lot-tracked
  product names the lot the units go into.

Damaged units are never available and never reserved, carry no value (they
left the books when they were sold; they come back at none) and no lot. The
reservations' hot path never reads or writes any of this.

Locking: the stock row of the (warehouse, SKU) is locked first, through the
transaction's stock batch, then the damaged row by its own statement, so a
regrade and a receipt of the same SKU take their locks in the same order.
A quantity is taken off by one conditional UPDATE: it never goes below zero,
and one that would is refused (StockError) before anything is posted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..events.sink import sink_of
from ..storage.db import append
from ..storage.models import DamagedStock, StockMovement
from .batch import StockError, stock_batch
from .ledger import post as post_goods
from .movements import DAMAGED, Movement, MovementError, damaged_delta

_TABLE = DamagedStock.__table__
_INSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def post(s: Session, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, at: datetime,
         order_id: int | None = None, actor: str = "", note: str = "", lot: str | None = None,
         expires_on: date | None = None) -> int:
    """Post a movement of damaged stock (``return_damaged``, ``scrap`` or ``regrade``, ``qty`` > 0); returns the
    value it moved (a regrade's, at the current average; otherwise 0). StockError when more would be taken
    than is damaged, or a regrade's goods cannot come in (a lot-tracked product without its ``lot``)."""
    if kind not in DAMAGED:
        raise StockError(f"{kind.value} is not a movement of damaged stock")
    try:
        change = damaged_delta(kind, qty)
    except MovementError as exc:
        raise StockError(str(exc)) from None
    if lot is not None and kind is not Movement.REGRADE:
        raise StockError(f"damaged goods are kept without a lot: {kind.value} of {sku} takes none")
    stock_batch(s).load([(warehouse, sku)])   # the stock row's lock before the damaged row's (module doc)
    if change > 0:
        _add(s, warehouse, sku, change)
    else:
        _take(s, kind, warehouse, sku, -change)
    if kind is Movement.REGRADE:
        return post_goods(s, kind, warehouse, sku, qty, document=document, at=at, order_id=order_id,
                          actor=actor, note=note, lot=lot, expires_on=expires_on, damaged=change)
    append(s, StockMovement, warehouse=warehouse, sku=sku, kind=kind.value, on_hand_delta=0, reserved_delta=0,
           damaged_delta=change, value_delta=0, unit_cost=None, order_id=order_id, document=document, at=at,
           actor=actor, note=note)
    # Written around the ledger's verbs (a regrade's goes through them, above, and is told there).
    events = sink_of(s)
    if events is not None:
        events.movement(s, kind.value, warehouse, sku, qty, on_hand=0, reserved=0, damaged=change, document=document,
                        at=at, order_id=order_id, lot=None)
    return 0


def _add(s: Session, warehouse: str, sku: str, qty: int) -> None:
    # One statement whether or not the row exists: two receipts of a new SKU at once do not race to insert it.
    insert = _INSERT[s.get_bind().dialect.name](_TABLE).values(warehouse=warehouse, sku=sku, quantity=qty)
    s.execute(insert.on_conflict_do_update(index_elements=["warehouse", "sku"],
                                           set_={"quantity": _TABLE.c.quantity + insert.excluded.quantity}))


def _take(s: Session, kind: Movement, warehouse: str, sku: str, qty: int) -> None:
    c = _TABLE.c
    taken = s.execute(update(_TABLE).where(c.warehouse == warehouse, c.sku == sku, c.quantity >= qty)
                      .values(quantity=c.quantity - qty))
    if taken.rowcount != 1:   # type: ignore[attr-defined]
        raise StockError(f"{kind.value} of {qty} {sku} at {warehouse}: only {quantity(s, warehouse, sku)} damaged")


def quantity(s: Session, warehouse: str, sku: str) -> int:
    """The damaged units of ``sku`` at ``warehouse`` now, as this transaction sees them."""
    return int(s.scalar(select(DamagedStock.quantity).where(DamagedStock.warehouse == warehouse,
                                                            DamagedStock.sku == sku)) or 0)


def balances(s: Session, *, warehouse: str | None = None, sku: str | None = None, limit: int = 1000,
             after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The damaged units per (sku, warehouse), in that order; none left: not listed. ``after``: the last
    (sku, warehouse) of the page before."""
    stmt = (select(DamagedStock).where(DamagedStock.quantity > 0)
            .order_by(DamagedStock.sku, DamagedStock.warehouse).limit(limit))
    if warehouse:
        stmt = stmt.where(DamagedStock.warehouse == warehouse)
    if sku:
        stmt = stmt.where(DamagedStock.sku == sku)
    if after:
        stmt = stmt.where((DamagedStock.sku > after[0])
                          | ((DamagedStock.sku == after[0]) & (DamagedStock.warehouse > after[1])))
    return [{"warehouse": r.warehouse, "sku": r.sku, "quantity": r.quantity} for r in s.scalars(stmt)]

"""Stock per warehouse and SKU, moved only by conditional updates, each with a ledger row.

Every change is a single ``UPDATE ... WHERE on_hand - reserved >= :q`` whose
row count says whether it happened, plus an append-only movement row with
its source document. No read-then-write, so available stock cannot go below
zero under any number of concurrent processes, on SQLite or PostgreSQL (and
CHECK constraints back it).

Lock order. On PostgreSQL each UPDATE locks its stock row until the
transaction ends, so two transactions that move stock of the same SKUs in
different orders deadlock. Every transaction therefore takes its stock row
locks in one global order, (warehouse, sku) by code point, before it moves
anything: :func:`lock_stock` with every row the work may touch (a payload's
SKUs at intake, a routing batch's SKUs, the reservations of the orders a
stage is about to cancel or ship). Order rows are locked before stock rows
(claims and commands lock the order first). Rows already locked by the
transaction are skipped, so a later call costs nothing when an earlier one
covered it. SQLite has one writer at a time (``BEGIN IMMEDIATE``): nothing
to order there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..errors import OmsError
from ..storage.db import append, locked_rows, row_locks_apply
from ..storage.models import Stock, StockMovement

log = logging.getLogger("oms.stock")
# SKUs per locking statement (of one warehouse). Past a few hundred PostgreSQL's planner prefers
# reading the warehouse's every row to probing the key per SKU: 500 took half the time 5,000 did.
LOCK_CHUNK = 500


class StockError(OmsError):
    pass


class Movement(StrEnum):
    RESERVE = "reserve"
    RELEASE = "release"
    SHIP = "ship"
    RECEIVE = "receive"     # goods in: purchase, return, adjustment
    RETURN = "return"


def _stock_update(kind: Movement) -> Any:
    """The conditional UPDATE for one kind of movement, built once: :q is the quantity."""
    stmt = update(Stock).where(Stock.warehouse == bindparam("w"), Stock.sku == bindparam("k"))
    if kind is Movement.RESERVE:
        stmt = stmt.where(Stock.on_hand - Stock.reserved >= bindparam("q"))
        return stmt.values(reserved=Stock.reserved + bindparam("q"))
    if kind is Movement.RELEASE:
        stmt = stmt.where(Stock.reserved >= bindparam("q"))
        return stmt.values(reserved=Stock.reserved - bindparam("q"))
    if kind is Movement.SHIP:
        stmt = stmt.where(Stock.reserved >= bindparam("q"), Stock.on_hand >= bindparam("q"))
        return stmt.values(on_hand=Stock.on_hand - bindparam("q"), reserved=Stock.reserved - bindparam("q"))
    return stmt.values(on_hand=Stock.on_hand + bindparam("q"))


_UPDATES = {kind: _stock_update(kind) for kind in (Movement.RESERVE, Movement.RELEASE, Movement.SHIP,
                                                   Movement.RECEIVE)}
_DELTAS = {Movement.RESERVE: (0, 1), Movement.RELEASE: (0, -1), Movement.SHIP: (-1, -1), Movement.RECEIVE: (1, 0)}


def move(s: Session, *, warehouse: str, sku: str, kind: Movement, qty: int, order_id: int | None,
         document: str, at: datetime, ledger_kind: str | None = None) -> bool:
    """One conditional stock change and its ledger row; False when the condition did not hold."""
    if row_locks_apply(s):
        _note_locked(s, [(warehouse, sku)])  # the UPDATE locks the row if nothing did before
    result = s.execute(_UPDATES[kind], {"w": warehouse, "k": sku, "q": qty},
                       execution_options={"synchronize_session": False})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    d_on_hand, d_reserved = _DELTAS[kind]
    append(s, StockMovement, warehouse=warehouse, sku=sku, kind=ledger_kind or kind.value,
           on_hand_delta=d_on_hand * qty, reserved_delta=d_reserved * qty, order_id=order_id, document=document,
           at=at)
    return True


def lock_stock(s: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Lock these stock rows, (warehouse, sku), until the transaction ends, in the global order.

    Returns the available quantity of each row it locked now (read under the
    lock, so exact); rows this transaction had locked already, and rows that
    do not exist, are not in it. Nothing to do on SQLite.
    """
    if not row_locks_apply(s):
        return {}
    held = locked_rows(s)
    todo = sorted(set(keys) - held)
    if not todo:
        return {}
    _note_locked(s, todo)
    # One warehouse at a time, its SKUs in chunks, each sorted by code point (COLLATE "C", the
    # order Python sorts str in): the statements, taken in turn, lock in the global order. Not a
    # row-value `(warehouse, sku) IN (...)`: PostgreSQL plans that as a scan of the whole table
    # with a filter (it took most of a worker's time); `warehouse = ? AND sku IN (...)` walks the key.
    by_warehouse: dict[str, list[str]] = {}
    for w, k in todo:
        by_warehouse.setdefault(w, []).append(k)
    found: dict[tuple[str, str], int] = {}
    for w, skus in by_warehouse.items():
        for i in range(0, len(skus), LOCK_CHUNK):
            rows = s.execute(
                select(Stock.sku, Stock.on_hand - Stock.reserved)
                .where(Stock.warehouse == w, Stock.sku.in_(skus[i:i + LOCK_CHUNK]))
                .order_by(Stock.sku.collate("C"))
                .with_for_update())
            found.update({(w, k): int(q) for k, q in rows})
    return found


def _note_locked(s: Session, keys: list[tuple[str, str]]) -> None:
    held = locked_rows(s)
    new = [k for k in keys if k not in held]
    if new and held and log.isEnabledFor(logging.DEBUG) and min(new) < max(held):
        # Not a fault (the retry covers a deadlock), but a caller that should have locked earlier.
        log.debug("stock row %s locked after %s: out of the global order", min(new), max(held))
    held.update(new)


def receive(s: Session, warehouse: str, sku: str, qty: int, kind: str, document: str,
            at: datetime, order_id: int | None = None) -> None:
    """Goods come in (a purchase, a return, an adjustment): on hand grows."""
    if qty <= 0:
        raise StockError(f"cannot receive a quantity of {qty}")
    if not move(s, warehouse=warehouse, sku=sku, kind=Movement.RECEIVE, qty=qty, order_id=order_id,
                document=document, at=at, ledger_kind=kind):
        raise StockError(f"no stock row for {sku} at {warehouse}")

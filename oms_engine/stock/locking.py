"""Stock row locks, taken in one global order so that no two transactions deadlock over stock.

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

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.db import locked_rows, row_locks_apply
from ..storage.models import Stock

log = logging.getLogger("oms.stock")
# SKUs per locking statement (of one warehouse). Past a few hundred PostgreSQL's planner prefers
# reading the warehouse's every row to probing the key per SKU: 500 took half the time 5,000 did.
LOCK_CHUNK = 500


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

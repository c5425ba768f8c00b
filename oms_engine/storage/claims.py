"""Claiming a batch of ready rows for one worker.

On PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED``: any number
of workers on any number of machines take disjoint batches through row locks
alone. SQLite has a single writer at a time (``BEGIN IMMEDIATE``), so a plain
``LIMIT`` is the same guarantee there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from .models import Order


def _locked(s: Session, stmt: Select[Any], limit: int) -> Select[Any]:
    stmt = stmt.limit(limit)
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


def claim(s: Session, stmt: Select[Any], limit: int) -> list[Any]:
    """The first column of up to ``limit`` ready rows, locked for this worker."""
    return list(s.scalars(_locked(s, stmt, limit)))


def claim_rows(s: Session, stmt: Select[Any], limit: int) -> list[Row[Any]]:
    """Plain rows (no ORM objects): queue tables are read and written in bulk."""
    return list(s.execute(_locked(s, stmt, limit)))


def lock_orders(s: Session, ids: Iterable[int]) -> None:
    """Wait for and take the row locks of these orders, lowest id first (PostgreSQL; nothing on SQLite).

    For a stage that changes orders it did not claim (a callback names its
    order): it locks them before it reads them, so it works on their latest
    state and no one else's change is overwritten, and before any stock row,
    which keeps the global lock order (orders, then stock; see stock/ledger.py).
    """
    wanted = sorted(set(ids))
    if not wanted or s.get_bind().dialect.name != "postgresql":
        return
    for i in range(0, len(wanted), 5000):
        s.execute(select(Order.id).where(Order.id.in_(wanted[i:i + 5000])).order_by(Order.id).with_for_update())

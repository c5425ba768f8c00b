"""Claiming a batch of ready rows for one worker.

On PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED``: any number
of workers on any number of machines take disjoint batches through row locks
alone. SQLite has a single writer at a time (``BEGIN IMMEDIATE``), so a plain
``LIMIT`` is the same guarantee there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.orm import Session


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

"""Orders already stored: how the benchmark asks what a year of history costs the hot path.

A real pipeline run writes a few hundred template orders (with their lines,
history, decisions, outbox messages and stock ledger rows); those rows are
then copied, with new ids and order numbers, until the database holds the
number of orders asked for. The copies are finished orders spread back over
the past year, so they weigh on every index and on the customers' statistics
(each customer gets a long order history) exactly as old orders do, without
being work for any stage. Writing them is plain bulk INSERTs: a million
orders take minutes, not the hours the pipeline itself would take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from ..storage.db import Database
from ..storage.models import Customer, DecisionRecord, History, Order, OrderLine, OutboxMessage, StockMovement
from .runner import stop_if_asked

_YEAR = timedelta(days=365)
# Child tables copied with each order: (model, the columns shifted back in time).
_CHILDREN: tuple[tuple[type, tuple[str, ...]], ...] = (
    (OrderLine, ()),
    (History, ("at",)),
    (DecisionRecord, ("at",)),
    (OutboxMessage, ("created_at", "available_at", "sent_at")),
    (StockMovement, ("at",)),
)
_ORDER_TIMES = ("placed_at", "created_at", "updated_at", "paid_at")
_INSERT_CHUNK = 5_000


def stored_orders(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Order)) or 0


def copy_history(db: Database, total: int, *, progress: Callable[[int], None] | None = None) -> float:
    """Copy the orders stored now until there are ``total``; returns the seconds it took."""
    started = time.perf_counter()
    with db.read() as s:
        orders = [dict(r._mapping) for r in s.execute(select(*Order.__table__.columns).order_by(Order.id))]
        customers = list(s.scalars(select(Customer.id).order_by(Customer.id)))
        children = {model: [dict(r._mapping) for r in s.execute(select(*model.__table__.columns)  # type: ignore[attr-defined]
                                                                  .where(model.order_id.is_not(None)))]  # type: ignore[attr-defined]
                    for model, _ in _CHILDREN}
    if not orders or total <= len(orders):
        return time.perf_counter() - started
    template = len(orders)
    span = max(o["id"] for o in orders)   # copy k's ids are the template's plus k * span
    copies = -(-(total - template) // template)
    made = template
    for k in range(1, copies + 1):
        stop_if_asked()
        take = min(template, total - made)
        back = _YEAR * k / copies
        chosen = orders[:take]
        ids = {o["id"] for o in chosen}
        rows = [_order_copy(o, k, span, back) for o in chosen]
        # Each copy goes to other customers, so the history spreads over all of them as a real one does
        # (a parent and its children stay with one customer).
        for o, row in zip(chosen, rows, strict=True):
            root = o["parent_id"] or o["id"]
            row["customer_id"] = customers[(root + k * template) % len(customers)]
        with db.session() as s:
            conn = s.connection()
            _insert(conn, Order, rows)
            for model, times in _CHILDREN:
                _insert(conn, model, [_child_copy(r, k, span, back, times) for r in children[model]
                                      if r["order_id"] in ids])
        made += take
        if progress:
            progress(made)
    return time.perf_counter() - started


def _insert(conn: Any, model: type, rows: list[dict[str, Any]]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    for i in range(0, len(rows), _INSERT_CHUNK):
        conn.execute(table.insert(), rows[i:i + _INSERT_CHUNK])


def _order_copy(o: dict[str, Any], k: int, span: int, back: timedelta) -> dict[str, Any]:
    row = dict(o)
    row["id"] = o["id"] + k * span
    row["parent_id"] = o["parent_id"] + k * span if o["parent_id"] is not None else None
    # Numbers and external ids stay unique; a finished order is no stage's work.
    row["number"] = f"H{k:06d}-{o['id']}"[:32]
    row["external_id"] = f"{o['external_id']}-h{k}" if o["external_id"] is not None else None
    row["status"], row["stage"], row["due_at"] = "completed", None, None
    row["hold_reason"] = row["hold_stage"] = None
    for name in _ORDER_TIMES:
        if row[name] is not None:
            row[name] = row[name] - back
    return row


def _child_copy(r: dict[str, Any], k: int, span: int, back: timedelta, times: tuple[str, ...]) -> dict[str, Any]:
    row = {key: value for key, value in r.items() if key != "id"}
    row["order_id"] = r["order_id"] + k * span
    for name in times:
        if row[name] is not None:
            row[name] = row[name] - back
    if "status" in row:
        row["status"] = "sent"
    return row

"""Finance's view of stock: each warehouse's closing stock per day, valued, and the day's movements.

A closing for day D (UTC) is worked out, not snapped at midnight: each
balance now, less what the ledger moved after D ended (on hand, reserved and
value deltas), is the balance at D's close, exactly, whenever it is taken.
``oms worker`` takes the closing of every finished day that has none, once
(:meth:`Closings.close_due`); ``oms stock close --day D`` takes one again
(replacing it). The day's movements are the ledger rows of D, exported with
their value deltas (what goods in cost, what goods out took at average cost).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..storage.db import Database, insert_rows
from ..storage.models import Stock, StockClosing, StockMovement

# damaged_delta last: added after the others (damaged.py), so a reader by position keeps its columns.
EXPORT_COLUMNS = ("id", "at", "warehouse", "sku", "kind", "on_hand_delta", "reserved_delta", "value_delta",
                  "unit_cost", "document", "order_id", "actor", "note", "damaged_delta")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min)
    return start, start + timedelta(days=1)


def closing_of(s: Session, day: date) -> list[dict[str, Any]]:
    """Every (warehouse, sku) balance at the close of ``day``: now, less what moved after it."""
    _, end = day_bounds(day)
    after: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for w, sku, h, r, v in s.execute(
            select(StockMovement.warehouse, StockMovement.sku, func.sum(StockMovement.on_hand_delta),
                   func.sum(StockMovement.reserved_delta), func.sum(StockMovement.value_delta))
            .where(StockMovement.at >= end).group_by(StockMovement.warehouse, StockMovement.sku)):
        after[(w, sku)] = [int(h or 0), int(r or 0), int(v or 0)]
    out = []
    for w, sku, h, r, v in s.execute(select(Stock.warehouse, Stock.sku, Stock.on_hand, Stock.reserved, Stock.value)
                                     .order_by(Stock.warehouse, Stock.sku)):
        dh, dr, dv = after.get((w, sku), (0, 0, 0))
        on_hand, reserved, value = h - dh, r - dr, v - dv
        if on_hand or reserved or value:
            out.append({"warehouse": w, "sku": sku, "on_hand": on_hand, "reserved": reserved, "value": value})
    return out


def totals(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per warehouse: SKUs, units on hand and value."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        t = out.setdefault(r["warehouse"], {"skus": 0, "on_hand": 0, "value": 0})
        t["skus"] += 1
        t["on_hand"] += r["on_hand"]
        t["value"] += r["value"]
    return out


class Closings:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock
        self._closed_through: date | None = None   # this process knows every day up to this one is closed

    def close(self, day: date) -> list[dict[str, Any]]:
        """Take (or take again) the closing of ``day``; refused for a day not over yet."""
        if day >= self.clock.now().date():
            raise ValueError(f"{day.isoformat()} is not over yet: a closing is taken of a finished day")

        def run() -> list[dict[str, Any]]:
            with self.db.session() as s:
                rows = closing_of(s, day)
                s.execute(delete(StockClosing).where(StockClosing.day == day),
                          execution_options={"synchronize_session": False})
                now = self.clock.now()
                if rows:
                    insert_rows(s, StockClosing, [{**r, "day": day, "taken_at": now} for r in rows])
                return rows

        return self.db.run_retrying(run, what=f"closing of {day.isoformat()}")

    def close_due(self) -> None:
        """Close yesterday if it has no closing yet and stock ever moved: cheap once it is known done."""
        yesterday = self.clock.now().date() - timedelta(days=1)
        if self._closed_through is not None and self._closed_through >= yesterday:
            return
        with self.db.read() as s:
            done = s.scalar(select(func.count()).select_from(StockClosing).where(StockClosing.day == yesterday))
            moved = s.scalar(select(StockMovement.id).limit(1)) is not None
        if not done and moved:
            self.close(yesterday)
        self._closed_through = yesterday

    def stored(self, day: date) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [{"warehouse": c.warehouse, "sku": c.sku, "on_hand": c.on_hand, "reserved": c.reserved,
                     "value": c.value, "taken_at": c.taken_at.isoformat()}
                    for c in s.scalars(select(StockClosing).where(StockClosing.day == day)
                                       .order_by(StockClosing.warehouse, StockClosing.sku))]

    def movements_csv(self, day: date, *, goods_only: bool = True) -> str:
        """The day's ledger rows as CSV, oldest first; ``goods_only``: only those that move on hand or damaged
        stock (the reservations of orders change no goods and no value)."""
        start, end = day_bounds(day)
        stmt = select(StockMovement).where(StockMovement.at >= start, StockMovement.at < end)
        if goods_only:
            stmt = stmt.where((StockMovement.on_hand_delta != 0) | (StockMovement.damaged_delta != 0))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        with self.db.read() as s:
            for m in s.scalars(stmt.order_by(StockMovement.id)):
                writer.writerow([m.id, m.at.isoformat(), m.warehouse, m.sku, m.kind, m.on_hand_delta,
                                 m.reserved_delta, m.value_delta, "" if m.unit_cost is None else m.unit_cost,
                                 m.document, "" if m.order_id is None else m.order_id, m.actor, m.note,
                                 m.damaged_delta])
        return out.getvalue()


"""The baseline: plain sqlite3 ``executemany`` of exactly the rows the pipeline wrote.

Every row the run inserted (orders, lines, history, decisions, reservations,
movements, outbox, payloads, plugin state, tasks...) is read back, and then
written again into an empty copy of the schema (its tables and indexes) with the same pragmas, one
``INSERT ... executemany`` per table, in as many transactions as the run
committed orders in payloads; the stock rows the run changed are updated
the same number of times. The replay is done three times, and the median
counts. What the pipeline adds on top of that is the cost of deciding: the
ratio of the two says how close to the storage floor it runs.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

# Tables a run fills; the seeded world (products, warehouses, stock, customers) is not counted.
WRITTEN = ("raw_payloads", "orders", "order_lines", "order_history", "decisions", "reservations",
           "stock_movements", "outbox", "inbox", "scheduled_tasks", "plugin_state", "incidents")
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=OFF",
           "PRAGMA cache_size=-65536", "PRAGMA temp_store=MEMORY")


def schema_of(db: sqlite3.Connection) -> list[str]:
    """The statements that make an empty copy of a database's schema: its tables, then their indexes.

    With the indexes, the baseline's rows go where the pipeline's went, every index of the OMS's
    schema kept up to date as they are written (a baseline of tables alone wrote faster than the
    pipeline's storage ever could)."""
    return [sql for (sql,) in db.execute(
        "SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index'")]


REPLAYS = 3


def replay_seconds(source: Path, transactions: int, replays: int = REPLAYS) -> tuple[float, int]:
    """Seconds to write the run's rows again with sqlite3 alone (the median of ``replays`` replays, each
    into a fresh copy of the schema), and how many rows that was.

    A replay lasts a tenth of the run it is compared with, so a stall of the host for a moment moves
    one replay by as much as a fifth; the median of three does not follow one such stall."""
    src = sqlite3.connect(source)
    try:
        schema = schema_of(src)
        tables = {name: src.execute(f'SELECT * FROM "{name}"').fetchall() for name in WRITTEN}
        stock_moves = src.execute("SELECT warehouse, sku, on_hand_delta, reserved_delta FROM stock_movements "
                                  "ORDER BY id").fetchall()
        # The stock as it was before the run: what it is now, less every movement of the run.
        stock = src.execute("SELECT s.warehouse, s.sku, s.on_hand - COALESCE(m.on_hand, 0), "
                            "s.reserved - COALESCE(m.reserved, 0) FROM stock s LEFT JOIN "
                            "(SELECT warehouse, sku, SUM(on_hand_delta) AS on_hand, SUM(reserved_delta) AS reserved "
                            " FROM stock_movements GROUP BY warehouse, sku) m "
                            "ON m.warehouse = s.warehouse AND m.sku = s.sku").fetchall()
    finally:
        src.close()
    rows = sum(len(v) for v in tables.values()) + len(stock_moves)
    times = sorted(_replay(schema, tables, stock, stock_moves, max(transactions, 1)) for _ in range(max(replays, 1)))
    return times[len(times) // 2], rows


def _replay(schema: list[str], tables: dict[str, list[Any]], stock: list[Any], stock_moves: list[Any],
            transactions: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "baseline.db", isolation_level=None)
        for pragma in PRAGMAS:
            db.execute(pragma)
        for sql in schema:
            db.execute(sql)
        db.execute("BEGIN")
        db.executemany("INSERT INTO stock (warehouse, sku, on_hand, reserved) VALUES (?, ?, ?, ?)", stock)
        db.execute("COMMIT")
        started = time.perf_counter()
        for t in range(transactions):
            db.execute("BEGIN IMMEDIATE")
            for name, data in tables.items():
                part = _slice(data, t, transactions)
                if part:
                    marks = ", ".join("?" * len(part[0]))
                    db.executemany(f'INSERT INTO "{name}" VALUES ({marks})', part)
            # In ledger order, as the run moved it: a release never comes before its reservation.
            db.executemany("UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ? "
                           "WHERE warehouse = ? AND sku = ?",
                           [(oh, rs, w, k) for w, k, oh, rs in _slice(stock_moves, t, transactions)])
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
    return elapsed


def _slice(rows: list[Any], t: int, parts: int) -> list[Any]:
    """The t-th of ``parts`` contiguous slices of ``rows``, in their order."""
    size = -(-len(rows) // parts)
    return rows[t * size:(t + 1) * size]

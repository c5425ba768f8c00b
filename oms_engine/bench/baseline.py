"""The baseline: plain sqlite3 ``executemany`` of exactly the rows the pipeline wrote.

It is measured in the same run, payload by payload: once the pipeline has worked
a payload off, every row it inserted since the last payload (orders, lines,
history, decisions, reservations, movements, outbox, payloads, plugin state,
tasks...) is read back and written again into copies of the schema (its
tables and indexes) with the same pragmas, one ``INSERT ... executemany`` per
table in one transaction, and the stock rows it moved are updated once per
movement, in ledger order. Only those writes are timed, and the pipeline's
clock stops while they run. What the pipeline adds on top is the cost of
deciding: the ratio of the two says how close to the storage floor it runs.

Replaying as the run goes, rather than after it, puts the floor and the
pipeline in the same minutes of the host: replayed after the run, the floor
was written while the run's own writes were still going to disk, and read low
and unsteady (docs/performance.md, "The baseline in the same run"). Three
copies are written, each in turn, and the median of their totals counts. The
copies are written by a process of their own (``python -m
oms_engine.bench.baseline``), which the run waits for: their page caches are
not the run's memory, and their garbage not its collector's.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
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


class Copies:
    """The copies the baseline writes (in the replaying process): :meth:`payload` after each payload."""

    def __init__(self, source: Path, copies: int = REPLAYS) -> None:
        self._src = sqlite3.connect(source)
        self._tmp = tempfile.TemporaryDirectory()
        try:
            schema = schema_of(self._src)
            stock = self._src.execute("SELECT warehouse, sku, on_hand, reserved FROM stock").fetchall()
            # Rows there before the run (a database given with --db) are not the run's.
            self._last = {name: self._src.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{name}"').fetchone()[0]
                          for name in WRITTEN}
            self.paths = [Path(self._tmp.name) / f"baseline-{i}.db" for i in range(max(copies, 1))]
            self._copies = [_copy(path, schema, stock) for path in self.paths]
        except BaseException:
            self.close()
            raise
        self.seconds = [0.0] * len(self._copies)
        self.rows = 0

    def payload(self) -> None:
        """Write what the run inserted since the last call into every copy, one transaction each."""
        tables: dict[str, list[Any]] = {}
        moves: list[Any] = []
        for name in WRITTEN:
            cursor = self._src.execute(f'SELECT rowid, * FROM "{name}" WHERE rowid > ? ORDER BY rowid',
                                       (self._last[name],))
            got = cursor.fetchall()
            if not got:
                continue
            self._last[name] = got[-1][0]
            tables[name] = [row[1:] for row in got]
            if name == "stock_movements":
                # In ledger order, as the run moved it: a release never comes before its reservation.
                at = [[d[0] for d in cursor.description].index(c)
                      for c in ("on_hand_delta", "reserved_delta", "warehouse", "sku")]
                moves = [tuple(row[i] for i in at) for row in got]
        self.rows += sum(len(v) for v in tables.values()) + len(moves)
        for i, db in enumerate(self._copies):
            self.seconds[i] += _write(db, tables, moves)

    def result(self) -> tuple[float, int]:
        """(seconds: the median of the copies' totals, rows written per copy)."""
        return sorted(self.seconds)[len(self.seconds) // 2], self.rows

    def close(self) -> None:
        for db in getattr(self, "_copies", ()):
            db.close()
        self._src.close()
        self._tmp.cleanup()


def _copy(path: Path, schema: list[str], stock: list[Any]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        db.execute(pragma)
    for sql in schema:
        db.execute(sql)
    db.execute("BEGIN")
    db.executemany("INSERT INTO stock (warehouse, sku, on_hand, reserved) VALUES (?, ?, ?, ?)", stock)
    db.execute("COMMIT")
    return db


def _write(db: sqlite3.Connection, tables: dict[str, list[Any]], moves: list[Any]) -> float:
    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    for name, rows in tables.items():
        marks = ", ".join("?" * len(rows[0]))
        db.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
    db.executemany("UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ? WHERE warehouse = ? AND sku = ?",
                   moves)
    db.execute("COMMIT")
    return time.perf_counter() - started


class Replay:
    """The baseline of one run, written by a process of its own: :meth:`payload` after each payload
    (it returns once the copies have it), :meth:`result` at the end, :meth:`close` always."""

    def __init__(self, source: Path, copies: int = REPLAYS) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, str(source), str(copies)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self._ask("")   # ready: the copies made, the run's rows so far left out
        except BaseException:
            self.close()
            raise

    def _ask(self, command: str) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if command:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer.startswith("ok"):
            raise RuntimeError(f"the baseline's replay stopped (exit status {self._proc.poll()})")
        return answer[2:].strip()

    def payload(self) -> None:
        self._ask("payload")

    def result(self) -> tuple[float, int]:
        seconds, rows = self._ask("result").split()
        return float(seconds), int(rows)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()   # end of input: the replaying process removes its copies and ends
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def main(argv: list[str]) -> int:
    """The replaying process: one command per line on stdin, "ok ..." per command on stdout."""
    copies = Copies(Path(argv[0]), int(argv[1]))
    try:
        print("ok", flush=True)
        for line in sys.stdin:
            if line.strip() == "payload":
                copies.payload()
                print("ok", flush=True)
            elif line.strip() == "result":
                seconds, rows = copies.result()
                print(f"ok {seconds!r} {rows}", flush=True)
            else:
                print(f"unknown command {line.strip()!r}", flush=True)
    finally:
        copies.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

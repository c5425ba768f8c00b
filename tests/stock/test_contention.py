"""Stock under contention: rows locked in one global order, and a transaction that loses a race runs again.

On PostgreSQL two transactions that lock the same stock rows in different
orders deadlock; the server aborts one. Every transaction that moves stock
locks its rows in (warehouse, sku) order first, and intake, commands and the
pipeline run a transaction that lost a race again instead of failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg.errors
import pytest
from sqlalchemy import Engine, event, select

from oms_engine.engine import OMS
from oms_engine.storage.models import Order
from tests.support import order_json, payload
from tests.support.pipeline import status

Key = tuple[str, str]


@contextmanager
def stock_touches(engine: Engine) -> Iterator[list[list[Key]]]:
    """Per committed or rolled-back transaction, the stock rows it touched, in the order it first touched them.

    A conditional ``UPDATE stock`` touches its row; a ``SELECT ... FROM stock ... FOR UPDATE``
    of one warehouse's SKUs locks its rows in SKU order (it sorts by code point).
    """
    done: list[list[Key]] = []
    open_: dict[int, list[Key]] = {}

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        sql = " ".join(statement.split())
        if sql.startswith("UPDATE stock SET"):
            # One conditional UPDATE, or a batch of them (executemany): each touches its row in turn.
            keys = [(p["w"], p["k"]) for p in (params if many else [params])]
        elif sql.startswith("SELECT") and " FROM stock " in sql and sql.endswith("FOR UPDATE"):
            warehouse, *skus = params.values()
            keys = [(warehouse, sku) for sku in sorted(skus)]
        else:
            return
        touched = open_.setdefault(id(conn), [])
        touched.extend(k for k in keys if k not in touched)

    def end(conn: Any) -> None:
        touched = open_.pop(id(conn), None)
        if touched:
            done.append(touched)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)
    try:
        yield done
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", end)
        event.remove(engine, "rollback", end)


def _postgres(oms: OMS) -> None:
    if oms.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's: SQLite has one writer at a time")


def test_every_transaction_locks_stock_rows_in_one_global_order(oms: OMS) -> None:
    _postgres(oms)
    with stock_touches(oms.db.engine) as txns:
        # One payload whose orders name their SKUs against the global order: T before M, lines reversed.
        results = oms.intake.ingest("json", payload(
            order_json("LO-1", [("TEA-1", 1)]), order_json("LO-2", [("MUG-1", 1)]),
            order_json("LO-3", [("TEA-1", 1), ("ICE-1", 1), ("MUG-1", 1)], customer="C-LO3"),
            order_json("LO-4", [("PEN-1", 2), ("TEA-1", 1)], customer="C-LO4")))
        assert all(r.number for r in results), results
        oms.pipeline.run_until_idle()       # split, route (moving reservations between warehouses), dispatch
        number = {r.external_id: r.number for r in results}
        oms.commands.cancel(number["LO-3"], actor="test")   # a split parent: its children give stock back
        oms.commands.cancel(number["LO-4"], actor="test")
        oms.pipeline.run_until_idle()
    assert status(oms, number["LO-3"]) == "cancelled"
    moving = [t for t in txns if len(t) > 1]
    assert moving, txns
    for touched in moving:
        assert touched == sorted(touched), f"stock rows locked out of the global order: {touched}"


def _lose_once(engine: Engine, when: Any) -> list[str]:
    """The first statement ``when(sql, params)`` picks fails as the loser of a race would; returns what failed."""
    lost: list[str] = []
    sqlite = engine.dialect.name == "sqlite"

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not lost and when(" ".join(statement.split()), params):
            lost.append(statement)
            if sqlite:
                raise sqlite3.OperationalError("database is locked")
            raise psycopg.errors.DeadlockDetected("deadlock detected")

    event.listen(engine, "before_cursor_execute", before)
    return lost


def _stock_update_of(sku: str) -> Any:
    def picks(sql: str, params: Any) -> bool:
        # PostgreSQL's driver takes named parameters, SQLite's positional ones; a batch of stock moves
        # is one executemany, whose parameters are a list of either.
        sets = params if isinstance(params, list) else [params]
        values = [v for p in sets for v in (p.values() if isinstance(p, dict) else p)]
        return sql.startswith("UPDATE stock SET") and sku in values

    return picks


def test_intake_runs_a_payload_again_when_it_loses_a_race(oms: OMS) -> None:
    orders = [order_json(f"RACE-{i}", [("TEA-1", 1), ("MUG-1", 1)] if i == 3 else [("TEA-1", 1)],
                         customer=f"C-RACE-{i}") for i in range(6)]
    lost = _lose_once(oms.db.engine, _stock_update_of("MUG-1"))   # the payload's stock moves
    results = oms.intake.ingest("json", payload(*orders))
    assert lost
    assert [r.error for r in results] == [None] * 6, results
    with oms.db.read() as s:
        stored = s.scalars(select(Order.external_id).where(Order.external_id.like("RACE-%"))).all()
    assert sorted(stored) == [f"RACE-{i}" for i in range(6)]
    assert all(status(oms, r.number) == "paid" for r in results)


def test_a_command_runs_again_when_it_loses_a_race(oms: OMS) -> None:
    [r] = oms.intake.ingest("json", payload(order_json("CMD-1", [("TEA-1", 1), ("MUG-1", 1)])))
    lost = _lose_once(oms.db.engine, _stock_update_of("TEA-1"))
    assert oms.commands.cancel(r.number, actor="test") == "cancelled"
    assert lost
    assert status(oms, r.number) == "cancelled"

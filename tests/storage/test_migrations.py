"""The Alembic migrations create exactly what the models describe, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import alembic_config, current, head, upgrade
from oms_engine.storage.models import Base


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    assert current(engine) == head()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    engine.dispose()


def test_upgrade_twice_is_harmless_and_seeds_the_number_counter_once(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, next_value FROM number_blocks")).all() == [("order", 0)]
    engine.dispose()


def _downgrade(engine: Any, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_stock_rebuilt_by_its_key_keeps_every_row_and_both_checks(db_url: str) -> None:
    """0005 makes stock a WITHOUT ROWID table on SQLite (nothing on PostgreSQL); up and down, the
    figures stay and a row still cannot reserve more than it holds."""
    engine = make_engine(db_url)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO warehouses (code, name, country, region, city, priority, lat, lon, "
                          "capabilities) VALUES ('W1', 'One', 'DE', 'north', 'Hamburg', 1, 0, 0, '[]')"))
        conn.execute(text("INSERT INTO products (sku, name, price, currency, merchant, weight_g, attributes) "
                          "VALUES ('A', 'a', 100, 'EUR', 'm', 1, '{}'), ('B', 'b', 100, 'EUR', 'm', 1, '{}')"))
        conn.execute(text("INSERT INTO stock (warehouse, sku, on_hand, reserved) VALUES ('W1', 'A', 7, 2), "
                          "('W1', 'B', 3, 0)"))
    for step in (lambda: upgrade(engine), lambda: _downgrade(engine, "0004"), lambda: upgrade(engine)):
        step()
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT warehouse, sku, on_hand, reserved FROM stock ORDER BY sku")).all()
        assert [tuple(r) for r in rows] == [("W1", "A", 7, 2), ("W1", "B", 3, 0)]
        for bad in ("UPDATE stock SET reserved = 8 WHERE sku = 'A'", "UPDATE stock SET reserved = -1 WHERE sku = 'B'"):
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(text(bad))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'stock'")).scalar_one()
        assert ddl.rstrip().endswith("WITHOUT ROWID")
    engine.dispose()


def _indexes(engine: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    """Every index of every table, by name: its columns in order (unique constraints included)."""
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    inspector = inspect(engine)
    for table in inspector.get_table_names():
        named = {ix["name"]: tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
        named.update({uc["name"] or f"{table}_unique_{i}": tuple(uc["column_names"])
                      for i, uc in enumerate(inspector.get_unique_constraints(table))})
        found[table] = named
    return found


def test_no_index_repeats_the_leading_columns_of_another(db_url: str) -> None:
    """Each index costs every insert a B-tree write: one whose columns lead another index of its table
    answers nothing that other one does not."""
    engine = make_engine(db_url)
    upgrade(engine)
    repeats = [(table, a, b) for table, named in _indexes(engine).items()
               for a, cols_a in named.items() for b, cols_b in named.items()
               if a != b and cols_b[:len(cols_a)] == cols_a]
    engine.dispose()
    assert repeats == []


def test_indexes_dropped_by_0006_come_back_on_downgrade_and_the_rows_stay(db_url: str) -> None:
    """0006 drops the ledger's (warehouse, sku) index, the payloads' hash index and the lines' order_id
    index; down puts them back. The rows stay either way, and an order's lines are still found by an index."""
    engine = make_engine(db_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO stock_movements (warehouse, sku, kind, on_hand_delta, reserved_delta, "
                          "document, at) VALUES ('W1', 'A', 'reserve', 0, 2, '', '2026-12-03 10:00:00')"))
    for revision, present in (("head", False), ("0005", True), ("head", False)):
        if revision == "head":
            upgrade(engine)
        else:
            _downgrade(engine, revision)
        names = {name for named in _indexes(engine).values() for name in named}
        assert ("ix_movements_wh_sku" in names) is present
        assert ("ix_order_lines_order_id" in names) is present
        assert ("ix_raw_payloads_sha256" in names) is present
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sku, reserved_delta FROM stock_movements")).all() == [("A", 2)]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.execute(
                text("EXPLAIN QUERY PLAN SELECT * FROM order_lines WHERE order_id IN (1, 2, 3)")))
        assert "USING INDEX sqlite_autoindex_order_lines_1" in plan, plan
    engine.dispose()


def test_the_typed_ledger_renames_movements_and_explains_every_balance(db_url: str) -> None:
    """0007: the old movement names become the source documents' names, and balances written before
    every change went through the ledger get an opening row each, so the ledger explains them all."""
    engine = make_engine(db_url)
    upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO warehouses (code, name, country, region, city, priority, lat, lon, "
                          "capabilities) VALUES ('W1', 'One', 'DE', 'north', 'Hamburg', 1, 0, 0, '[]')"))
        conn.execute(text("INSERT INTO products (sku, name, price, currency, merchant, weight_g, attributes) "
                          "VALUES ('A', 'a', 100, 'EUR', 'm', 1, '{}'), ('B', 'b', 100, 'EUR', 'm', 1, '{}')"))
        conn.execute(text("INSERT INTO stock (warehouse, sku, on_hand, reserved) VALUES ('W1', 'A', 7, 2), "
                          "('W1', 'B', 3, 0)"))
        conn.execute(text("INSERT INTO stock_movements (warehouse, sku, kind, on_hand_delta, reserved_delta, "
                          "document, at) VALUES ('W1', 'A', 'reserve', 0, 3, 'o:1', '2026-11-02 09:00:00'), "
                          "('W1', 'A', 'ship', -1, -1, 'o:1', '2026-11-02 10:00:00'), "
                          "('W1', 'B', 'return', 3, 0, 'o:2', '2026-11-02 11:00:00')"))
    upgrade(engine)
    with engine.connect() as conn:
        kinds = conn.execute(text("SELECT sku, kind, on_hand_delta, reserved_delta FROM stock_movements "
                                  "ORDER BY id")).all()
        sums = dict((sku, (h, r)) for sku, h, r in conn.execute(text(
            "SELECT sku, SUM(on_hand_delta), SUM(reserved_delta) FROM stock_movements GROUP BY sku")))
        stock = {sku: (h, r, v) for sku, h, r, v in conn.execute(text(
            "SELECT sku, on_hand, reserved, value FROM stock"))}
    assert kinds == [("A", "reserve", 0, 3), ("A", "sale_out", -1, -1), ("B", "customer_return", 3, 0),
                     ("A", "opening", 8, 0)]
    assert sums == {"A": (7, 2), "B": (3, 0)}
    assert stock == {"A": (7, 2, 0), "B": (3, 0, 0)}
    _downgrade(engine, "0006")
    with engine.connect() as conn:
        assert [k for (k,) in conn.execute(text("SELECT kind FROM stock_movements ORDER BY id"))] == \
            ["reserve", "ship", "return"]
    engine.dispose()

"""The Alembic migrations create exactly what the models describe, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
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

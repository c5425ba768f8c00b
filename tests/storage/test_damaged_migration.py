"""0019: the damaged stock table and the ledger's damaged deltas come and go, on both backends; the ledger rows
written before read 0, and stay on the way down."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import alembic_config, upgrade


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_damaged_stock_comes_with_0019_and_goes_without_taking_a_ledger_row(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0018")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO warehouses (code, name, country, region, city, priority, lat, lon, "
                          "capabilities) VALUES ('W1', 'One', 'DE', 'north', 'Hamburg', 1, 0, 0, '[]')"))
        conn.execute(text("INSERT INTO products (sku, name, price, currency, merchant, weight_g, attributes) "
                          "VALUES ('A', 'a', 100, 'EUR', 'm', 1, '{}')"))
        conn.execute(text("INSERT INTO stock_movements (warehouse, sku, kind, on_hand_delta, reserved_delta, "
                          "document, at) VALUES ('W1', 'A', 'opening', 5, 0, 'o', '2026-12-01 10:00:00')"))
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT damaged_delta FROM stock_movements")).scalars().all() == [0]
        conn.execute(text("INSERT INTO damaged_stock (warehouse, sku, quantity) VALUES ('W1', 'A', 2)"))
        conn.execute(text("INSERT INTO stock_movements (warehouse, sku, kind, on_hand_delta, reserved_delta, "
                          "damaged_delta, document, at) VALUES ('W1', 'A', 'return_damaged', 0, 0, 2, 'r', "
                          "'2026-12-02 10:00:00')"))
    for bad in ("UPDATE damaged_stock SET quantity = -1",
                "INSERT INTO damaged_stock (warehouse, sku, quantity) VALUES ('W1', 'NOPE', 1)"):
        with pytest.raises(IntegrityError), engine.begin() as conn:   # make_engine turns SQLite's keys on
            conn.execute(text(bad))
    _downgrade(engine, "0018")
    assert "damaged_stock" not in inspect(engine).get_table_names()
    assert "damaged_delta" not in {c["name"] for c in inspect(engine).get_columns("stock_movements")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM stock_movements ORDER BY id")).scalars().all() == [
            "opening", "return_damaged"]
    upgrade(engine)
    assert "damaged_stock" in inspect(engine).get_table_names()
    engine.dispose()

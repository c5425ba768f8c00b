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


def test_payments_recorded_on_orders_become_payments_and_refunds_owed_with_serials(db_url: str) -> None:
    """0013: a paid order's payment becomes its first payment row, and what orders owe back becomes refunds due
    against it (a child's under its parent), each with a first state in the log; down again, they go."""
    from datetime import datetime

    from sqlalchemy.orm import Session

    from oms_engine.storage.models import Customer, Order
    engine = make_engine(db_url)
    upgrade(engine, "0012")
    at = datetime(2026, 11, 2, 9, 0)
    common = dict(shard=0, channel="json", customer_id=1, currency="CNY", ship_to={}, placed_at=at, created_at=at,
                  updated_at=at)
    with Session(engine) as s, s.begin():
        s.add(Customer(id=1, ref="C-1", created_at=at))
        s.flush()
        s.add(Order(id=1, number="N1", external_id="E1", status="split", payable=10000, paid_amount=10000,
                    payment_txn="T-1", paid_at=at, payment_method="cod", **common))
        s.add(Order(id=4, number="N4", external_id="E4", status="pending_payment", payable=500, **common))
        s.flush()
        s.add(Order(id=2, number="N1-1", parent_id=1, status="cancelled", payable=3000, refund_amount=3000, **common))
        s.add(Order(id=3, number="N1-2", parent_id=1, status="cancelled", payable=7000, refund_amount=7000, **common))
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT serial, order_id, kind, method, method_detail, amount, provider_ref, "
                                 "status, refund_of, for_order_id FROM payments ORDER BY id")).all()
        log = conn.execute(text("SELECT payment, from_status, to_status, actor FROM payment_events "
                                "ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("N1-P01", 1, "payment", "cod", "cod", 10000, "T-1", "captured", None, None),
        ("N1-R01", 1, "refund", "cod", "cod", 3000, None, "due", "N1-P01", 2),
        ("N1-R02", 1, "refund", "cod", "cod", 7000, None, "due", "N1-P01", 3)]
    assert [tuple(r) for r in log] == [("N1-P01", None, "captured", "migration"), ("N1-R01", None, "due", "migration"),
                                       ("N1-R02", None, "due", "migration")]
    _downgrade(engine, "0012")
    assert "payments" not in inspect(engine).get_table_names()
    engine.dispose()


def test_gift_card_and_points_become_payments_and_the_invoice_is_issued_again(db_url: str) -> None:
    """0016: an order's gift card and points become payments of it, its lines' discounts their share of the coupon,
    and its invoice (issued at what was left to pay, one refund credited) is reversed and issued again at what
    was paid by every means, so invoiced less credited is paid less refunded."""
    from datetime import datetime

    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from oms_engine.storage.models import Customer, Invoice, Order, OrderLine
    engine = make_engine(db_url)
    upgrade(engine, "0015")
    at = datetime(2026, 11, 2, 9, 0)
    with Session(engine) as s, s.begin():
        s.add(Customer(id=1, ref="C-1", created_at=at))
        s.flush()
        s.add(Order(id=1, number="N1", external_id="E1", status="delivered", shard=0, channel="json", customer_id=1,
                    currency="CNY", ship_to={}, placed_at=at, created_at=at, updated_at=at, goods=8000, freight=1000,
                    coupon=300, gift_card=1000, points=500, payable=7200, paid_amount=7200, refund_amount=2000,
                    payment_txn="T-1", paid_at=at))
        s.flush()
        for no, goods, discount in ((1, 5000, 1125), (2, 3000, 675)):     # the old way: all 1,800 as discounts
            # INSERTs naming their columns: the model has columns later revisions add (0018's promotions, 0020's
            # submission).
            s.execute(insert(OrderLine).values(order_id=1, line_no=no, sku=f"S{no}", channel_sku=f"S{no}",
                                               name=f"S{no}", quantity=1, unit_price=goods, goods=goods,
                                               discount=discount, merchant="", weight_g=0, attributes={},
                                               mapped=True))
        doc = {"format": "oms-einvoice/1", "buyer": {"ref": "C-1", "name": "", "country": "CN"}}
        s.execute(insert(Invoice).values(number="N1-INV01", order_id=1, kind="invoice", amount=7200, tax=0,
                                         currency="CNY", lines=[], reason="", document=doc, created_at=at))
        s.execute(insert(Invoice).values(number="N1-CN01", order_id=1, for_order_id=1, kind="credit_note",
                                         amount=2000, tax=0, currency="CNY", lines=[], refers_to="N1-INV01",
                                         refunds=["N1-R01"], reason="case", document=doc, created_at=at))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payments (serial, order_id, kind, method, method_detail, amount, currency, "
                          "provider_ref, status, reason, created_at, updated_at) VALUES ('N1-P01', 1, 'payment', "
                          "'card', 'card', 7200, 'CNY', 'T-1', 'captured', '', :t, :t)"), {"t": at})
    upgrade(engine)
    with engine.connect() as conn:
        discounts = conn.execute(text("SELECT discount FROM order_lines ORDER BY line_no")).scalars().all()
        pays = conn.execute(text("SELECT serial, method, amount, provider_ref FROM payments ORDER BY id")).all()
        invoices = conn.execute(text("SELECT number, kind, amount, refers_to FROM invoices ORDER BY id")).all()
        assert conn.execute(text("SELECT COUNT(*) FROM payment_events")).scalar() == 2
    assert discounts == [188, 112]
    assert [tuple(p) for p in pays] == [("N1-P01", "card", 7200, "T-1"),
                                        ("N1-P02", "gift_card", 1000, "gift_card:json"),
                                        ("N1-P03", "points", 500, "points:json")]
    assert [tuple(i) for i in invoices] == [
        ("N1-INV01", "invoice", 7200, None), ("N1-CN01", "credit_note", 2000, "N1-INV01"),
        ("N1-CN02", "credit_note", 5200, "N1-INV01"), ("N1-INV02", "invoice", 8700, None),
        ("N1-CN03", "credit_note", 2000, "N1-INV02")]
    net = sum(a if k == "invoice" else -a for _, k, a, _ in invoices)
    assert net == 7200 + 1000 + 500 - 2000
    _downgrade(engine, "0015")
    assert "wallet_accounts" not in inspect(engine).get_table_names()
    engine.dispose()


def test_the_schema_check_reads_the_head_as_alembic_does_and_refuses_a_database_behind_it(db_url: str) -> None:
    from oms_engine.errors import DatabaseNotReady
    from oms_engine.storage.migrate import _head_by_reading, require_current

    assert _head_by_reading() == head()
    engine = make_engine(db_url)
    with pytest.raises(DatabaseNotReady, match=r"at schema revision none, expected .*: run 'oms init' first"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)
    previous = str(int(head() or "0") - 1).zfill(4)
    _downgrade(engine, previous)
    with pytest.raises(DatabaseNotReady, match=f"at schema revision {previous}, expected {head()}"):
        require_current(engine)
    engine.dispose()

"""Shared fixtures: a real OMS on a fresh database (SQLite, and PostgreSQL when configured).

``OMS_TEST_DATABASE_URL`` names a PostgreSQL database; each test gets its own
schema in it, dropped afterwards. Without it, the PostgreSQL variants are
skipped with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from oms_engine.app import OMS
from oms_engine.clock import SimulatedClock
from oms_engine.config import Config, load_config
from oms_engine.db import make_engine
from oms_engine.migrate import upgrade
from oms_engine.models import Customer, Product, Stock, Warehouse

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
PG_URL = os.environ.get("OMS_TEST_DATABASE_URL")
T0 = datetime(2026, 11, 2, 9, 0, 0)

WAREHOUSES = [
    dict(code="WH-SH", name="Shanghai", country="CN", region="Shanghai", city="Shanghai", priority=10,
         lat=31.2, lon=121.5, capabilities=["cold_chain"]),
    dict(code="WH-BJ", name="Beijing", country="CN", region="Beijing", city="Beijing", priority=20,
         lat=39.9, lon=116.4, capabilities=["oversize"]),
    dict(code="WH-GZ", name="Guangzhou", country="CN", region="Guangdong", city="Guangzhou", priority=30,
         lat=23.1, lon=113.3, capabilities=["cold_chain", "oversize"]),
]
# sku -> (price, merchant, attributes, {warehouse: on_hand})
CATALOGUE: dict[str, tuple[int, str, dict[str, Any], dict[str, int]]] = {
    "TEA-1": (5900, "M-01", {"category": "grocery"}, {"WH-SH": 50, "WH-BJ": 50, "WH-GZ": 50}),
    "MUG-1": (3900, "M-01", {"category": "home"}, {"WH-SH": 20, "WH-BJ": 5}),
    "ICE-1": (2900, "M-02", {"category": "frozen", "cold_chain": True}, {"WH-SH": 30, "WH-GZ": 10}),
    "SOFA-1": (399900, "M-03", {"category": "furniture", "oversize": True}, {"WH-BJ": 3, "WH-GZ": 2}),
    "TV-1": (650000, "M-03", {"category": "electronics"}, {"WH-SH": 5, "WH-BJ": 5}),
    "PEN-1": (500, "M-04", {"category": "home"}, {"WH-GZ": 100}),
    "RARE-1": (9900, "M-01", {"category": "home"}, {"WH-SH": 1}),
}


def _pg_url_with_schema(schema: str) -> str:
    assert PG_URL is not None
    url = make_url(PG_URL)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'oms.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests skipped: OMS_TEST_DATABASE_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_url_with_schema(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'oms.db'}"


def make_config(tmp_path: Path, url: str, **overrides: Any) -> Config:
    """The project's own config.yaml, rules and templates, with a private database and outbox."""
    return load_config(ROOT / "config.yaml", database_url=url, outbox_dir=str(tmp_path / "outbox"), **overrides)


def copy_rules(tmp_path: Path) -> Path:
    """A private copy of rules/ that a test may edit."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def seed(oms: OMS) -> None:
    with oms.db.session() as s:
        s.execute(insert(Warehouse), WAREHOUSES)
        s.execute(insert(Product), [
            dict(sku=sku, name=sku.title(), price=price, currency="CNY", merchant=merchant,
                 weight_g=30000 if attrs.get("oversize") else 500, attributes=attrs)
            for sku, (price, merchant, attrs, _) in CATALOGUE.items()])
        s.execute(insert(Stock), [dict(warehouse=w, sku=sku, on_hand=q, reserved=0)
                                  for sku, (_, _, _, stock) in CATALOGUE.items() for w, q in stock.items()])
        s.execute(insert(Customer), [
            dict(ref="C-BAD", name="Bad Actor", email="bad@example.com", phone="13900000000", level="regular",
                 blacklisted=True, blacklist_reason="chargebacks", created_at=T0),
            dict(ref="C-OLD", name="Loyal Li", email="li@example.com", phone="13800000000", level="gold",
                 blacklisted=False, blacklist_reason="", created_at=T0)])


def build_oms(tmp_path: Path, url: str, *, rules_dir: Path | None = None, **overrides: Any) -> OMS:
    upgrade(make_engine(url))
    cfg = make_config(tmp_path, url, **({"rules_dir": str(rules_dir)} if rules_dir else {}), **overrides)
    oms = OMS(cfg, clock=SimulatedClock(T0))
    seed(oms)
    return oms


@pytest.fixture
def oms(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    """A seeded OMS on each backend, with a simulated clock starting at T0."""
    o = build_oms(tmp_path, db_url)
    yield o
    o.close()


@pytest.fixture
def sqlite_oms(tmp_path: Path, sqlite_url: str) -> Iterator[OMS]:
    """A seeded OMS on SQLite only, for tests whose subject is not the backend."""
    o = build_oms(tmp_path, sqlite_url)
    yield o
    o.close()


def order_json(external_id: str, lines: list[tuple[str, int]] | None = None, *, customer: str = "C-OLD",
               paid: bool = True, freight: str = "10.00", coupon: str = "0.00", **extra: Any) -> dict[str, Any]:
    """A canonical JSON channel order over the test catalogue, paid in full unless told otherwise."""
    lines = lines or [("TEA-1", 2)]
    goods = sum(CATALOGUE[sku][0] * q for sku, q in lines if sku in CATALOGUE)
    payable = goods + int(freight.replace(".", "")) - int(coupon.replace(".", ""))
    order: dict[str, Any] = {
        "external_id": external_id, "currency": "CNY", "placed_at": T0.isoformat() + "Z",
        "customer": {"ref": customer, "name": "Test Customer", "email": f"{customer.lower()}@example.com",
                     "phone": "13800000000"},
        "ship_to": {"name": "Test Customer", "phone": "13800000000", "country": "CN", "region": "Shanghai",
                    "city": "Shanghai", "district": "Pudong", "line1": "1 Century Avenue", "postcode": "200120"},
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
        "freight": freight, "coupon": coupon,
    }
    if paid:
        order["payment"] = {"transaction_id": f"PAY-{external_id}", "amount": f"{payable // 100}.{payable % 100:02d}"}
    order.update(extra)
    return order


def payload(*orders: dict[str, Any]) -> bytes:
    return json.dumps(list(orders) if len(orders) != 1 else orders[0]).encode()

"""What the project's tests share: the test world, orders, an OMS on either backend.

The world (warehouses, catalogue, customers) and the order builders are the
ones plugin authors get from the shipped pytest plugin
(:mod:`oms_engine.plugin.testing`); the project's tests add PostgreSQL and
the project's own config.yaml, rules and templates.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from oms_engine.clock import SimulatedClock
from oms_engine.config import Config, load_config
from oms_engine.engine import OMS
from oms_engine.plugin.testing import CATALOGUE, T0, WAREHOUSES, seed_world
from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "samples"
PG_URL = os.environ.get("OMS_TEST_DATABASE_URL")

__all__ = ["CATALOGUE", "PG_URL", "ROOT", "SAMPLES", "T0", "WAREHOUSES", "build_oms", "copy_rules", "make_config",
           "order_json", "payload", "seed"]


def make_config(tmp_path: Path, url: str, **overrides: Any) -> Config:
    """The project's own config.yaml, rules and templates, with a private database and outbox."""
    return load_config(ROOT / "config.yaml", database_url=url, outbox_dir=str(tmp_path / "outbox"), **overrides)


def copy_rules(tmp_path: Path) -> Path:
    """A private copy of rules/ that a test may edit."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def seed(oms: OMS) -> None:
    seed_world(oms)


def build_oms(tmp_path: Path, url: str, *, rules_dir: Path | None = None, **overrides: Any) -> OMS:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    cfg = make_config(tmp_path, url, **({"rules_dir": str(rules_dir)} if rules_dir else {}), **overrides)
    oms = OMS(cfg, clock=SimulatedClock(T0))
    seed(oms)
    return oms


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

"""What the project's tests share: the test world, orders, an OMS on either backend.

The world (warehouses, catalogue, customers) and the order builders are the
ones plugin authors get from the shipped pytest plugin
(:mod:`oms_engine.plugin.testing`); the project's tests add PostgreSQL and
the project's own config.yaml, rules and templates.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from oms_engine.clock import SimulatedClock
from oms_engine.config import Config, load_config
from oms_engine.engine import OMS
from oms_engine.plugin.testing import CATALOGUE, T0, WAREHOUSES, seed_world
from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import upgrade
from oms_engine.storage.models import Base

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "samples"
PG_URL = os.environ.get("OMS_TEST_DATABASE_URL")

__all__ = ["CATALOGUE", "NO_REFUSALS", "PG_URL", "ROOT", "SAMPLES", "T0", "WAREHOUSES", "build_oms", "copy_rules",
           "make_config", "order_json", "payload", "seed"]

# The simulated warehouse never refuses an interception on the dock, the carrier never turns a parcel away:
# for tests that follow orders to the door and assert where they end.
NO_REFUSALS = {"sim_wms": {"dock_refusal_rate": 0.0}, "sim_carrier": {"refusal_rate": 0.0}}


def make_config(tmp_path: Path, url: str, **overrides: Any) -> Config:
    """The project's own config.yaml, rules and templates, with a private database and outbox.

    The simulated warehouse and carrier run at their real pace (config.yaml has them answer at once):
    the tests drive a simulated clock through each step of an order's life, and act between steps.
    """
    cfg = load_config(ROOT / "config.yaml", database_url=url, outbox_dir=str(tmp_path / "outbox"), **overrides)
    if "plugin_settings" in overrides:
        return cfg
    return cfg.with_plugin_settings(sim_wms={"time_scale": 1.0}, sim_carrier={"time_scale": 1.0})


def copy_rules(tmp_path: Path) -> Path:
    """A private copy of rules/ that a test may edit."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def seed(oms: OMS) -> None:
    seed_world(oms)


_MIGRATED: dict[str, Path] = {}


def _migrated_sqlite_file() -> Path:
    """A SQLite database brought to the head revision once per test process, to be copied: running
    the migrations for every test's fresh database costs more than most tests."""
    path = _MIGRATED.get("file")
    if path is None:
        directory = tempfile.mkdtemp(prefix="oms-migrated-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        path = Path(directory) / "oms.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # every page in the main file, to be copied alone
        _MIGRATED["file"] = path
    return path


_SEARCH_PATH = re.compile(r"-csearch_path=([A-Za-z0-9_]+)")


def _migrated_pg_rows(url: str) -> list[str] | None:
    """The rows the migrations write into a new PostgreSQL database (the revision, the number counter...),
    as INSERT statements with ``{schema}`` for the schema: a schema migrated once per test process, dumped.
    None when pg_dump cannot say (the migrations then run for each test)."""
    if "pg" in _MIGRATED:
        return _MIGRATED["pg"] or None  # type: ignore[return-value]
    rows: list[str] = []
    template = f"tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    base = make_url(url)
    admin = make_engine(base.set(query={}).render_as_string(hide_password=False))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{template}"')
        engine = make_engine(base.update_query_dict({"options": f"-csearch_path={template}"})
                             .render_as_string(hide_password=False))
        upgrade(engine)
        engine.dispose()
        dumped = subprocess.run(["pg_dump", "--schema", template, "--data-only", "--inserts", "--no-owner",
                                 "-h", base.host or "127.0.0.1", "-p", str(base.port or 5432),
                                 "-U", base.username or "postgres", base.database or "test"],
                                capture_output=True, text=True, timeout=60, check=False)
        if dumped.returncode == 0:
            rows = [ln.replace(f"{template}.", "{schema}.") for ln in dumped.stdout.splitlines()
                    if ln.startswith("INSERT INTO ")]
    except (OSError, subprocess.SubprocessError):
        rows = []
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{template}" CASCADE')
        admin.dispose()
    _MIGRATED["pg"] = rows  # type: ignore[assignment]
    return rows or None


def migrate(url: str) -> None:
    """Bring the (fresh) database at ``url`` to the head revision: a copy of a migrated file for a new
    SQLite file; for a new PostgreSQL schema, the tables as the models declare them (tests/storage/
    test_migrations.py holds them to the migrations) and the rows the migrations write, in a little over half
    the time the migrations take (0.45 s against 0.8 s here); the migrations themselves otherwise."""
    u = make_url(url)
    target = Path(u.database) if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") else None
    if target is not None and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_sqlite_file(), target)
        return
    engine = make_engine(url)
    try:
        schema = _SEARCH_PATH.search(url) if u.get_backend_name() == "postgresql" else None
        rows = _migrated_pg_rows(url) if schema is not None else None
        if rows is not None and schema is not None:
            with engine.begin() as conn:
                fresh = not conn.exec_driver_sql(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %(s)s LIMIT 1",
                    {"s": schema.group(1)}).first()
                if fresh:
                    Base.metadata.create_all(conn, checkfirst=False)
                    for row in rows:
                        conn.exec_driver_sql(row.replace("{schema}.", f'"{schema.group(1)}".').replace("%", "%%"))
                    return
        upgrade(engine)
    finally:
        engine.dispose()


def build_oms(tmp_path: Path, url: str, *, rules_dir: Path | None = None, **overrides: Any) -> OMS:
    migrate(url)
    cfg = make_config(tmp_path, url, **({"rules_dir": str(rules_dir)} if rules_dir else {}), **overrides)
    oms = OMS(cfg, clock=SimulatedClock(T0))
    seed(oms)
    return oms


def order_json(external_id: str, lines: list[tuple[str, int]] | None = None, *, customer: str = "C-OLD",
               paid: bool = True, freight: str = "10.00", coupon: str = "0.00", flat: str | None = None,
               **extra: Any) -> dict[str, Any]:
    """A canonical JSON channel order over the test catalogue, paid in full unless told otherwise.

    Each order goes to a flat of its own (``line2``), so orders of one customer are not merged into one
    parcel unless a test gives them the same ``flat``.
    """
    lines = lines or [("TEA-1", 2)]
    goods = sum(CATALOGUE[sku][0] * q for sku, q in lines if sku in CATALOGUE)
    payable = goods + int(freight.replace(".", "")) - int(coupon.replace(".", ""))
    order: dict[str, Any] = {
        "external_id": external_id, "currency": "CNY", "placed_at": T0.isoformat() + "Z",
        "customer": {"ref": customer, "name": "Test Customer", "email": f"{customer.lower()}@example.com",
                     "phone": "13800000000"},
        "ship_to": {"name": "Test Customer", "phone": "13800000000", "country": "CN", "region": "Shanghai",
                    "city": "Shanghai", "district": "Pudong", "line1": "1 Century Avenue",
                    "line2": f"Flat {flat if flat is not None else external_id}", "postcode": "200120"},
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
        "freight": freight, "coupon": coupon,
    }
    if paid:
        order["payment"] = {"transaction_id": f"PAY-{external_id}", "amount": f"{payable // 100}.{payable % 100:02d}"}
    order.update(extra)
    return order


def payload(*orders: dict[str, Any]) -> bytes:
    return json.dumps(list(orders) if len(orders) != 1 else orders[0]).encode()

"""Real processes at once on PostgreSQL: three `oms ingest` and three `oms worker` on the same stock rows.

Each ingest takes its own files of orders whose lines name the same few SKUs in
every order, so intake reservations and routing contend for the same stock rows
from six processes. Whatever the interleaving, every order must be stored
exactly once, no process may fail, and the stock, the reservations and the
ledger must agree to the unit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from oms_engine.config import load_config
from oms_engine.engine import OMS
from oms_engine.plugin.testing import WAREHOUSES, seed_world
from oms_engine.storage.models import InboxMessage, Incident, Order, OutboxMessage, Reservation, Stock, StockMovement
from tests.conftest import pg_url_with_schema
from tests.support import PG_URL, ROOT

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL tests skipped: OMS_TEST_DATABASE_URL is not set")

OMS_CMD = str(Path(sys.executable).parent / "oms")
INGESTS, WORKERS, FILES, PER_FILE = 3, 3, 10, 20
# Eight SKUs every order draws on, stocked everywhere: all six processes want the same rows.
# SKU-H is short, so some orders are held for stock and some spread over warehouses.
SKUS = [f"SKU-{c}" for c in "ABCDEFGH"]
STOCK = {sku: {w["code"]: (25 if sku == "SKU-H" else 400) for w in WAREHOUSES} for sku in SKUS}
PRICE = 150


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_url_with_schema(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _order(rng: random.Random, ext: str) -> dict[str, Any]:
    # Lines in a random SKU order: each intake and each routing batch would lock rows in its own order.
    lines = [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in rng.sample(SKUS, rng.randint(2, 4))]
    payable = PRICE * sum(ln["quantity"] for ln in lines) + 1000
    customer = f"C-{ext}"
    return {"external_id": ext, "currency": "CNY", "placed_at": "2026-11-02T09:00:00Z",
            "customer": {"ref": customer, "name": "Con Current", "email": f"{customer.lower()}@example.com",
                         "phone": "13800000000"},
            "ship_to": {"name": "Con Current", "phone": "13800000000", "country": "CN", "region": "Shanghai",
                        "city": "Shanghai", "district": "Pudong", "line1": "1 Century Avenue", "postcode": "200120"},
            "lines": lines, "freight": "10.00",
            "payment": {"transaction_id": f"PAY-{ext}", "amount": f"{payable // 100}.{payable % 100:02d}"}}


def _write_files(tmp_path: Path) -> list[list[Path]]:
    rng = random.Random(20261102)
    per_process: list[list[Path]] = []
    for p in range(INGESTS):
        paths = []
        for f in range(FILES):
            path = tmp_path / f"orders-{p}-{f:02d}.json"
            orders = [_order(rng, f"P{p}-F{f:02d}-{i:02d}") for i in range(PER_FILE)]
            path.write_text(json.dumps(orders), encoding="utf-8")
            paths.append(path)
        per_process.append(paths)
    return per_process


def _config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "config.yaml"
    # Small batches, so each worker takes many and the workers interleave on the stock rows.
    cfg.write_text(f"database_url: '{url}'\nrules_dir: {ROOT / 'rules'}\ntemplates_dir: {ROOT / 'templates'}\n"
                   f"outbox_dir: {tmp_path / 'outbox'}\nbatch_size: 25\n", encoding="utf-8")
    return cfg


def _quiet(oms: OMS) -> bool:
    """Nothing left that a worker could do now: every order past routing, nothing due in the queues."""
    now = oms.clock.now()
    with oms.db.read() as s:
        in_flight = s.scalar(select(func.count()).select_from(Order).where(
            Order.status == "paid", Order.stage.is_not(None)))
        outbox_due = s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending", OutboxMessage.available_at <= now))
        inbox = s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.status == "pending"))
    return in_flight == 0 and outbox_due == 0 and inbox == 0


def test_three_ingests_and_three_workers_lose_nothing_and_keep_the_books(tmp_path: Path,
                                                                         pg_schema_url: str) -> None:
    cfg = _config(tmp_path, pg_schema_url)
    init = subprocess.run([OMS_CMD, "--config", str(cfg), "init"], capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    config = load_config(cfg)
    with OMS(config) as oms:
        catalogue = {sku: (PRICE, "M-01", {"category": "home"}, STOCK[sku]) for sku in SKUS}
        seed_world(oms, catalogue=catalogue, customers=[])
    files = _write_files(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    logs: list[Path] = []
    workers: list[subprocess.Popen[bytes]] = []
    ingests: list[subprocess.Popen[bytes]] = []
    try:
        for w in range(WORKERS):
            log = tmp_path / f"worker-{w}.log"
            logs.append(log)
            workers.append(subprocess.Popen(
                [OMS_CMD, "--config", str(cfg), "worker", "--interval", "0.1", "--max-seconds", "600"],
                stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env))
        for p, paths in enumerate(files):
            out = tmp_path / f"ingest-{p}.json"
            err = tmp_path / f"ingest-{p}.log"
            logs.append(err)
            ingests.append(subprocess.Popen(
                [OMS_CMD, "--config", str(cfg), "ingest", "--channel", "json", "--json", *map(str, paths)],
                stdout=out.open("wb"), stderr=err.open("wb"), env=env))
        for proc in ingests:
            proc.wait(timeout=60)
        codes = [proc.returncode for proc in ingests]
        assert codes == [0] * INGESTS, (codes, [log.read_text() for log in logs])

        with OMS(config) as oms:
            deadline = time.monotonic() + 40
            while not _quiet(oms):
                assert time.monotonic() < deadline, "the workers did not finish the backlog in time"
                time.sleep(0.3)
            assert all(proc.poll() is None for proc in workers), [log.read_text() for log in logs]
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            for proc in workers:
                proc.wait(timeout=30)
            assert [proc.returncode for proc in workers] == [0] * WORKERS, [log.read_text() for log in logs]
            for log in logs:
                # The worker logs a pass that failed as a whole and carries on: none may have.
                assert "pass failed" not in log.read_text(), log.read_text()
            _check(oms, tmp_path, files)
    finally:
        for proc in [*ingests, *workers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _check(oms: OMS, tmp_path: Path, files: list[list[Path]]) -> None:
    expected = {o["external_id"] for paths in files for path in paths for o in json.loads(path.read_text())}
    reported: dict[str, str] = {}
    for p in range(INGESTS):
        results = json.loads((tmp_path / f"ingest-{p}.json").read_text())
        assert len(results) == FILES * PER_FILE and not [r for r in results if "error" in r]
        reported.update({r["external_id"]: r["number"] for r in results})
    assert set(reported) == expected

    with oms.db.read() as s:
        stored = Counter(s.scalars(select(Order.external_id).where(Order.parent_id.is_(None))))
        numbers = dict(s.execute(select(Order.external_id, Order.number).where(Order.parent_id.is_(None))).all())
        # every order exactly once, under the number its ingest reported
        assert set(stored) == expected and set(stored.values()) == {1}
        assert numbers == reported
        # every order went through the pipeline: none is left waiting at a stage
        assert not s.scalars(select(Order.number).where(Order.status == "paid")).all()
        incidents = s.scalars(select(Incident.error)).all()
        assert incidents == [], incidents

        stock = {(r.warehouse, r.sku): (r.on_hand, r.reserved) for r in s.scalars(select(Stock))}
        assert all(0 <= reserved <= on_hand for on_hand, reserved in stock.values()), stock
        family = dict(s.execute(select(Order.id, func.coalesce(Order.parent_id, Order.id))).all())
        held: dict[tuple[int, str, str], int] = defaultdict(int)
        for r in s.scalars(select(Reservation)):
            held[(family[r.order_id], r.warehouse, r.sku)] += r.quantity
        moved: dict[tuple[int, str, str], int] = defaultdict(int)
        on_hand_moved: dict[tuple[str, str], int] = defaultdict(int)
        for m in s.scalars(select(StockMovement)):
            on_hand_moved[(m.warehouse, m.sku)] += m.on_hand_delta
            if m.kind == "opening":
                continue   # the seeded balances: the only rows that belong to no order
            assert m.order_id is not None
            moved[(family[m.order_id], m.warehouse, m.sku)] += m.reserved_delta
    # each order's reservations are exactly what its ledger movements add up to
    assert {k: v for k, v in moved.items() if v} == dict(held)
    per_row: dict[tuple[str, str], int] = defaultdict(int)
    for (_, w, sku), q in held.items():
        per_row[(w, sku)] += q
    for (w, sku), (on_hand, reserved) in stock.items():
        assert reserved == per_row.get((w, sku), 0), (w, sku)
        assert on_hand == on_hand_moved.get((w, sku), 0), (w, sku)
    assert sum(per_row.values()) > 0

    # every notification sent reached its file once
    directory = tmp_path / "outbox"
    for medium in ("sms", "email"):
        path = directory / f"{medium}.jsonl"
        ids = [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []
        assert len(ids) == len(set(ids)), f"{medium}: a notification delivered twice"

"""A rule edit published through the admin API changes the decisions of a worker already running in another
process, and a rollback through the API restores the previous behaviour there too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.storage.models import Order
from oms_engine.web.app import create_app
from tests.support import ROOT, build_oms, copy_rules, order_json, payload
from tests.support.web import ADMIN, TOKENS, ApiServer

PEN_RULE = """
  - name: pens-need-review
    priority: 1
    when:
      any_line: {sku: PEN-1}
    then:
      - hold: {reason: pens need review}
"""


def _settled(oms: OMS, number: str, deadline: float) -> str:
    """The order's state once the worker has moved it past screening (polls the shared database)."""
    while True:
        with oms.db.read() as s:
            order = s.scalar(select(Order).where(Order.number == number))
            assert order is not None
            if order.status in ("on_hold", "dispatched", "accepted", "picking"):
                return order.status
        assert time.monotonic() < deadline, f"the worker did not process {number} in time ({order.status})"
        time.sleep(0.1)


def test_a_running_worker_follows_rules_published_and_rolled_back_through_the_api(tmp_path: Path,
                                                                                 db_url: str) -> None:
    rules = copy_rules(tmp_path)
    oms = build_oms(tmp_path, db_url, rules_dir=rules)
    config = tmp_path / "config.yaml"
    config.write_text(f"database_url: '{db_url}'\nrules_dir: {rules}\ntemplates_dir: {ROOT / 'templates'}\n"
                      f"outbox_dir: {tmp_path / 'outbox'}\nnumber_secret: test\n", encoding="utf-8")
    worker = subprocess.Popen([str(Path(sys.executable).parent / "oms"), "--config", str(config), "worker",
                               "--interval", "0.1", "--max-seconds", "120"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    api = ApiServer(create_app(oms, tokens=TOKENS))
    deadline = time.monotonic() + 60
    try:
        def pen(ext: str) -> str:
            [r] = oms.intake.ingest("json", payload(order_json(ext, [("PEN-1", 1)])))
            assert r.number
            return _settled(oms, r.number, deadline)

        assert pen("LIVE-1") != "on_hold"
        path = rules / "blocking.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("rules:\n", "rules:\n" + PEN_RULE, 1),
                        encoding="utf-8")
        reply = api.post("/api/rules/reload", token=ADMIN)
        assert reply.status == 200 and reply.json["changed"] == ["blocking"], reply.body
        assert pen("LIVE-2") == "on_hold"        # decided by the worker process with the new version
        reply = api.post("/api/rules/rollback", token=ADMIN)
        assert reply.status == 200 and reply.json["changed"] == ["blocking"], reply.body
        assert pen("LIVE-3") != "on_hold"
        assert worker.poll() is None, worker.communicate()
    finally:
        api.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        oms.close()

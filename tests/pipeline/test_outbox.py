"""A sender that fails is retried later; nothing is lost, nothing sent twice, order per order kept."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.storage.models import OutboxMessage
from tests.support import build_oms, order_json, payload

PLUGIN = '''
from oms_engine import hookimpl

class FlakySms:
    name = "flaky_sms"
    medium = "sms"
    failures_left = 2
    delivered = []

    def send(self, notification):
        if FlakySms.failures_left > 0:
            FlakySms.failures_left -= 1
            raise ConnectionError("gateway timed out")
        if notification.id not in [n.id for n in FlakySms.delivered]:
            FlakySms.delivered.append(notification)

@hookimpl
def oms_register_senders(register, config):
    register(FlakySms())
'''


def test_failed_sends_are_retried_in_order(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flaky_sender.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    oms = build_oms(tmp_path, sqlite_url, plugins=["flaky_sender"])
    flaky = sys.modules["flaky_sender"].FlakySms
    try:
        [r] = oms.intake.ingest("json", payload(order_json("FLAKY-1")))
        oms.pipeline.run_until_idle()
        with oms.db.read() as s:
            [first] = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "notification")).all()
        assert (first.status, first.attempts) == ("pending", 1)
        assert "gateway timed out" in first.last_error and first.available_at > oms.clock.now()
        for _ in range(6):  # back-off: 60 s, then 120 s
            oms.clock.advance(timedelta(minutes=5))
            oms.pipeline.run_until_idle()
        with oms.db.read() as s:
            rows = s.scalars(select(OutboxMessage).where(OutboxMessage.order_number == r.number)
                             .order_by(OutboxMessage.id)).all()
        notifications = [m for m in rows if m.kind == "notification"]
        assert all(m.status == "sent" for m in notifications)
        assert notifications[0].attempts == 3
        # delivered once each, in the order they were queued
        assert [n.id for n in flaky.delivered] == [m.id for m in notifications if m.target == "sms"]
    finally:
        oms.close()

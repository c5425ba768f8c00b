"""The events webhook: every event posted, signed, once per id at a receiver that checks the signature with the
docs' example, in order per order; a receiver that answers 503 gets the same events again later, never loses one."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oms_engine.plugin.testing import drive
from tests.support import build_oms, order_json, payload
from tests.support.loopback import LoopbackServer, Received

from .support import AT_ONCE, assert_in_order_per_order, doc_code, event_rows, expected, told

SECRET = "events-s3cret"


class Receiver(LoopbackServer):
    """A shop's system taking events: checks each request with the docs' ``verify``, takes an id once."""

    name = "events-receiver"

    def __init__(self) -> None:
        super().__init__(secret=SECRET, oms_url=None)
        self.verify = doc_code("webhook-receiver")["verify"]
        self.failing = 0
        self.taken: list[dict[str, Any]] = []

    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        event = self.verify(rec.headers, rec.body, SECRET)
        if event is None:
            rec.outcome = "unsigned"
            return 401, b'{"status": "unsigned"}', "application/json", 0
        if self.failing:
            self.failing -= 1
            rec.outcome = "failed"
            return 503, b'{"reason": "busy"}', "application/json", 0
        if any(e["id"] == event["id"] for e in self.taken):
            rec.outcome = "duplicate"
            return 409, b'{"status": "duplicate"}', "application/json", 0
        self.taken.append(event)
        rec.outcome = "taken"
        return 200, b'{"status": "ok"}', "application/json", 0


def test_events_are_posted_signed_once_each_and_in_order_per_order(tmp_path: Path, sqlite_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_TEST_EVENTS_SECRET", SECRET)
    with Receiver() as receiver:
        oms = build_oms(tmp_path, sqlite_url, plugins=["oms_plugins.connectors.events_webhook"],
                        events={"connector": "events_webhook"},
                        plugin_settings={**AT_ONCE, "events_webhook": {"url": f"{receiver.url}/events",
                                                                       "secret_env": "OMS_TEST_EVENTS_SECRET",
                                                                       "timeout": 5}})
        try:
            receiver.failing = 2
            oms.intake.ingest("json", payload(*[order_json(f"W-{i}") for i in range(3)]))
            oms.pipeline.run_until_idle()
            failed = [r for r in event_rows(oms) if r.last_error]
            assert len(failed) == 2 and all("503" in r.last_error for r in failed), failed
            assert all(r.status == "pending" for r in failed)
            oms.clock.advance(timedelta(minutes=5))   # type: ignore[attr-defined]
            drive(oms)

            rows = event_rows(oms)
            assert {r.status for r in rows} == {"sent"}
            assert sorted(e["sequence"] for e in receiver.taken) == [r.id for r in rows]
            assert told(receiver.taken) == expected(oms)
            assert_in_order_per_order(receiver.taken)
            for rec in receiver.received:
                assert rec.path == "/events" and rec.headers["content-type"] == "application/json"
                assert rec.headers["idempotency-key"] == json.loads(rec.body)["id"]
                assert rec.headers["x-correlation-id"] == str(json.loads(rec.body)["sequence"])
                # The docs' check refuses another secret.
                assert receiver.verify(rec.headers, rec.body, "another secret") is None
            assert {r.outcome for r in receiver.received} == {"failed", "taken"}
        finally:
            oms.close()

"""Notifications are rendered when the outbox delivers them, so a template that fails costs that message only.

A template can pass ``oms rules check`` (it renders the sample context) and
still fail on some orders' data. The order, its transition and the payload it
came with stand; the message is retried with backoff, dead after the retry
limit, its error kept on it; and the order's warehouse document is not held
back by it.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from oms_engine.messaging.outbox import RETRY_LIMIT
from oms_engine.messaging.templates import SAMPLE_CONTEXT, check
from oms_engine.storage.models import OutboxMessage
from tests.support import ROOT, build_oms, order_json, payload
from tests.support.pipeline import sent_files, status

# Divides by zero when the amount paid is a multiple of 0.07 (not the sample's 129.00).
ODD = "Paid {{ order.payable // (order.payable % 7) }} units for {{ order.number }}.\n"


def _messages(oms, numbers: list[str]) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    with oms.db.read() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "notify.order_paid",
                                                          OutboxMessage.order_number.in_(numbers))
                              .order_by(OutboxMessage.id)))


def test_a_template_failing_on_some_orders_fails_their_messages_only(tmp_path: Path, sqlite_url: str) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "order_paid.sms.j2").write_text(ODD, encoding="utf-8")
    check(ODD, name="order_paid")              # it passes the check `oms rules check` makes
    assert SAMPLE_CONTEXT["order"]["payable"] % 7
    oms = build_oms(tmp_path, sqlite_url, templates_dir=str(templates))
    try:
        # 59.00 + freight: 69.02 is a multiple of 0.07, 69.00 is not; one order in three divides by zero.
        orders = [order_json(f"ODD-{i}", [("TEA-1", 1)], customer=f"C-ODD-{i}",
                             freight="10.02" if i % 3 == 0 else "10.00")
                  for i in range(30)]
        results = oms.intake.ingest("json", payload(*orders))
        assert [r.error for r in results] == [None] * 30 and all(r.status == "paid" for r in results)
        failing = {r.number for r in results[::3]}
        numbers = [r.number for r in results]

        oms.pipeline.run_until_idle()
        # every order went on: the failing message holds back neither its order nor the batch
        assert {status(oms, n) for n in numbers} == {"dispatched"}
        msgs = _messages(oms, numbers)
        assert len(msgs) == 30
        for m in msgs:
            if m.order_number in failing:
                assert (m.status, m.attempts) == ("pending", 1), m.order_number
                assert "ZeroDivisionError" in m.last_error and "order_paid" in m.last_error
                assert m.available_at > oms.clock.now()
            else:
                assert m.status == "sent" and m.last_error == ""
                # the text it was sent with is kept on the row
                assert m.payload["body"] == f"Paid {6900 // (6900 % 7)} units for {m.order_number}."
                assert m.payload["subject"] == "" and m.payload["template"] == "order_paid"
        paid_sms = Counter(r["order"] for r in sent_files(oms)["sms"] if r["template"] == "order_paid")
        assert set(paid_sms) == set(numbers) - failing and set(paid_sms.values()) == {1}

        # retried with backoff (and jitter: each at its own time) until the retry limit, then dead with the error
        for _ in range(2000):
            due = oms.pipeline.next_due()
            if due is None or all(m.status == "dead" for m in _messages(oms, sorted(failing))):
                break
            oms.clock.advance_to(due)
            oms.pipeline.run_until_idle()
        dead = _messages(oms, sorted(failing))
        assert [(m.status, m.attempts) for m in dead] == [("dead", RETRY_LIMIT)] * len(failing)
        assert all("ZeroDivisionError" in m.last_error for m in dead)
        # the orders themselves went their way meanwhile
        assert all(status(oms, n) not in ("paid", "routed", "dispatched") for n in failing)
    finally:
        oms.close()

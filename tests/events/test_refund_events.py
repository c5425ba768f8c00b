"""A refund's later states are events (``refund.status_changed``): a finance system learns that a refund owed was
handed to the provider and paid back, or refused and sent again, not only that it was owed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from oms_engine.plugin.testing import drive
from oms_engine.storage.models import Payment
from tests.support import build_oms, order_json, payload

from .support import AT_ONCE, Broker, assert_in_order_per_order, deduplicated, event_rows, events_config, expected, told


def money(events: list[dict[str, Any]], number: str) -> list[tuple[Any, ...]]:
    """The order's refund events, as they arrived: what was recorded, then each change."""
    return [(e["type"], d["serial"], d.get("status") or (d["from_status"], d["to_status"]))
            for e in events if e["key"] == number and e["type"].startswith("refund.") for d in [e["data"]]]


def test_a_refund_sent_and_paid_back_is_told_step_by_step_after_it_was_recorded(tmp_path: Path, db_url: str,
                                                                               broker: Broker) -> None:
    oms = build_oms(tmp_path, db_url, **events_config(broker.exchange))
    try:
        [number] = [r.number for r in oms.intake.ingest("json", payload(order_json("RE-1")))]
        oms.commands.cancel(number, actor="ops:test", reason="changed their mind")
        drive(oms)
        events, times = deduplicated(broker.take())
        assert set(times.values()) == {1} and {r.status for r in event_rows(oms)} == {"sent"}
        assert told(events) == expected(oms)
        serial = f"{number}-R01"
        assert money(events, number) == [("refund.recorded", serial, "due"),
                                          ("refund.status_changed", serial, ("due", "sent")),
                                          ("refund.status_changed", serial, ("sent", "refunded"))]
        with oms.db.read() as s:
            paid_as = s.scalar(select(Payment.provider_ref).where(Payment.serial == serial))
        sent, refunded = (e for e in events if e["type"] == "refund.status_changed")
        assert sent["data"]["provider_ref"] is None
        assert refunded["data"] == {"order_number": number, "serial": serial, "from_status": "sent",
                                    "to_status": "refunded", "provider_ref": paid_as, "actor": "payment:sim_payment",
                                    "note": f"refunded by the provider as {paid_as}"}
        assert paid_as and refunded["key"] == number
        assert_in_order_per_order(events)
    finally:
        oms.close()


def test_a_refund_refused_and_sent_again_by_a_person_is_told_each_time(tmp_path: Path, sqlite_url: str,
                                                                      broker: Broker) -> None:
    refusing = {**AT_ONCE, "sim_payment": {"refusal_rate": 1.0}}
    oms = build_oms(tmp_path, sqlite_url, **events_config(broker.exchange, plugin_settings=refusing))
    try:
        [number] = [r.number for r in oms.intake.ingest("json", payload(order_json("RE-2")))]
        oms.commands.cancel(number, actor="ops:test", reason="changed their mind")
        drive(oms)
        serial = f"{number}-R01"
        assert oms.commands.retry_refund(serial, actor="ops:ann") == "due"
        drive(oms)
        events, times = deduplicated(broker.take())
        assert set(times.values()) == {1}
        assert told(events) == expected(oms)
        changes = [step for _, _, step in money(events, number)[1:]]
        assert changes[:4] == [("due", "sent"), ("sent", "failed"), ("failed", "due"), ("due", "sent")]
        again = next(e["data"] for e in events if e["type"] == "refund.status_changed"
                     and e["data"]["from_status"] == "failed")
        assert (again["actor"], again["note"]) == ("ops:ann", "sent to the provider again")
        assert_in_order_per_order(events)
    finally:
        oms.close()

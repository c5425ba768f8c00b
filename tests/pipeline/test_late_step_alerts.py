"""A late step alerting once: the incident, the message to operations, the row, and settling it.

The shipped config.yaml's limits apply (routed -> dispatched 2h, dispatched -> picking 24h, picking ->
shipped 24h, shipped -> delivered 120h). The simulated warehouse here takes days to start picking, so an
order sent to it overstays the 24 hours it has to get there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.orders.late_steps import LateLimits, raise_alert
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import show_order
from oms_engine.storage.models import Incident, LateStep, Order, OutboxMessage
from tests.support import build_oms, order_json
from tests.support.pipeline import drive_until_state, ingest_one, sent_files, status

SLOW_PICKING = {"sim_wms": {"time_scale": 1.0, "dock_refusal_rate": 0.0, "pick_minutes": 3 * 24 * 60},
                "sim_carrier": {"time_scale": 1.0, "refusal_rate": 0.0}}


@pytest.fixture
def slow_oms(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    o = build_oms(tmp_path, db_url, plugin_settings=SLOW_PICKING)
    yield o
    o.close()


def alerts(oms: OMS, number: str) -> tuple[list[LateStep], list[Incident], list[OutboxMessage]]:
    with oms.db.read() as s:
        oid = s.scalar(select(Order.id).where(Order.number == number))
        rows = list(s.scalars(select(LateStep).where(LateStep.order_id == oid)))
        incidents = list(s.scalars(select(Incident).where(Incident.order_id == oid, Incident.stage == "late-step")))
        messages = list(s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "notify.late_step")
                                  .order_by(OutboxMessage.id)))
        return rows, incidents, [m for m in messages if m.payload["context"]["order"]["number"] == number]


def due_at(oms: OMS, number: str) -> Any:
    with oms.db.read() as s:
        return get_order(s, number).due_at


def later(oms: OMS, **delta: float) -> None:
    oms.clock.advance(timedelta(**delta))  # type: ignore[attr-defined]
    oms.pipeline.run_until_idle()


def test_a_late_step_alerting_once(slow_oms: OMS) -> None:
    oms = slow_oms
    number = ingest_one(oms, order_json("LATE-1")).number
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    sent = oms.clock.now()
    assert due_at(oms, number) == sent + timedelta(hours=24)    # routed -> dispatched met; picking's clock runs

    later(oms, minutes=10)
    assert status(oms, number) == "accepted"
    assert due_at(oms, number) == sent + timedelta(hours=24)    # inside the span the clock goes on from dispatched
    later(oms, hours=23)
    assert alerts(oms, number) == ([], [], [])

    later(oms, hours=1, minutes=5)                              # 15 minutes past the limit
    rows, incidents, messages = alerts(oms, number)
    assert [(r.step, r.after, r.limit_minutes, r.warehouse, r.carrier, r.due_at, r.resolved_at) for r in rows] == [
        ("picking", "dispatched", 1440, "WH-SH", "sim_carrier", sent + timedelta(hours=24), None)]
    assert rows[0].raised_at == oms.clock.now()
    [incident] = incidents
    assert incident.error == (f"picking within 24h of dispatched: due {(sent + timedelta(hours=24)).isoformat()}, "
                              f"15m late, still accepted; warehouse WH-SH, carrier sim_carrier")
    assert incident.action == "operations alerted (email to ops@example.com)" and incident.plugin == ""
    [message] = messages
    assert (message.kind, message.target, message.status, message.order_id) == ("notification", "email", "sent", None)
    assert message.payload["recipient"] == "ops@example.com"
    assert due_at(oms, number) is None
    [mail] = [r for r in sent_files(oms)["email"] if r["template"] == "late_step"]
    assert mail["to"] == "ops@example.com"
    assert mail["subject"] == f"Late: order {number} has not reached picking"
    assert "within 24h of dispatched" in mail["body"] and "15m late and still accepted" in mail["body"]
    assert "Warehouse: WH-SH" in mail["body"]

    # More passes, hours apart, in the span: nothing more.
    for _ in range(3):
        later(oms, hours=1)
    assert status(oms, number) == "accepted"
    rows, incidents, messages = alerts(oms, number)
    assert (len(rows), len(incidents), len(messages)) == (1, 1, 1)
    story = show_order(oms, number)
    assert [(ls["step"], ls["after"], ls["limit"], ls["resolved_at"]) for ls in story["late_steps"]] == [
        ("picking", "dispatched", "24h", None)]

    drive_until_state(oms, number, "picking")
    picked = oms.clock.now()
    rows, incidents, messages = alerts(oms, number)
    assert [(r.step, r.resolved_at) for r in rows] == [("picking", picked)]
    assert (len(incidents), len(messages)) == (1, 1)
    assert due_at(oms, number) == picked + timedelta(hours=24)   # the next limit: shipped within 24h of picking
    assert show_order(oms, number)["late_steps"][0]["resolved_at"] == picked.isoformat(timespec="seconds")

    drive_until_state(oms, number, "completed")
    assert [(r.step, r.resolved_at) for r in alerts(oms, number)[0]] == [("picking", picked)]
    assert len(alerts(oms, number)[2]) == 1


def test_the_same_step_is_never_alerted_twice(slow_oms: OMS) -> None:
    oms = slow_oms
    number = ingest_one(oms, order_json("LATE-2")).number
    oms.pipeline.run_until_idle()
    later(oms, hours=25)
    assert len(alerts(oms, number)[0]) == 1
    late = LateLimits.from_config(oms.config)
    with oms.db.session() as s:
        order = get_order(s, number)
        again = s.execute(select(Order.id, Order.number, Order.status, Order.warehouse, Order.carrier)
                          .where(Order.id == order.id)).one()
        row = {**again._asdict(), "due_at": oms.clock.now() - timedelta(hours=1)}
        assert raise_alert(s, late, oms.outbox, SimpleNamespace(**row), oms.clock.now()) is False
    rows, incidents, messages = alerts(oms, number)
    assert (len(rows), len(incidents), len(messages)) == (1, 1, 1)


def test_an_order_that_leaves_the_span_in_time_is_not_alerted(slow_oms: OMS) -> None:
    oms = slow_oms
    number = ingest_one(oms, order_json("LATE-3")).number
    oms.pipeline.run_until_idle()
    oms.commands.cancel(number, actor="test", reason="changed their mind")
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "cancelled" and due_at(oms, number) is None
    later(oms, days=5)
    assert alerts(oms, number) == ([], [], [])


def test_the_pipeline_wakes_for_a_late_step(slow_oms: OMS) -> None:
    oms = slow_oms
    number = ingest_one(oms, order_json("LATE-4")).number
    oms.pipeline.run_until_idle()
    later(oms, minutes=10)
    # The warehouse's next answer is a day and a half away at least: the limit comes first.
    assert oms.pipeline.next_due() == due_at(oms, number)

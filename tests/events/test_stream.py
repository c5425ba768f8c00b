"""A demo run's events reach a consumer on the real RabbitMQ: every order transition, stock ledger row, payment and
refund and a refund's later states, each once, in order per order; and with no events connector none is written."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from oms_engine.config import Events, load_config
from oms_engine.demo.driver import demo_config, run_demo
from oms_engine.engine import OMS
from oms_engine.events import EVENTS
from oms_engine.plugin.registry import RegistryError
from oms_engine.plugin.testing import drive
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import History, Order, OutboxMessage
from tests.support import ROOT, build_oms, order_json, payload

from .support import (
    Broker,
    assert_in_order_per_order,
    assert_wire,
    deduplicated,
    event_rows,
    events_config,
    expected,
    told,
)

DEMO_ORDERS = 30


def test_every_event_of_a_demo_run_arrives_once_in_order_per_order(tmp_path: Path, db_url: str,
                                                                    broker: Broker) -> None:
    base = load_config(ROOT / "config.yaml", database_url=db_url)
    config = base.model_copy(update={"plugins": ["oms_plugins.connectors.rabbitmq"],
                                     "events": Events(connector="rabbitmq", source="demo")})
    config = config.with_plugin_settings(rabbitmq={"exchange": broker.exchange})
    config = demo_config(config, db_url).model_copy(update={"outbox_dir": str(tmp_path / "outbox")})
    run_demo(config, orders=DEMO_ORDERS, skus=60, console=Console(file=io.StringIO()))

    got = broker.take()
    events, times = deduplicated(got)
    with OMS(config) as oms:
        rows = event_rows(oms)
        # Every event was published and confirmed: none waits, none died.
        assert rows and {r.status for r in rows} == {"sent"}, [(r.id, r.status, r.last_error) for r in rows[:5]]
        assert {r.target for r in rows} == {"rabbitmq"}
        # Exactly once: no publisher died, so nothing came twice; and nothing is missing.
        assert set(times.values()) == {1}, {k: n for k, n in times.items() if n > 1}
        assert sorted(e["sequence"] for e in events) == [r.id for r in rows]
        # Each tells what the database says happened: every transition, payment, refund and ledger movement.
        assert told(events) == expected(oms)
        kinds = {e["type"] for e in events}
        assert kinds == {"order.transition", "payment.recorded", "refund.recorded", "refund.status_changed",
                         "stock.movement"}, kinds
        assert_histories(oms, events)
    assert_in_order_per_order(events)
    assert_wire(got, broker.exchange)
    assert {e["source"] for e in events} == {"demo"}


def assert_histories(oms: OMS, events: list[dict[str, object]]) -> None:
    """Each order's transitions arrive in the order of its history."""
    arrived: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    for e in events:
        d = e["data"]
        if e["type"] == "order.transition":
            arrived[str(e["key"])].append((d["from_state"], d["to_state"], d["event"]))  # type: ignore[index]
    with oms.db.read() as s:
        numbers = dict(s.execute(select(Order.id, Order.number)).all())
        history: dict[str, list[tuple[object, ...]]] = defaultdict(list)
        for h in s.scalars(select(History).order_by(History.id)):
            history[numbers[h.order_id]].append((h.from_state, h.to_state, h.event))
    assert arrived == history


def test_with_no_events_connector_no_event_is_written(tmp_path: Path, sqlite_url: str) -> None:
    """The default: no sink, nothing lent to the sessions, not one event row for a whole order life."""
    oms = build_oms(tmp_path, sqlite_url)
    try:
        assert oms.config.events.connector == "" and oms.events is None and oms.machine.events is None
        results = oms.intake.ingest("json", payload(*[order_json(f"N-{i}") for i in range(3)]))
        oms.commands.cancel(results[0].number, actor="ops:test", reason="changed their mind")
        drive(oms)
        with oms.db.session() as s:
            assert EVENTS not in s.info
            kinds = set(s.scalars(select(OutboxMessage.kind)))
        assert kinds and "event" not in kinds, kinds
    finally:
        oms.close()


@pytest.mark.parametrize(("connector", "why"), [("nowhere", "unknown connector 'nowhere'"),
                                                ("sim_wms", "is of kind 'wms', not 'events'")])
def test_events_name_a_connector_of_kind_events(tmp_path: Path, sqlite_url: str, connector: str, why: str) -> None:
    with pytest.raises(RegistryError, match=why):
        build_oms(tmp_path, sqlite_url, events={"connector": connector})


def test_stock_posted_through_the_ledger_verbs_is_told_movement_by_movement(tmp_path: Path, sqlite_url: str,
                                                                            broker: Broker) -> None:
    """Goods received, transferred (out of one warehouse, into the other), counted and adjusted: one event per
    ledger row, keyed by the document (no order)."""
    oms = build_oms(tmp_path, sqlite_url, **events_config(broker.exchange))
    try:
        oms.stock.post(Movement.PURCHASE_RECEIPT, "WH-SH", "TEA-1", 10, document="PO-77", actor="ops:test",
                       unit_cost="3.00")
        oms.stock.transfer("TEA-1", 4, "WH-SH", "WH-BJ", document="TR-5", actor="ops:test")
        oms.stock.count("WH-BJ", "MUG-1", 1, document="COUNT-9", actor="ops:test")
        oms.stock.post(Movement.ADJUSTMENT, "WH-GZ", "PEN-1", -1, document="ADJ-2", actor="ops:test", note="broken")
        oms.pipeline.run_until_idle()
        events, times = deduplicated(broker.take())
        assert set(times.values()) == {1} and len(events) == len(event_rows(oms))
        assert told(events) == expected(oms)
        # After the test world's opening balances (tests/events/test_stock_events.py): the verbs' five.
        moved = [(e["key"], d["kind"], d["warehouse"], d["quantity"], d["on_hand_delta"])
                 for e in events for d in [e["data"]] if d["kind"] != "opening"]
        assert len(moved) == 5
        assert moved[:3] == [("PO-77", "purchase_receipt", "WH-SH", 10, 10), ("TR-5", "transfer", "WH-SH", -4, -4),
                             ("TR-5", "transfer", "WH-BJ", 4, 4)]
        assert {m[:3] for m in moved[3:]} == {("COUNT-9", "stocktake", "WH-BJ"), ("ADJ-2", "adjustment", "WH-GZ")}
        assert all(e["data"]["order_number"] is None for e in events)
    finally:
        oms.close()

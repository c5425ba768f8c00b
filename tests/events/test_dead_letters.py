"""A dead event holds back its order's later events until it is sent again (docs/events.md, "What you can count on"):
a consumer never sees an order's stream go on past a gap; the events of other orders go on meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.pipeline.stage import StageName
from oms_engine.plugin.testing import drive
from oms_engine.storage.models import OutboxMessage
from tests.support import build_oms, order_json, payload

from .support import (
    Broker,
    Proxy,
    assert_in_order_per_order,
    deduplicated,
    event_rows,
    events_config,
    expected,
    told,
)


def test_a_dead_event_holds_back_its_orders_later_events_until_it_is_sent_again(
        tmp_path: Path, db_url: str, broker: Broker, proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    oms = build_oms(tmp_path, db_url, **events_config(broker.exchange, url=proxy.url(), timeout=5))
    try:
        [held] = [r.number for r in oms.intake.ingest("json", payload(order_json("DL-1")))]
        # The broker unreachable and the attempts used up: the order's first event dies (as after RETRY_LIMIT
        # failures), and so does each opening balance of the test world (of no order), tried alongside it.
        monkeypatch.setattr("oms_engine.pipeline.outbox.RETRY_LIMIT", 1)
        oms.pipeline.run_pass(only=[StageName.OUTBOX])
        monkeypatch.undo()
        proxy.start()
        with oms.db.read() as s:
            dead = s.execute(select(OutboxMessage.id, OutboxMessage.order_number)
                             .where(OutboxMessage.kind == "event", OutboxMessage.status == "dead")).all()
        [head] = [i for i, n in dead if n == held]
        for i, n in dead:
            if n != held:
                oms.dead_letters.requeue(i, actor="ops:test")    # not this test's business: sent again

        [other] = [r.number for r in oms.intake.ingest("json", payload(order_json("DL-2")))]
        drive(oms)                                 # both orders' lives, to the end
        before = broker.take()
        # Nothing of the held order went past its dead event: its later events wait, untried, and only the dead
        # one is listed as dead. The other order's events all went.
        assert {g.event["key"] for g in before} & {held, other} == {other}
        rows = event_rows(oms)
        of_held = [r for r in rows if r.order_number == held]
        assert len(of_held) > 1 and [(r.id, r.status) for r in of_held[:1]] == [(head, "dead")]
        assert {(r.status, r.attempts) for r in of_held[1:]} == {("pending", 0)}
        assert [m["id"] for m in oms.dead_letters.list()] == [head]
        assert {r.status for r in rows if r.order_number != held} == {"sent"}

        oms.dead_letters.requeue(head, actor="ops:test")    # oms outbox retry
        drive(oms)
        after = broker.take()
        rows = event_rows(oms)
        assert {r.status for r in rows} == {"sent"}
        events, times = deduplicated(before + after)
        assert set(times.values()) == {1}
        assert sorted(e["sequence"] for e in events) == [r.id for r in rows]
        assert told(events) == expected(oms)
        # The held order's events arrived after the dead one was sent again, all of them, in order: no gap, and
        # nothing late for the consumer to name.
        assert [e["sequence"] for e in events if e["key"] == held] == [r.id for r in of_held]
        assert_in_order_per_order(events)
    finally:
        oms.close()


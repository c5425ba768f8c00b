"""What the RabbitMQ connector does when the broker is away, drops the connection, or does not take a message: the
events wait in the outbox and are published when it can take them, each once, in order per order; the rest of the
order's life goes on meanwhile."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from oms_engine import PluginFault
from oms_engine.plugin.testing import drive, status
from tests.support import build_oms, order_json, payload

from .support import (
    Broker,
    Proxy,
    assert_in_order_per_order,
    assert_wire,
    deduplicated,
    event_rows,
    events_config,
    expected,
    told,
)


def test_events_wait_while_the_broker_is_unreachable_and_all_arrive_when_it_is_back(
        tmp_path: Path, db_url: str, broker: Broker, proxy: Proxy) -> None:
    oms = build_oms(tmp_path, db_url, **events_config_via(proxy, broker))
    try:
        results = oms.intake.ingest("json", payload(*[order_json(f"U-{i}") for i in range(4)]))
        numbers = [r.number for r in results]
        oms.pipeline.run_until_idle()     # nothing listens on the proxy's port: connection refused

        # The orders went on to their door: a broker away holds back no warehouse document or message.
        assert {status(oms, n) for n in numbers} == {"delivered"}
        rows = event_rows(oms)
        assert rows and {r.status for r in rows} == {"pending"}
        # Each order's first event was tried once and waits for its retry; the others wait behind it. (The test
        # world's opening balances, of no order, were each tried.)
        tried = [r for r in rows if r.attempts and r.order_id is not None]
        assert sorted(r.order_number for r in tried) == sorted(numbers)
        assert {r.attempts for r in tried} == {1}
        assert all("cannot connect" in r.last_error for r in tried), tried[0].last_error
        assert broker.count() == 0

        proxy.start()                     # the broker is back
        oms.clock.advance(timedelta(minutes=3))   # type: ignore[attr-defined]
        drive(oms)                        # to the end of the confirmation window: more events
        rows = event_rows(oms)
        assert {r.status for r in rows} == {"sent"}, [(r.id, r.status, r.last_error) for r in rows]
        got = broker.take()
        events, times = deduplicated(got)
        assert set(times.values()) == {1}
        assert sorted(e["sequence"] for e in events) == [r.id for r in rows]
        assert told(events) == expected(oms)
        assert_in_order_per_order(events)
        assert_wire(got, broker.exchange)
        # One connection carried them all.
        assert proxy.accepted == 1
    finally:
        oms.close()


def test_a_dropped_connection_is_opened_again_without_failing_the_event(tmp_path: Path, sqlite_url: str,
                                                                         broker: Broker, proxy: Proxy) -> None:
    proxy.start()
    oms = build_oms(tmp_path, sqlite_url, **events_config_via(proxy, broker))
    try:
        oms.intake.ingest("json", payload(*[order_json(f"D-{i}") for i in range(2)]))
        oms.pipeline.run_until_idle()
        first = broker.take()
        assert first and proxy.accepted == 1
        proxy.cut()                       # the broker closed the connection (a restart, an idle timeout)
        drive(oms)                        # confirmed and closed: more events, on the kept connection that is gone
        rows = event_rows(oms)
        assert {r.status for r in rows} == {"sent"} and {r.attempts for r in rows} == {1}, \
            [(r.id, r.status, r.attempts, r.last_error) for r in rows if r.attempts != 1]
        assert proxy.accepted == 2
        events, times = deduplicated(first + broker.take())
        assert set(times.values()) == {1}
        assert sorted(e["sequence"] for e in events) == [r.id for r in rows]
        assert_in_order_per_order(events)
    finally:
        oms.close()


def test_an_event_returned_unroutable_or_nacked_is_kept_and_published_later(tmp_path: Path, sqlite_url: str) -> None:
    bare = Broker()                       # an exchange no queue is bound to yet
    oms = build_oms(tmp_path, sqlite_url, **events_config(bare.exchange))
    try:
        oms.intake.ingest("json", payload(order_json("R-1")))
        oms.pipeline.run_until_idle()
        head = event_rows(oms)[0]
        assert (head.status, head.attempts) == ("pending", 1) and "unroutable" in head.last_error, head.last_error

        # A queue that takes one message and refuses more (the broker nacks the publish), already full.
        full = bare.bind(f"{bare.exchange}.full", **{"x-max-length": 1, "x-overflow": "reject-publish"})
        bare.channel.basic_publish("", full, b"filler")
        oms.clock.advance(timedelta(minutes=5))   # type: ignore[attr-defined]
        oms.pipeline.run_until_idle()
        head = event_rows(oms)[0]
        assert (head.status, head.attempts) == ("pending", 2) and "nack" in head.last_error, head.last_error

        bare.channel.queue_delete(full)
        bare.bound.remove(full)
        bare.bind()
        oms.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]
        drive(oms)
        rows = event_rows(oms)
        assert {r.status for r in rows} == {"sent"}
        events, times = deduplicated(bare.take())
        assert set(times.values()) == {1}
        assert [e["sequence"] for e in events] == [r.id for r in rows]     # one order: one queue, in order
        assert events[0]["sequence"] == head.id and rows[0].attempts == 3
    finally:
        oms.close()
        bare.close()


@pytest.mark.parametrize(("settings", "why"), [
    ({"exchang": "oms.events"}, "unknown parameter 'exchang'.*did you mean 'exchange'"),
    ({"url": "http://127.0.0.1:5672"}, "'url' must be an amqp:// or amqps:// address"),
    ({"exchange": "amq.topic"}, "'exchange' must be the name of a topic exchange of the OMS's own"),
    ({"timeout": 0}, "'timeout' must be a number of seconds"),
])
def test_rabbitmq_settings_are_checked_at_start(tmp_path: Path, sqlite_url: str, settings: dict[str, object],
                                                why: str) -> None:
    config = events_config("oms.events")
    config["plugin_settings"]["rabbitmq"] = settings     # type: ignore[index]
    with pytest.raises(PluginFault, match=why):   # the plugin that failed to register is named
        build_oms(tmp_path, sqlite_url, **config)


def events_config_via(proxy: Proxy, broker: Broker) -> dict[str, object]:
    return events_config(broker.exchange, url=proxy.url(), timeout=5)

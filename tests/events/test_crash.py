"""A publisher killed while it publishes loses no event, and what it publishes again is the same message.

A real ``oms worker`` process publishes through a proxy that holds each of the broker's answers (its confirms) a
little, so the worker is always in the middle of a batch, and is killed with SIGKILL with a few events of its
first batch confirmed by the broker and none of the batch recorded as sent (the outbox records a batch when it is
done). Then ``oms run`` takes over. Every event of the orders' lives must arrive; one that comes twice comes with
the message id, routing key and body of its first delivery, and only if the killed worker had published it; after
de-duplication each order's events are in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import select

from oms_engine.config import load_config
from oms_engine.engine import OMS
from oms_engine.storage.models import OutboxMessage
from tests.support import build_oms, order_json, payload
from tests.support.cli import OMS_BIN, Cli

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

ORDERS = 8


def test_a_publisher_killed_mid_delivery_loses_no_event_and_repeats_only_what_it_had_published(
        tmp_path: Path, db_url: str, broker: Broker, proxy: Proxy) -> None:
    build_oms(tmp_path, db_url).close()      # the schema and the test world
    cli = Cli(tmp_path, db_url)
    cli.write_config(**events_config(broker.exchange, url=proxy.url(), timeout=5))
    proxy.start()
    proxy.delay = 0.03                        # each confirm comes 30 ms late: a batch takes a while
    oms = OMS(load_config(cli.config))
    try:
        results = oms.intake.ingest("json", payload(*[order_json(f"K-{i}", customer=f"C-K{i}")
                                                      for i in range(ORDERS)]))
        assert {r.status for r in results} == {"paid"}

        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen([OMS_BIN, "worker", "--interval", "0.05"], env=cli.env(), cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            # Killed with a few events of its first batch (one per order) confirmed, the batch not done.
            deadline = time.monotonic() + 30
            while broker.count() < 3:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, f"the worker published {broker.count()} in 30 s"
                time.sleep(0.005)
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.wait(timeout=30)
            log.close()
        proxy.settle()                        # what the worker had on the wire has reached the broker
        broker.settled()
        before = broker.take()
        assert 3 <= len(before) < ORDERS, len(before)
        with oms.db.read() as s:
            sent = set(s.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == "event",
                                                                 OutboxMessage.status == "sent")))
        # The batch died unrecorded: every event the broker has is still pending in the outbox.
        published = {g.event["sequence"] for g in before}
        assert published and not published & sent

        proxy.delay = 0.0
        cli("run")
        after = broker.take()
        rows = event_rows(oms)
        assert rows and {r.status for r in rows} == {"sent"}, [(r.id, r.status, r.last_error) for r in rows]
        events, times = deduplicated(before + after)
        # None lost: every event of every order arrived.
        assert sorted(e["sequence"] for e in events) == [r.id for r in rows]
        assert told(events) == expected(oms, seeded_silently=True)
        # What the killed worker had published, and only that, came twice: as itself (deduplicated checked the
        # content), under the same message id.
        twice = {mid for mid, n in times.items() if n > 1}
        assert twice == {g.message_id for g in before}
        assert all(n <= 2 for n in times.values())
        assert len(before) + len(after) == len(rows) + len(twice)
        assert_in_order_per_order(events)
        assert_wire(before + after, broker.exchange)
    finally:
        oms.close()

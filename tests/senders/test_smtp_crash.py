"""A worker killed while it delivers e-mail loses none, and what it sends twice is recognisably the same message.

A real ``oms worker`` process delivers to a deliberately slow SMTP relay (each message is kept when it arrives,
its answer comes later) and is killed with SIGKILL in the middle of a batch: some messages of the batch accepted,
one on the wire, none of it recorded as sent (the outbox records a batch when it is done). Then ``oms run`` takes
over. Every message the orders called for must arrive; the ones the dead worker had delivered must not come
again (the sender's journal of what the relay accepted); only the one in flight at the kill may, and then with
the Message-ID, recipient and text of its first delivery.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from oms_engine.config import load_config
from oms_engine.engine import OMS
from oms_engine.storage.models import OutboxMessage
from tests.support import build_oms, order_json, payload
from tests.support.cli import OMS_BIN, Cli
from tests.support.smtp_server import SmtpServer

from .conftest import MAIL_RULES, MAIL_TEMPLATES, expected_mail, notification_world, notifications, smtp_settings

ORDERS = 8


def test_a_worker_killed_while_delivering_loses_nothing_and_sends_at_most_the_message_in_flight_again(
        tmp_path: Path, db_url: str, smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    relay.delay = 0.15       # each message's answer waits: the worker is always in the middle of one
    rules_dir, templates_dir = notification_world(tmp_path, MAIL_RULES, MAIL_TEMPLATES)
    # the schema, the test world, these rules active
    build_oms(tmp_path, db_url, rules_dir=rules_dir, templates_dir=str(templates_dir)).close()
    cli = Cli(tmp_path, db_url)
    cli.write_config(rules_dir=str(rules_dir), templates_dir=str(templates_dir), senders={"email": "smtp"},
                     plugin_settings={"sim_wms": {"time_scale": 0, "dock_refusal_rate": 0.0},
                                      "sim_carrier": {"time_scale": 0, "refusal_rate": 0.0},
                                      "smtp": smtp_settings(relay.host, relay.port)})
    oms = OMS(load_config(cli.config))
    try:
        results = oms.intake.ingest("json", payload(*[order_json(f"K-{i}", customer=f"C-K{i}") for i in range(ORDERS)]))
        assert {r.status for r in results} == {"paid"}
        numbers = [r.number for r in results]

        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen([OMS_BIN, "worker", "--interval", "0.05"], env=cli.env(), cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            # Killed with a few messages of its first batch accepted and another kept but not yet answered.
            deadline = time.monotonic() + 30
            while not (len(relay.received()) >= 3 and relay.in_flight):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, f"the worker delivered {len(relay.received())} in 30 s"
                time.sleep(0.002)
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.wait(timeout=30)
            log.close()
        before = relay.received()
        with oms.db.read() as s:
            recorded = set(s.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "sent")))
        # The batch died unrecorded: every message the relay has is still pending in the outbox.
        assert before and not recorded & {m.outbox_id for m in before}

        relay.delay = 0.0
        cli("run")
        mails = relay.received()
        rows = notifications(oms, "email")
        assert rows and {r.status for r in rows} == {"sent"}, [(r.id, r.status, r.last_error) for r in rows]
        # None lost: every notification of every order arrived, as itself.
        row_of = {r.id: r for r in rows}
        assert {m.outbox_id for m in mails} == set(row_of)
        firsts: dict[str, list[str]] = {n: [] for n in numbers}
        seen: dict[str, tuple[str, str, list[str]]] = {}
        for m in mails:
            row = row_of[m.outbox_id]
            assert m.message_id == f"<oms-{row.id}.{row.order_number}@shop.example.com>"
            assert (m.subject, m.body, m.to) == (row.payload["subject"], row.payload["body"] + "\n",
                                                 [row.payload["recipient"]])
            if m.message_id in seen:      # sent again: the same message as its first delivery
                assert seen[m.message_id] == (m.subject, m.body, m.to)
                continue
            seen[m.message_id] = (m.subject, m.body, m.to)
            firsts[row.order_number].append(row.payload["template"])
        for number in numbers:
            assert firsts[number] == expected_mail(oms, number) == ["paid_mail", "shipped_mail", "delivered_mail"]
        # At most the one in flight at the kill came twice, and it was one the dead worker had on the wire.
        twice = [mid for mid, n in Counter(m.message_id for m in mails).items() if n > 1]
        assert len(twice) <= 1, twice
        assert set(twice) <= {m.message_id for m in before}
        assert len(mails) == len(rows) + len(twice)
    finally:
        oms.close()


def test_the_journal_is_what_keeps_a_second_process_from_sending_them_again(tmp_path: Path,
                                                                             smtp_server: Callable[..., SmtpServer],
                                                                             ) -> None:
    """Two processes with one journal, the second sending what the first had sent (its batch never recorded):
    the relay gets each once; a message whose id comes back with other content (a database recreated next to an
    old journal) is sent."""
    relay = smtp_server()
    config = tmp_path / "config.yaml"
    config.write_text(f"outbox_dir: {tmp_path / 'outbox'}\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from oms_engine.config import load_config\n"
        "from oms_engine.plugin.contracts import Notification\n"
        "from oms_plugins.senders.smtp import SmtpSender, read_settings\n"
        "cfg = load_config(sys.argv[1])\n"
        f"sender = SmtpSender(read_settings({smtp_settings(relay.host, relay.port)!r}, cfg))\n"
        "for i in sys.argv[3].split(','):\n"
        "    sender.send(Notification(int(i), 'N' + i, 'email', 'c@example.com', 't', 'hello', sys.argv[2] + i))\n"
        "sender.flush()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
    python = str(Path(OMS_BIN).parent / "python")
    for text, ids in (("body ", "1,2,3"), ("body ", "2,3,4"), ("other ", "3")):
        subprocess.run([python, "-c", script, str(config), text, ids], env=env, check=True, timeout=60)
    got = [(m.outbox_id, m.body) for m in relay.received()]
    assert got == [(1, "body 1\n"), (2, "body 2\n"), (3, "body 3\n"), (4, "body 4\n"), (3, "other 3\n")]

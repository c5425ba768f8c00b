"""E-mail through the real pipeline to a real SMTP server: one message per transition, in order, none lost.

Orders go through the whole OMS (intake, the simulated warehouse and carrier, the outbox) with ``senders:
{email: smtp}`` pointing at an aiosmtpd relay on loopback; the rules send an e-mail when an order is paid, shipped
and delivered. What the relay got is compared with what the orders did (their history) and what the outbox
recorded; the relay fails, drops the connection and refuses a recipient on the way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from oms_engine.engine import OMS
from oms_engine.messaging.outbox import RETRY_LIMIT
from oms_engine.plugin.testing import show_order
from tests.support import NO_REFUSALS, build_oms, order_json, payload
from tests.support.smtp_server import Mail, SmtpServer

from .conftest import (
    MAIL_RULES,
    MAIL_TEMPLATES,
    drive_all,
    expected_mail,
    notification_world,
    notifications,
    smtp_settings,
)


def mail_oms(tmp_path: Path, url: str, relay: SmtpServer, **smtp: object) -> OMS:
    rules_dir, templates_dir = notification_world(tmp_path, MAIL_RULES, MAIL_TEMPLATES)
    return build_oms(tmp_path, url, rules_dir=rules_dir, templates_dir=str(templates_dir), late_steps=[],
                     senders={"email": "smtp"},
                     plugin_settings={**NO_REFUSALS, "smtp": smtp_settings(relay.host, relay.port, **smtp)})


def ingest_orders(oms: OMS, count: int, prefix: str = "M") -> list[str]:
    results = oms.intake.ingest("json", payload(*[order_json(f"{prefix}-{i}", customer=f"C-{prefix}{i}")
                                                  for i in range(count)]))
    assert [r.error for r in results] == [None] * count and {r.status for r in results} == {"paid"}
    return [r.number for r in results]


def by_order(mails: list[Mail]) -> dict[str, list[Mail]]:
    out: dict[str, list[Mail]] = defaultdict(list)
    for m in mails:
        out[m.message_id.split(".", 1)[1].split("@")[0]].append(m)
    return out


def assert_each_once_in_order(oms: OMS, numbers: list[str], mails: list[Mail]) -> None:
    """Every notification row sent, delivered exactly once as itself, and each order's in transition order."""
    rows = notifications(oms, "email")
    assert rows and {m.status for m in rows} == {"sent"}, [(m.id, m.status, m.last_error) for m in rows]
    assert Counter(m.message_id for m in mails).most_common(1)[0][1] == 1, "an e-mail arrived twice"
    assert sorted(m.outbox_id for m in mails) == [r.id for r in rows]
    row_of = {r.id: r for r in rows}
    for m in mails:
        row = row_of[m.outbox_id]
        # the message is the row: its Message-ID, recipient, the text the outbox recorded as sent
        assert m.message_id == f"<oms-{row.id}.{row.order_number}@shop.example.com>"
        assert m.to == [row.payload["recipient"]] and m.mail_from == "orders@shop.example.com"
        assert (m.subject, m.body) == (row.payload["subject"], row.payload["body"] + "\n")
        assert m.message["From"] == "Tea Shop <orders@shop.example.com>" and m.message["Date"]
    got = by_order(mails)
    for number in numbers:
        templates = [row_of[m.outbox_id].payload["template"] for m in got[number]]
        assert templates == expected_mail(oms, number), number
        assert templates[:3] == ["paid_mail", "shipped_mail", "delivered_mail"], (number, templates)


def test_one_email_per_transition_per_order_in_order(tmp_path: Path, db_url: str,
                                                     smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    oms = mail_oms(tmp_path, db_url, relay)
    try:
        assert oms.plugins.sender_for("email").name == "smtp"
        numbers = ingest_orders(oms, 6)
        drive_all(oms)
        mails = relay.received()
        assert len(mails) == 18
        assert_each_once_in_order(oms, numbers, mails)
        # one connection per outbox batch, not one per message: the six paid mails went in one batch
        assert len({m.connection for m in mails if m.subject.startswith("订单")}) == 1
        assert {show_order(oms, n)["status"] for n in numbers} <= {"completed", "closed"}
    finally:
        oms.close()


def test_a_relay_failing_or_dropping_the_connection_has_the_outbox_retry_and_each_arrives_once(
        tmp_path: Path, sqlite_url: str, smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    oms = mail_oms(tmp_path, sqlite_url, relay)
    try:
        numbers = ingest_orders(oms, 5)
        # the first message: 421 at DATA; the second (a new connection): 421 again; the third: the connection
        # drops at MAIL FROM. Nothing of them was kept.
        relay.fail(2, at="DATA", code=421)
        relay.drop(1, at="MAIL")
        oms.pipeline.run_until_idle()
        rows = notifications(oms, "email")
        failed = [r for r in rows if r.status == "pending"]
        assert len(failed) == 3, [(r.id, r.status, r.last_error) for r in rows]
        assert [r.attempts for r in failed] == [1, 1, 1]
        assert "421" in failed[0].last_error and "421" in failed[1].last_error
        assert "connection lost before MAIL FROM" in failed[2].last_error
        assert len(relay.received()) == 2      # the other two orders' paid mail
        drive_all(oms)
        assert_each_once_in_order(oms, numbers, relay.received())
        assert {r.attempts for r in notifications(oms, "email") if r.id in {f.id for f in failed}} == {2}
    finally:
        oms.close()


def test_an_answer_lost_after_the_relay_kept_the_message_is_sent_again_with_the_same_message_id(
        tmp_path: Path, sqlite_url: str, smtp_server: Callable[..., SmtpServer]) -> None:
    """At least once: the relay kept the message and the connection dropped before its 250 came back. The
    outbox cannot know, so it sends the message again, as the same message (same Message-ID and content)."""
    relay = smtp_server()
    oms = mail_oms(tmp_path, sqlite_url, relay)
    try:
        numbers = ingest_orders(oms, 3)
        relay.drop(1, at="DATA", keep=True)
        drive_all(oms)
        mails = relay.received()
        twice = [mid for mid, n in Counter(m.message_id for m in mails).items() if n > 1]
        assert len(twice) == 1
        first, again = [m for m in mails if m.message_id == twice[0]]
        assert (first.subject, first.body, first.to) == (again.subject, again.body, again.to)
        assert_each_once_in_order(oms, numbers, [m for m in mails if m is not again])
    finally:
        oms.close()


def test_a_recipient_refused_for_good_makes_that_message_dead_with_the_reason_and_the_rest_go_on(
        tmp_path: Path, sqlite_url: str, smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    oms = mail_oms(tmp_path, sqlite_url, relay)
    try:
        numbers = ingest_orders(oms, 4)
        bad = numbers[1]
        relay.refuse("c-m1@example.com", 550, "5.1.1 <c-m1@example.com>: Recipient address rejected")
        drive_all(oms)
        rows = notifications(oms, "email")
        dead = [r for r in rows if r.status == "dead"]
        assert {r.order_number for r in dead} == {bad}
        assert len(dead) == len(expected_mail(oms, bad)) == 3
        # dead at once, not after the retry limit, with the relay's words
        assert {r.attempts for r in dead} == {1} and RETRY_LIMIT > 1
        assert all("550 5.1.1 <c-m1@example.com>: Recipient address rejected" in r.last_error for r in dead)
        incidents = show_order(oms, bad)["incidents"]
        assert len(incidents) == 3 and "refused by its receiver" in incidents[0]["action"]
        # the order itself went its way, and so did everyone else's mail
        assert show_order(oms, bad)["status"] in ("completed", "closed")
        good = [n for n in numbers if n != bad]
        mails = relay.received()
        assert {n for n in by_order(mails)} == set(good)
        rows_sent = [r for r in rows if r.status == "sent"]
        assert sorted(m.outbox_id for m in mails) == [r.id for r in rows_sent]
        for number in good:
            assert len(by_order(mails)[number]) == len(expected_mail(oms, number))
    finally:
        oms.close()

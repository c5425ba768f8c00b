"""The SMTP sender against a real SMTP server on loopback: the message it writes, the connection it keeps for a
batch, and what it makes of each answer (sent, tried again, refused for good)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oms_engine import MessageRefused, Notification, SettingsError
from oms_engine.config import Config
from oms_plugins.senders.smtp import SmtpError, SmtpSender, read_settings
from tests.support.smtp_server import SmtpServer, self_signed

from .conftest import FROM, smtp_settings


def sender(tmp_path: Path, relay: SmtpServer, **more: Any) -> SmtpSender:
    return SmtpSender(read_settings(smtp_settings(relay.host, relay.port, **more), Config(base_dir=str(tmp_path))))


def note(i: int, to: str = "c@example.com", subject: str = "Your order", body: str = "Hello.\n",
         order: str = "2611020000000000001") -> Notification:
    return Notification(i, order, "email", to, "paid_mail", subject, body)


def test_the_message_carries_a_stable_message_id_a_date_and_utf8_text(tmp_path: Path,
                                                                      smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    s = sender(tmp_path, relay, journal=False)     # no journal: the same message may be sent twice here
    n = note(41, subject="订单 已发货\r\nBcc: evil@example.com", body="您好，\n包裹已发出。\n")
    s.send(n)
    s.send(n)
    s.flush()
    first, again = relay.wait_for(2)
    m = first.message
    assert first.message_id == again.message_id == "<oms-41.2611020000000000001@shop.example.com>"
    # the subject stays one header: a line break a template put in it cannot add a header
    assert first.subject == "订单 已发货 Bcc: evil@example.com" and m["Bcc"] is None
    assert first.body == "您好，\n包裹已发出。\n"
    assert m["From"] == FROM and m["To"] == "c@example.com" and first.to == ["c@example.com"]
    assert first.mail_from == "orders@shop.example.com"
    assert m["Date"].datetime.tzinfo is not None and abs(m["Date"].datetime.timestamp() - time.time()) < 60
    assert m["Auto-Submitted"] == "auto-generated"
    assert m.get_content_charset() == "utf-8"
    assert first.raw.isascii()      # encoded for any relay: no 8BITMIME or SMTPUTF8 needed


def test_one_connection_serves_a_batch_and_flush_closes_it(tmp_path: Path,
                                                           smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    s = sender(tmp_path, relay)
    for i in range(1, 4):
        s.send(note(i))
    s.flush()
    s.send(note(4))
    s.flush()
    assert [(m.outbox_id, m.connection) for m in relay.wait_for(4)] == [(1, 1), (2, 1), (3, 1), (4, 2)]


@pytest.mark.parametrize("trouble", ["dropped", "421"])
def test_a_kept_connection_the_relay_closed_is_opened_again_without_a_failure(
        tmp_path: Path, smtp_server: Callable[..., SmtpServer], trouble: str) -> None:
    relay = smtp_server()
    s = sender(tmp_path, relay)
    s.send(note(1))
    if trouble == "dropped":
        relay.drop(1, at="MAIL")
    else:
        relay.fail(1, at="MAIL", code=421)     # an idle connection timed out by the relay
    s.send(note(2))
    s.flush()
    assert [(m.outbox_id, m.connection) for m in relay.wait_for(2)] == [(1, 1), (2, 2)]


def test_a_recipient_refused_for_good_is_refused_and_the_connection_goes_on(
        tmp_path: Path, smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    relay.refuse("gone@example.com", 550, "5.1.1 <gone@example.com>: Recipient address rejected: User unknown")
    s = sender(tmp_path, relay)
    with pytest.raises(MessageRefused, match=r"refused the recipient: 550 5\.1\.1 <gone@example.com>: Recipient "):
        s.send(note(1, to="gone@example.com"))
    s.send(note(2))
    s.flush()
    assert [(m.outbox_id, m.connection) for m in relay.wait_for(1)] == [(2, 1)]


@pytest.mark.parametrize(("at", "code", "refused"), [
    ("RCPT", 450, False),   # mailbox busy: later
    ("RCPT", 421, False),
    ("DATA", 451, False),
    ("DATA", 452, False),
    ("DATA", 554, True),    # the message refused (content, policy): for good
    ("DATA", 552, True),
    ("MAIL", 553, False),   # our sender address refused: the configuration, not the message
    ("MAIL", 451, False),
])
def test_what_each_answer_means(tmp_path: Path, smtp_server: Callable[..., SmtpServer], at: str, code: int,
                                refused: bool) -> None:
    relay = smtp_server()
    relay.fail(1, at=at, code=code)
    s = sender(tmp_path, relay)
    with pytest.raises(MessageRefused if refused else SmtpError, match=rf" {code} "):
        s.send(note(1))
    s.send(note(2))      # the next message goes, on the same connection or a new one
    s.flush()
    assert [m.outbox_id for m in relay.wait_for(1)] == [2]


@pytest.mark.parametrize("recipient", ["", None, "no-at-sign", "a@b", "a b@example.com", "a@exa mple.com",
                                       "c@example.com\r\nBcc: x@example.com", "<c@example.com>", "c@@example.com",
                                       "x" * 65 + "@example.com", "c@-example.com"])
def test_a_recipient_that_is_no_email_address_is_refused_before_any_connection(
        tmp_path: Path, smtp_server: Callable[..., SmtpServer], recipient: Any) -> None:
    relay = smtp_server()
    s = sender(tmp_path, relay)
    with pytest.raises(MessageRefused, match="is not an e-mail address"):
        s.send(note(1, to=recipient))
    assert relay.connections == 0


def test_a_slow_relay_times_out_and_the_message_sent_again_is_the_same(tmp_path: Path,
                                                                       smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    relay.delay = 1.0
    s = sender(tmp_path, relay, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(SmtpError, match=r"before the relay answered.*same Message-ID"):
        s.send(note(7))
    assert time.monotonic() - started < 0.9
    relay.delay = 0.0
    s.send(note(7))
    s.flush()
    first, again = relay.wait_for(2)
    assert first.message_id == again.message_id and first.body == again.body


def test_a_relay_that_is_down_is_tried_again(tmp_path: Path, smtp_server: Callable[..., SmtpServer]) -> None:
    relay = smtp_server()
    port = relay.port
    relay.close()
    s = SmtpSender(read_settings(smtp_settings("127.0.0.1", port), Config(base_dir=str(tmp_path))))
    with pytest.raises(SmtpError, match=f"could not open a session with 127.0.0.1:{port}: ConnectionRefusedError"):
        s.send(note(1))


def test_login_with_the_password_from_the_environment(tmp_path: Path, smtp_server: Callable[..., SmtpServer],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    relay = smtp_server(login=("orders", "pa55"))
    s = sender(tmp_path, relay, username="orders", password_env="OMS_TEST_SMTP_PASSWORD")
    monkeypatch.delenv("OMS_TEST_SMTP_PASSWORD", raising=False)
    with pytest.raises(SmtpError, match=r"the environment variable OMS_TEST_SMTP_PASSWORD .* is not set"):
        s.send(note(1))
    monkeypatch.setenv("OMS_TEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(SmtpError, match="535"):
        s.send(note(1))
    monkeypatch.setenv("OMS_TEST_SMTP_PASSWORD", "pa55")
    s.send(note(1))
    s.flush()
    assert [m.outbox_id for m in relay.wait_for(1)] == [1]
    # smtplib tries each mechanism the relay offers before it gives up: the wrong password failed every time
    assert relay.logins[-1] == ("orders", True) and {ok for _, ok in relay.logins[:-1]} == {False}


def test_starttls_and_implicit_tls_with_the_relays_certificate(tmp_path: Path,
                                                               smtp_server: Callable[..., SmtpServer]) -> None:
    context, cert = self_signed(tmp_path)
    plain = smtp_server(starttls=context, login=("orders", "pa55"))
    tls = smtp_server(implicit_tls=context)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMS_TEST_SMTP_PASSWORD", "pa55")
        s = sender(tmp_path, plain, starttls=True, ca_file=cert, username="orders",
                   password_env="OMS_TEST_SMTP_PASSWORD")
        s.send(note(1))
        s.flush()
    assert plain.logins == [("orders", True)] and len(plain.wait_for(1)) == 1
    s = sender(tmp_path, tls, ssl=True, ca_file=cert)
    s.send(note(2))
    s.flush()
    assert [m.outbox_id for m in tls.wait_for(1)] == [2]
    # a certificate it cannot verify: no session, tried again
    with pytest.raises(SmtpError, match="CERTIFICATE_VERIFY_FAILED"):
        sender(tmp_path, tls, ssl=True).send(note(3))


@pytest.mark.parametrize(("settings", "says"), [
    ({"from": FROM}, "parameter 'host' is required"),
    ({"host": "smtp.example.com"}, "parameter 'from' is required"),
    ({"host": "smtp.example.com", "from": "shop"}, "'from' must be an e-mail address"),
    ({"host": "smtp.example.com", "from": FROM, "tmeout": 5}, "unknown parameter 'tmeout'.*did you mean 'timeout'"),
    ({"host": "smtp.example.com", "from": FROM, "password": "x"}, "unknown parameter 'password'"),
    ({"host": "smtp.example.com", "from": FROM, "ssl": True, "starttls": True}, "exclude each other"),
    ({"host": "smtp.example.com", "from": FROM, "starttls": "yes"}, "'starttls' must be true or false"),
    ({"host": "smtp.example.com", "from": FROM, "port": 0}, "'port' must be a port number"),
    ({"host": "smtp.example.com", "from": FROM, "timeout": 0}, "'timeout' must be a number"),
    ({"host": "smtp.example.com", "from": FROM, "username": "u"}, "'username' and 'password_env'"),
    ({"host": "smtp example", "from": FROM}, "'host' must be"),
])
def test_settings_are_checked(tmp_path: Path, settings: dict[str, Any], says: str) -> None:
    with pytest.raises(SettingsError, match=f"plugin_settings.smtp: .*{says}"):
        read_settings(settings, Config(base_dir=str(tmp_path)))


def test_the_defaults(tmp_path: Path) -> None:
    cfg = Config(base_dir=str(tmp_path), outbox_dir="var/out")
    plain = read_settings({"host": "smtp.example.com", "from": "orders@Shop.Example.com"}, cfg)
    assert (plain.port, plain.timeout, plain.helo, plain.domain) == (25, 10.0, "shop.example.com", "shop.example.com")
    assert plain.journal == tmp_path / "var" / "out" / "smtp-accepted.log"
    assert read_settings({"host": "h", "from": FROM, "starttls": True}, cfg).port == 587
    assert read_settings({"host": "h", "from": FROM, "ssl": True}, cfg).port == 465
    assert read_settings({"host": "h", "from": FROM, "journal": False}, cfg).journal is None

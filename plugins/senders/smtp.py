"""The e-mail sender over SMTP (``smtp``, medium ``email``): docs/senders.md.

Each notification is one message (email.message.EmailMessage, UTF-8 subject
and body) handed to the configured relay with the standard library's smtplib,
on a connection opened for the outbox batch and closed by ``flush()`` once the
batch is sent; a kept connection the server closed meanwhile is opened again.

Its ``Message-ID`` is made from the outbox message id and the order number,
``<oms-<id>.<order>@<from-domain>>``, so a message sent again (a worker died
before recording it as sent) is recognisably the same message; the journal
(journal.py) keeps the messages the relay accepted, so only the one in flight
when a worker died can be sent twice.

What the relay answers decides what the outbox does with the message:

- 250 to the message: sent;
- 5xx to the recipient or to the message (550 no such user, 554 refused):
  refused for good, ``MessageRefused``, dead at once with the server's words;
  a recipient that is no e-mail address is refused the same way, before any
  connection;
- 4xx anywhere (421 closing, 451 try later), a refused sender (``MAIL FROM``:
  our configuration, not the message), a failed login, a connection refused,
  dropped or timed out: raised, and the outbox tries the message again later.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from oms_engine import MessageRefused, Notification, SettingsError, check_keys, hookimpl

from .journal import AcceptedJournal

NAME = "smtp"
MEDIUM = "email"
JOURNAL = "smtp-accepted.log"        # in outbox_dir, unless the settings say where
DEFAULT_TIMEOUT = 10.0
SETTINGS = ("host", "port", "from", "username", "password_env", "starttls", "ssl", "timeout", "helo", "ca_file",
            "journal")

# addr-spec with a dot-atom local part and a DNS domain (no quoted local parts, no address literals): what a
# shop's customer record holds, and nothing that could carry a second header or command.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_LOCAL})@((?:{_LABEL}\.)+{_LABEL})")


class SmtpError(RuntimeError):
    """A message the relay did not take this time: the outbox tries it again."""


def email_address(value: Any) -> str | None:
    """``value`` as an e-mail address (surrounding blanks removed), or None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    m = _ADDRESS.fullmatch(text)
    if m is None or len(text) > 254 or len(m.group(1)) > 64:
        return None
    return text


def message_id(outbox_id: int, order_number: str | None, domain: str) -> str:
    """The Message-ID of outbox message ``outbox_id``: the same every time it is sent."""
    order = re.sub(r"[^A-Za-z0-9._-]", "", order_number or "")
    return f"<oms-{outbox_id}.{order}@{domain}>" if order else f"<oms-{outbox_id}@{domain}>"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str                 # the envelope sender: the address of ``from``
    from_header: str            # ``from`` as written, display name included
    domain: str                 # of the sender: Message-IDs and, by default, EHLO
    username: str
    password_env: str
    starttls: bool
    ssl: bool
    timeout: float
    helo: str
    ca_file: str
    journal: Path | None


def read_settings(raw: Any, config: Any) -> SmtpSettings:
    """``plugin_settings.smtp``, checked; SettingsError saying what is wrong. The password is not read here:
    it is read from its environment variable when a connection logs in."""
    where = f"plugin_settings.{NAME}"
    if raw is None:
        raise SettingsError(f"{where} is missing: the sender '{NAME}' needs at least host and from "
                            "(docs/senders.md)")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where} must be a mapping, got {type(raw).__name__}")
    try:
        check_keys("e-mail", NAME, raw, SETTINGS, ("host", "from"), thing="sender")
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None

    def text(key: str, default: str = "") -> str:
        value = raw.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise SettingsError(f"{where}: '{key}' must be text, got {value!r}")
        return value.strip()

    def flag(key: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value

    host = text("host")
    if not host or any(c.isspace() for c in host):
        raise SettingsError(f"{where}: 'host' must be the relay's host name or address, got {raw.get('host')!r}")
    use_ssl, starttls = flag("ssl"), flag("starttls")
    if use_ssl and starttls:
        raise SettingsError(f"{where}: 'ssl' (TLS from the start, port 465) and 'starttls' (TLS after connecting, "
                            "port 587) exclude each other: choose one")
    port = raw.get("port", 465 if use_ssl else 587 if starttls else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise SettingsError(f"{where}: 'port' must be a port number, got {port!r}")
    from_header = text("from")
    display, sender = parseaddr(from_header)
    if email_address(sender) is None or "\n" in from_header or "\r" in from_header:
        raise SettingsError(f"{where}: 'from' must be an e-mail address, optionally with a name "
                            f"(\"Shop <orders@shop.example.com>\"), got {raw.get('from')!r}")
    username, password_env = text("username"), text("password_env")
    if bool(username) != bool(password_env):
        raise SettingsError(f"{where}: 'username' and 'password_env' (the environment variable holding the "
                            "password) go together")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise SettingsError(f"{where}: 'timeout' must be a number of seconds above 0 (at most 600), "
                            f"got {timeout!r}")
    journal_value = raw.get("journal")
    if journal_value is False or journal_value == "":
        journal = None
    elif journal_value is None:
        journal = config.path(config.outbox_dir) / JOURNAL
    elif isinstance(journal_value, str):
        journal = config.path(journal_value)
    else:
        raise SettingsError(f"{where}: 'journal' must be a file path, or false for none, got {journal_value!r}")
    domain = sender.rpartition("@")[2].lower()
    return SmtpSettings(host=host, port=port, sender=sender, from_header=from_header if display else sender,
                        domain=domain, username=username, password_env=password_env, starttls=starttls,
                        ssl=use_ssl, timeout=float(timeout), helo=text("helo") or domain,
                        ca_file=str(config.path(text("ca_file"))) if text("ca_file") else "", journal=journal)


class SmtpSender:
    name = NAME
    medium = MEDIUM

    def __init__(self, settings: SmtpSettings | None) -> None:
        # None: plugin_settings.smtp not given and the sender not chosen; a message sent through it fails
        # (and is retried) saying so.
        self.settings = settings
        self.journal = AcceptedJournal(settings.journal) if settings and settings.journal else None
        self._lock = threading.Lock()
        self._conn: smtplib.SMTP | None = None

    # -- the contract ------------------------------------------------------------------------------------
    def send(self, notification: Notification) -> None:
        cfg = self.settings
        if cfg is None:
            raise SettingsError(f"plugin_settings.{NAME} is missing: the sender '{NAME}' needs at least host and "
                                "from (docs/senders.md)")
        to = email_address(notification.recipient)
        if to is None:
            raise MessageRefused(f"{NAME}: message {notification.id}: the recipient {notification.recipient!r} is "
                                 "not an e-mail address")
        msg = compose(cfg, notification, to)
        mid = str(msg["Message-ID"])
        digest = hashlib.sha256("\0".join((to, notification.subject, notification.body)).encode()).hexdigest()[:32]
        with self._lock:
            if self.journal is not None and self.journal.taken(mid, digest):
                return      # the relay took it before; the worker that sent it died before recording it
            self._transfer(cfg, to, msg.as_bytes(), f"{NAME}: message {notification.id} {mid} to {to}")
            if self.journal is not None:
                self.journal.record(mid, digest)

    def flush(self) -> None:
        """End the batch: say goodbye to the relay. Every message is already accepted, so a relay that
        cannot take the QUIT costs nothing but the connection."""
        with self._lock:
            self._drop(polite=True)
            if self.journal is not None:
                self.journal.sync()

    # -- the conversation ----------------------------------------------------------------------------------
    def _transfer(self, cfg: SmtpSettings, to: str, raw: bytes, what: str) -> None:
        conn, code, reply = self._mail_from(cfg, what)
        if code != 250:
            self._after_refusal(code)
            # A refused sender is the configuration's fault (or the relay's), not this message's: tried again.
            raise SmtpError(f"{what}: the relay did not take MAIL FROM:<{cfg.sender}>: {_reply(code, reply)}")
        try:
            code, reply = conn.rcpt(to)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise SmtpError(f"{what}: connection lost at RCPT TO: {_why(exc)}") from None
        if code not in (250, 251):
            self._after_refusal(code)
            if 500 <= code < 600:
                raise MessageRefused(f"{what}: the relay refused the recipient: {_reply(code, reply)}")
            raise SmtpError(f"{what}: the relay deferred the recipient: {_reply(code, reply)}")
        try:
            code, reply = conn.data(raw)
        except smtplib.SMTPDataError as exc:      # DATA itself refused (no 354): the message never went
            code, reply = exc.smtp_code, exc.smtp_error
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise SmtpError(f"{what}: connection lost while the message went, before the relay answered: "
                            f"{_why(exc)} (it may have it: sent again with the same Message-ID)") from None
        if code != 250:
            self._after_refusal(code)
            if 500 <= code < 600:
                raise MessageRefused(f"{what}: the relay refused the message: {_reply(code, reply)}")
            raise SmtpError(f"{what}: the relay deferred the message: {_reply(code, reply)}")

    def _mail_from(self, cfg: SmtpSettings, what: str) -> tuple[smtplib.SMTP, int, bytes]:
        """MAIL FROM on the kept connection, or on a new one if the relay closed the kept one in the meantime
        (idle too long: dropped, or a 421): nothing of this message went on it, so that is no failure."""
        if self._conn is not None:
            try:
                code, reply = self._conn.mail(cfg.sender)
            except (smtplib.SMTPServerDisconnected, OSError):
                code, reply = 421, b""
            if code != 421:
                return self._conn, code, reply
            self._drop()
        conn = self._connect(cfg, what)
        try:
            code, reply = conn.mail(cfg.sender)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise SmtpError(f"{what}: connection lost before MAIL FROM was answered: {_why(exc)}") from None
        return conn, code, reply

    def _connect(self, cfg: SmtpSettings, what: str) -> smtplib.SMTP:
        context = ssl.create_default_context(cafile=cfg.ca_file or None) if cfg.ssl or cfg.starttls else None
        where = f"{cfg.host}:{cfg.port}"
        conn: smtplib.SMTP | None = None
        try:
            if cfg.ssl:
                conn = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout,
                                        context=context)
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout)
            conn.ehlo()
            if cfg.starttls:
                conn.starttls(context=context)
                conn.ehlo()
            if cfg.username:
                password = os.environ.get(cfg.password_env, "")
                if not password:
                    raise SettingsError(f"the environment variable {cfg.password_env} (plugin_settings.{NAME}."
                                        "password_env) is not set")
                conn.login(cfg.username, password)
        except (smtplib.SMTPException, OSError, SettingsError) as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            raise SmtpError(f"{what}: could not open a session with {where}: {_why(exc)}") from None
        self._conn = conn
        return conn

    def _after_refusal(self, code: int) -> None:
        """Leave the connection ready for the next message: RSET the transaction, or drop a connection the
        relay is closing (421) or that cannot be reset."""
        if code == 421 or self._conn is None:
            self._drop()
            return
        try:
            self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self, polite: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if polite:
                conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()


def compose(cfg: SmtpSettings, n: Notification, to: str) -> EmailMessage:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = cfg.from_header
    msg["To"] = to
    subject = " ".join(n.subject.split())    # a rendered subject is one header line, whatever the template did
    if subject:
        msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(n.id, n.order_number, cfg.domain)
    msg["Auto-Submitted"] = "auto-generated"     # RFC 3834: no auto-replies to it, please
    # ASCII goes as it is; other text in base64, which every relay carries (no 8BITMIME needed).
    msg.set_content(n.body, charset="utf-8", cte=None if n.body.isascii() else "base64")
    return msg


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"[:500]


def _why(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    return f"{type(exc).__name__}: {exc}"[:500]


@hookimpl(trylast=True)
def oms_register_senders(register: Any, config: Any) -> None:
    raw = config.plugin_settings.get(NAME)
    chosen = config.senders.get(MEDIUM) == NAME
    # Checked at start when given or chosen: a typo stops the start, not every e-mail later.
    register(SmtpSender(read_settings(raw, config) if raw is not None or chosen else None))

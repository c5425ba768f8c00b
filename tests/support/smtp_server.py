"""An SMTP relay for the tests: a real SMTP server (aiosmtpd) on a free port of 127.0.0.1, in a thread of the test
process, keeping every message it accepts, as a relay would.

It answers as the test says: a 4xx or 5xx at MAIL, RCPT or DATA for the next messages (a 421 closes the
connection after it, as real servers do), the connection dropped without an answer (at DATA, with the message
kept or not: an answer lost on the way), a recipient refused for good, the answer to each message delayed (the
message is kept when it arrives, so a client killed while it waits has delivered it), a login required, TLS.
Written apart from the sender, so a mistake in the sender is not mirrored here::

    with SmtpServer() as smtp:
        smtp.fail(2, at="DATA", code=421)       # the next two messages: 421, connection closed
        smtp.refuse("c-bad@example.com")        # 550 for that recipient, every time
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, Self, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Mail:
    """One message the relay accepted."""

    mail_from: str
    to: list[str]
    raw: bytes
    connection: int                 # which connection it came on (1, 2, ...)
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.message = cast(EmailMessage, message_from_bytes(self.raw, policy=default_policy))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def body(self) -> str:
        """The text, its line ends as the sender's template had them (a message travels with CRLF)."""
        return cast(str, self.message.get_content()).replace("\r\n", "\n")

    @property
    def outbox_id(self) -> int:
        """The outbox message id the OMS put in the Message-ID (``<oms-<id>.<order>@<domain>>``)."""
        return int(self.message_id.removeprefix("<oms-").split("@")[0].split(".")[0])


@dataclass
class _Trouble:
    at: str                         # MAIL, RCPT, DATA
    code: int | None                # None: drop the connection without an answer
    text: str = ""
    keep: bool = False              # DATA dropped after the message was kept


class _Controller(Controller):
    def _trigger_server(self) -> None:
        # Bound to port 0: learn the port the system chose before the controller connects to it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self, *, login: tuple[str, str] | None = None, starttls: ssl.SSLContext | None = None,
                 implicit_tls: ssl.SSLContext | None = None) -> None:
        """``login``: (user, password) a client must log in with; ``starttls``: the server's TLS context, offered
        with STARTTLS (and then required); ``implicit_tls``: TLS from the first byte (port 465 style)."""
        self.login = login
        self.delay = 0.0
        self.mails: list[Mail] = []
        self.refused: dict[str, tuple[int, str]] = {}
        self.logins: list[tuple[str, bool]] = []
        self.connections = 0
        self.in_flight = 0              # messages kept, their answer not yet sent
        self._troubles: list[_Trouble] = []
        self._lock = threading.Lock()
        self._running = False
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0, "ready_timeout": 10.0}
        if login is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=starttls is not None or
                          implicit_tls is not None)
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if implicit_tls is not None:
            kwargs.update(ssl_context=implicit_tls)
        self._controller = _Controller(_Handler(self), **kwargs)

    # -- how it answers -------------------------------------------------------------------------------------
    def fail(self, times: int = 1, *, at: str = "DATA", code: int = 421, text: str = "") -> None:
        """The next ``times`` messages get ``code`` at ``at`` (MAIL, RCPT or DATA) and nothing is kept."""
        default = "4.3.2 Service shutting down" if code == 421 else "4.3.0 Try again later" if code < 500 \
            else "5.7.1 Refused"
        with self._lock:
            self._troubles += [_Trouble(at, code, text or default) for _ in range(times)]

    def drop(self, times: int = 1, *, at: str = "DATA", keep: bool = False) -> None:
        """The next ``times`` messages: the connection closes at ``at`` without an answer; at DATA with
        ``keep`` the message is kept first (delivered, the answer lost)."""
        with self._lock:
            self._troubles += [_Trouble(at, None, keep=keep) for _ in range(times)]

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 No such user here") -> None:
        """Every message to ``address`` is refused at RCPT with ``code``."""
        with self._lock:
            self.refused[address.lower()] = (code, text)

    # -- reading what came ------------------------------------------------------------------------------------
    def received(self) -> list[Mail]:
        with self._lock:
            return list(self.mails)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Mail]:
        """The messages, once there are at least ``count`` (AssertionError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.received()
            if len(mails) >= count:
                return mails
            time.sleep(0.01)
        raise AssertionError(f"the relay has {len(self.received())} messages after {timeout} s, not {count}")

    # -- running ------------------------------------------------------------------------------------------------
    def start(self) -> Self:
        self._controller.start()
        self._running = True
        return self

    def close(self) -> None:
        """Stop it (again: nothing)."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    # -- the server side ------------------------------------------------------------------------------------
    def _trouble(self, at: str) -> _Trouble | None:
        with self._lock:
            if self._troubles and self._troubles[0].at == at:
                return self._troubles.pop(0)
        return None

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = False
        user = ""
        if isinstance(auth_data, LoginPassword) and self.login is not None:
            user = auth_data.login.decode()
            ok = (user, auth_data.password.decode()) == self.login
        with self._lock:
            self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False)     # handled=False: aiosmtpd answers 535 to a failure


class _Handler:
    def __init__(self, relay: SmtpServer) -> None:
        self.relay = relay

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if not getattr(session, "counted", False):
            session.counted = True      # type: ignore[attr-defined]  # EHLO again after STARTTLS: one connection
            with self.relay._lock:
                self.relay.connections += 1
                session.number = self.relay.connections  # type: ignore[attr-defined]
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        answer = await self._troubled(server, "MAIL")
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        answer = await self._troubled(server, "RCPT")
        if answer:
            return answer
        with self.relay._lock:
            refused = self.relay.refused.get(address.lower())
        if refused is not None:
            return f"{refused[0]} {refused[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        trouble = self.relay._trouble("DATA")
        if trouble is not None and trouble.code is not None:
            return await self._answer_trouble(server, trouble)
        if trouble is None or trouble.keep:
            mail = Mail(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.original_content or b""),
                        getattr(session, "number", 0))
            with self.relay._lock:
                self.relay.mails.append(mail)
        if trouble is not None:     # dropped, kept or not
            assert server.transport is not None
            server.transport.close()
            return "250 OK"         # never reaches the client: the connection is closed
        if self.relay.delay:
            with self.relay._lock:
                self.relay.in_flight += 1
            try:
                await asyncio.sleep(self.relay.delay)
            finally:
                with self.relay._lock:
                    self.relay.in_flight -= 1
        return "250 2.0.0 Message accepted for delivery"

    async def _troubled(self, server: SMTP, at: str) -> str | None:
        trouble = self.relay._trouble(at)
        if trouble is None:
            return None
        if trouble.code is None:
            assert server.transport is not None
            server.transport.close()
            return "250 OK"         # never reaches the client
        return await self._answer_trouble(server, trouble)

    async def _answer_trouble(self, server: SMTP, trouble: _Trouble) -> str:
        answer = f"{trouble.code} {trouble.text}"
        if trouble.code == 421:
            # A real server closes the connection after a 421: say it, then hang up.
            await server.push(answer)
            assert server.transport is not None
            server.transport.close()
        return answer


def self_signed(directory: Any) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 with a fresh self-signed certificate, and the certificate's file (the
    CA a client trusts). Made with the openssl command."""
    import subprocess
    from pathlib import Path
    d = Path(directory)
    cert, key = d / "relay-cert.pem", d / "relay-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, str(cert)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    started: list[SmtpServer] = []

    def start(**kw: Any) -> SmtpServer:
        started.append(SmtpServer(**kw).start())
        return started[-1]

    yield start
    for relay in started:
        relay.close()

"""A system outside the OMS played on loopback (tests/support/wms_standin.py, carrier_standin.py): a threaded HTTP
server on a free port of 127.0.0.1 that keeps every request it gets, and the OMS called back over real HTTP.

A subclass decides each answer in ``_decide``; the server answers, after the wait it asked for, and keeps what
came and what went in ``received``. ``close()`` (or leaving the ``with`` block) stops it, and a handler waiting
to answer slowly answers at once.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``<timestamp>.`` and the body (the OMS's and its peers' signature)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_by(secret: str, headers: Mapping[str, str], body: bytes, *, check_freshness: bool = True,
              timestamp: str = "x-oms-timestamp", signature: str = "x-oms-signature") -> bool:
    """Whether the request (headers by lower-case name) is signed with ``secret``, within five minutes of now."""
    ts = headers.get(timestamp, "")
    given = headers.get(signature, "")
    fresh = ts.isdigit() and (not check_freshness or abs(time.time() - int(ts)) <= 300)
    return fresh and hmac.compare_digest(sign(secret, ts, body).encode(), given.encode())


@dataclass
class Received:
    """One request, as it arrived, and what the stand-in answered."""

    method: str
    path: str
    headers: dict[str, str]         # names in lower case
    body: bytes
    signed: bool = False
    key: str = ""
    type: str = ""
    data: Any = None
    outcome: str = ""               # what the stand-in made of it: created, duplicate, failed, unsigned...
    status: int = 0
    answer: bytes = b""


@dataclass
class Sent:
    """A callback sent to the OMS, and the OMS's answer."""

    body: bytes
    headers: dict[str, str]
    status: int
    answer: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.answer)


def post(url: str, path: str, body: bytes, headers: Mapping[str, str]) -> Sent:
    """``POST`` the bytes to ``path`` on the server at ``url``."""
    target = urlsplit(url)
    assert target.hostname, f"no server to call at {url!r}"
    conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        return Sent(body, dict(headers), resp.status, resp.read())
    finally:
        conn.close()


class LoopbackServer:
    name = "standin"

    def __init__(self, *, secret: str, oms_url: str | None) -> None:
        # secret: shared with the OMS, for what it receives and what it sends; oms_url: where to call back.
        self.secret, self.oms_url = secret, oms_url
        self.received: list[Received] = []
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0      # any free port at first; started again after close(), the same one (a system back up)

    # -- the answers (subclasses) --------------------------------------------------------------------------
    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        """(status, body, content type, seconds to wait before answering) for the request; set ``rec.outcome``."""
        raise NotImplementedError

    # -- running --------------------------------------------------------------------------------------
    def start(self) -> Self:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin._handle(self)

            def do_GET(self) -> None:   # nothing to fetch here: an external entity must never get this far
                standin._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._stop.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._port = int(server.server_address[1])
        server.daemon_threads = False     # server_close() joins every handler thread
        server.block_on_close = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-{server.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()                  # a handler waiting to answer slowly answers now
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "the stand-in is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call_back(self, path: str, body: bytes, *, content_type: str, signed_as: str, oms_url: str | None,
                   secret: str | None, timestamp: int | None, headers: Mapping[str, str] | None,
                   signed: bool) -> Sent:
        """Send ``body`` to ``path`` at the OMS, signed with the secret in the headers ``<signed_as>-Timestamp``
        and ``<signed_as>-Signature`` (unless ``signed`` is false), with any ``headers`` added over them."""
        target = oms_url or self.oms_url
        assert target, "the stand-in needs oms_url to call back"
        ts = str(int(time.time()) if timestamp is None else timestamp)
        hdrs = {"Content-Type": content_type}
        if signed:
            hdrs.update({f"{signed_as}-Timestamp": ts, f"{signed_as}-Signature": sign(secret or self.secret, ts, body)})
        hdrs.update(headers or {})
        sent = post(target, path, body, hdrs)
        with self._lock:
            self.sent.append(sent)
        return sent

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Received(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.received.append(rec)
        status, answer, ctype, wait = self._decide(rec)
        rec.status, rec.answer = status, answer
        if wait:
            self._stop.wait(wait)
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(answer)))
            if rec.outcome == "duplicate":
                h.send_header("Idempotent-Replayed", "true")
            h.end_headers()
            h.wfile.write(answer)
        except OSError:
            pass    # the OMS gave up waiting (a timeout): what it sent stays taken, as at a real system


S = TypeVar("S", bound=LoopbackServer)


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def started(cls: type[S]) -> Iterator[Callable[..., S]]:
    """A fixture's body: a function starting stand-ins of ``cls`` (its keyword arguments), each closed after the
    test (``yield from started(TaxStandIn)``)."""
    running: list[S] = []

    def start(**kw: Any) -> S:
        running.append(cls(**kw).start())
        return running[-1]

    yield start
    for standin in running:
        standin.close()

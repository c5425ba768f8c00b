"""Notification gateways for the tests: a small HTTP server on loopback that plays an SMS gateway (``POST /sms``), an
app-message gateway in the style of WeChat's template messages (``POST /app``) and a shop's own webhook receiver
(``POST /hook``), as docs/senders.md describes them.

It checks the OMS's signature on every request (401 otherwise) and delivers each message once per idempotency key
(the ``Idempotency-Key`` header, which must also be the body's ``id``): a repeat is answered as a duplicate and
delivers nothing. ``delivered`` is what reached the phone, the app or the shop's system, in order. It answers as
the test says: at once (the default), slowly (delivered, then the answer waits), with a status and nothing
delivered (503, 429, 400...), with a 5xx after delivering (the answer lost on the way), refusing a recipient for
good, or (the app) with a WeChat ``errcode`` in a 200. Written apart from the senders, so a mistake in their format
is not mirrored here::

    with GatewayStandIn(secret="s3cret") as gw:
        gw.fail(2)                              # the next two requests get 503, nothing delivered
        gw.refuse("13900000000", 400, "number not in service")
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from .loopback import LoopbackServer, Received, as_json, signed_by, started

CONTENT_TYPE = "application/json"
# path -> the fields a request's body must have (besides "id"), and what it is.
SHAPES = {"/sms": ({"to", "text"}, "sms"), "/app": ({"touser", "template_id", "data"}, "app"),
          "/hook": ({"type", "order_number", "medium", "recipient", "template", "subject", "body"}, "webhook")}


@dataclass
class Delivered:
    key: str
    kind: str                       # sms, app, webhook
    to: str
    data: dict[str, Any]            # the request's body


class GatewayStandIn(LoopbackServer):
    name = "gateway-standin"

    def __init__(self, *, secret: str) -> None:
        super().__init__(secret=secret, oms_url=None)
        self.delay = 0.0
        self.delivered: dict[str, Delivered] = {}     # by idempotency key, in the order delivered
        self.duplicate_status = 200                   # how a repeated key is answered (200 or 409)
        self._fail: list[int] = []                    # statuses for the next requests, nothing delivered
        self._lose = 0                                # deliver, then answer 500
        self._refused: dict[str, tuple[int, str]] = {}
        self._errcodes: dict[str, tuple[int, str]] = {}

    # -- how it answers ---------------------------------------------------------------------------------
    def fail(self, times: int = 1, *, status: int = 503) -> None:
        """The next ``times`` requests get ``status`` and nothing is delivered."""
        with self._lock:
            self._fail += [status] * times

    def lose_answers(self, times: int = 1) -> None:
        """The next ``times`` messages are delivered, and answered 500 as if the answer were lost on the way."""
        with self._lock:
            self._lose += times

    def refuse(self, recipient: str, status: int = 400, reason: str = "recipient refused") -> None:
        """Every message to ``recipient`` is answered ``status`` with the reason, nothing delivered."""
        with self._lock:
            self._refused[recipient] = (status, reason)

    def errcode(self, recipient: str, code: int, message: str) -> None:
        """The app gateway answers messages to ``recipient`` 200 with this errcode (nothing delivered)."""
        with self._lock:
            self._errcodes[recipient] = (code, message)

    def deliveries(self, kind: str | None = None) -> list[Delivered]:
        with self._lock:
            return [d for d in self.delivered.values() if kind is None or d.kind == kind]

    def outcomes(self) -> list[tuple[str, str]]:
        """(key, outcome) of every request so far."""
        with self._lock:
            return [(r.key, r.outcome) for r in self.received]

    # -- the server side ---------------------------------------------------------------------------------
    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        path = urlsplit(rec.path).path
        if rec.method != "POST" or path not in SHAPES:
            rec.outcome = "unknown path"
            return 404, as_json({"status": "error", "reason": f"no {rec.method} {rec.path}"}), CONTENT_TYPE, 0
        fields, kind = SHAPES[path]
        rec.signed = signed_by(self.secret, rec.headers, rec.body)
        if not rec.signed:
            rec.outcome = "unsigned"
            return 401, as_json({"status": "error", "reason": "bad signature"}), CONTENT_TYPE, 0
        rec.key = rec.headers.get("idempotency-key", "")
        try:
            rec.data = json.loads(rec.body)
            missing = fields - set(rec.data)
        except (ValueError, TypeError) as exc:
            rec.outcome = "unreadable"
            return 400, as_json({"status": "error", "reason": f"unreadable request: {exc}"}), CONTENT_TYPE, 0
        if missing or not rec.key or rec.data.get("id") != rec.key:
            rec.outcome = "malformed"
            return 400, as_json({"status": "error", "reason": f"missing {sorted(missing)} or the Idempotency-Key is "
                                                            "not the body's id"}), CONTENT_TYPE, 0
        to = str(rec.data.get("to") or rec.data.get("touser") or rec.data.get("recipient") or "")
        if kind == "sms" and not re.fullmatch(r"\+?[0-9]{6,15}", to):
            rec.outcome = "malformed"
            return 400, as_json({"status": "error", "reason": f"not a phone number: {to!r}"}), CONTENT_TYPE, 0
        with self._lock:
            if rec.key in self.delivered:
                rec.outcome = "duplicate"
                return self.duplicate_status, as_json({"id": rec.key, "status": "duplicate"}), CONTENT_TYPE, self.delay
            if self._fail:
                rec.outcome = "failed"
                return self._fail.pop(0), as_json({"status": "error", "reason": "gateway busy"}), CONTENT_TYPE, \
                    self.delay
            refused = self._refused.get(to)
            if refused is not None:
                rec.outcome = "refused"
                return refused[0], as_json({"id": rec.key, "status": "refused", "reason": refused[1]}), CONTENT_TYPE, \
                    self.delay
            errcode = self._errcodes.get(to) if kind == "app" else None
            if errcode is not None:
                rec.outcome = f"errcode {errcode[0]}"
                return 200, as_json({"errcode": errcode[0], "errmsg": errcode[1]}), CONTENT_TYPE, self.delay
            self.delivered[rec.key] = Delivered(rec.key, kind, to, rec.data)
            if self._lose:
                self._lose -= 1
                rec.outcome = "delivered, answer lost"
                return 500, as_json({"status": "error", "reason": "upstream timeout"}), CONTENT_TYPE, self.delay
        rec.outcome = "delivered"
        answer = {"errcode": 0, "errmsg": "ok", "msgid": len(self.delivered)} if kind == "app" else \
            {"id": rec.key, "status": "accepted"}
        return 200, as_json(answer), CONTENT_TYPE, self.delay


@pytest.fixture
def gateway_standin() -> Iterator[Callable[..., GatewayStandIn]]:
    yield from started(GatewayStandIn)

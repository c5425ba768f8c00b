"""A payment provider for the tests: a small HTTP server on loopback that speaks the payment_json refund API
(docs/connectors.md, "payment_json") as a real provider would.

It checks the OMS's signature on every request (401 otherwise) and pays each refund once per idempotency key: a
repeat gets the answer the first one got, and pays nothing. ``paid`` is its own ledger of what it paid back.
It answers as the test says: paid at once (the default), pending (it calls back later: :meth:`call_back`),
refused with a reason, slowly, with a 5xx and nothing kept, or with a 5xx after it paid (the answer lost on the
way, the case that tempts a client to pay twice). Written apart from the connector, so a mistake in the
connector's format is not mirrored here::

    with PaymentStandIn(secret="s3cret") as pay:
        pay.lose_answers(1)             # the next refund is paid, and its answer lost
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from .loopback import LoopbackServer, Received, as_json, signed_by, started

CONTENT_TYPE = "application/json"
REFUNDS = "/refunds"


@dataclass
class Paid:
    key: str
    refund: str
    amount: str
    currency: str
    reference: str
    answer: bytes
    status: int


class PaymentStandIn(LoopbackServer):
    name = "payment-standin"

    def __init__(self, *, secret: str, oms_url: str | None = None) -> None:
        super().__init__(secret=secret, oms_url=oms_url)
        self.delay = 0.0
        self.mode = "refunded"                      # refunded | pending | refused
        self.reason = "the card account is closed"
        self.paid: dict[str, Paid] = {}             # by idempotency key, in the order paid
        self._fail = 0                              # answer 500, keep nothing
        self._lose = 0                              # pay, then answer 500

    # -- how it answers ---------------------------------------------------------------------------------
    def fail(self, times: int = 1) -> None:
        with self._lock:
            self._fail += times

    def lose_answers(self, times: int = 1) -> None:
        """The next ``times`` refunds are paid, and answered 500 as if the answer were lost on the way."""
        with self._lock:
            self._lose += times

    # -- the server side ---------------------------------------------------------------------------------
    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        if rec.method != "POST" or urlsplit(rec.path).path != REFUNDS:
            rec.outcome = "unknown path"
            return 404, as_json({"status": "error", "reason": f"no {rec.method} {rec.path}"}), CONTENT_TYPE, 0
        rec.signed = signed_by(self.secret, rec.headers, rec.body)
        if not rec.signed:
            rec.outcome = "unsigned"
            return 401, as_json({"status": "error", "reason": "bad signature"}), CONTENT_TYPE, 0
        rec.key = rec.headers.get("idempotency-key", "")
        try:
            rec.data = json.loads(rec.body)
            data = rec.data["data"]
            refund, amount, currency = str(data["refund"]), str(data["amount"]), str(data["currency"])
        except (ValueError, KeyError, TypeError) as exc:
            rec.outcome = "unreadable"
            return 400, as_json({"status": "error", "reason": f"unreadable request: {exc}"}), CONTENT_TYPE, 0
        if not rec.key or rec.data.get("id") != rec.key:
            rec.outcome = "no key"
            return 400, as_json({"status": "error", "reason": "the Idempotency-Key is not the id"}), CONTENT_TYPE, 0
        with self._lock:
            done = self.paid.get(rec.key)
            if done is not None:
                rec.outcome = "duplicate"
                return done.status, done.answer, CONTENT_TYPE, self.delay
            if self._fail:
                self._fail -= 1
                rec.outcome = "failed"
                return 500, as_json({"status": "error", "reason": "internal error"}), CONTENT_TYPE, self.delay
            if self.mode == "refused":
                rec.outcome = "refused"
                return 422, as_json({"status": "refused", "reason": self.reason}), CONTENT_TYPE, self.delay
            reference = f"RF-{len(self.paid) + 1:05d}"
            status, answer = 201, as_json({"status": self.mode, "reference": reference})
            self.paid[rec.key] = Paid(rec.key, refund, amount, currency, reference, answer, status)
            if self._lose:
                self._lose -= 1
                rec.outcome = "paid, answer lost"
                return 500, as_json({"status": "error", "reason": "gateway timeout"}), CONTENT_TYPE, self.delay
        rec.outcome = "paid" if self.mode == "refunded" else "pending"
        return status, answer, CONTENT_TYPE, self.delay

    def call_back(self, order_number: str, refund: str, *, token: str, status: str = "refunded") -> Any:
        """Tell the OMS (``POST /api/callbacks/payment_json``, with an integration token) how a pending refund
        ended."""
        paid = next(p for p in self.paid.values() if p.refund == refund)
        body = as_json({"kind": "refund", "order_number": order_number, "refund": refund, "status": status,
                      "provider_ref": paid.reference})
        return self._call_back("/api/callbacks/payment_json", body, content_type=CONTENT_TYPE, signed_as="X-Pay",
                               oms_url=None, secret=None, timestamp=None,
                               headers={"Authorization": f"Bearer {token}"}, signed=False)


@pytest.fixture
def payment_standin() -> Iterator[Callable[..., PaymentStandIn]]:
    yield from started(PaymentStandIn)

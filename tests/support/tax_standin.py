"""A tax platform for the tests: a small HTTP server on loopback that speaks the tax_json e-invoice API
(docs/connectors.md, "tax_json") as a real platform would.

It checks the OMS's signature on every request (401 otherwise) and issues each invoice once per idempotency key
(the invoice number, also the body's ``id``): a repeat gets the answer the first one got, and issues nothing.
``issued`` is its own register of the official invoices it made. It answers as the test says: issued at once
(the default), refused with a reason (4xx), slowly, with a 5xx and nothing kept, or with a 5xx after it issued
(the answer lost on the way). A refusal keeps nothing either, so the same invoice sent again once the cause is
sorted out is issued. Written apart from the connector, so a mistake in the connector's format is not mirrored
here::

    with TaxStandIn(secret="s3cret") as tax:
        tax.fail(2)                      # the next two submissions get 503, nothing issued
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from .loopback import LoopbackServer, Received, as_json, signed_by, started

CONTENT_TYPE = "application/json"
EINVOICES = "/einvoices"


@dataclass
class Issued:
    key: str
    invoice: str
    kind: str
    total: str
    official_no: str
    verification: str
    answer: bytes
    refers_to: str | None = None


class TaxStandIn(LoopbackServer):
    name = "tax-standin"

    def __init__(self, *, secret: str, oms_url: str | None = None) -> None:
        super().__init__(secret=secret, oms_url=oms_url)
        self.delay = 0.0
        self.mode = "issue"                         # issue | refuse
        self.reason = "the buyer's tax registration number is not valid"
        self.issued: dict[str, Issued] = {}         # by idempotency key, in the order issued
        self._fail = 0                              # answer 5xx, keep nothing
        self._fail_status = 503
        self._lose = 0                              # issue, then answer 5xx

    # -- how it answers ---------------------------------------------------------------------------------
    def fail(self, times: int = 1, *, status: int = 503) -> None:
        """The next ``times`` submissions get ``status`` and nothing is issued (the platform is down)."""
        with self._lock:
            self._fail, self._fail_status = self._fail + times, status

    def lose_answers(self, times: int = 1) -> None:
        """The next ``times`` invoices are issued, and answered 500 as if the answer were lost on the way."""
        with self._lock:
            self._lose += times

    def outcomes(self) -> list[tuple[str, str]]:
        """(key, outcome) of every request so far."""
        with self._lock:
            return [(r.key, r.outcome) for r in self.received]

    # -- the server side ---------------------------------------------------------------------------------
    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        if rec.method != "POST" or urlsplit(rec.path).path != EINVOICES:
            rec.outcome = "unknown path"
            return 404, as_json({"status": "error", "reason": f"no {rec.method} {rec.path}"}), CONTENT_TYPE, 0
        rec.signed = signed_by(self.secret, rec.headers, rec.body)
        if not rec.signed:
            rec.outcome = "unsigned"
            return 401, as_json({"status": "error", "reason": "bad signature"}), CONTENT_TYPE, 0
        rec.key = rec.headers.get("idempotency-key", "")
        try:
            rec.data = json.loads(rec.body)
            rec.type = str(rec.data["type"])
            einvoice = rec.data["data"]
            invoice, total = str(einvoice["invoice_no"]), str(einvoice["total"])
            kind = "credit_note" if einvoice["type"] == "red" else "invoice"
        except (ValueError, KeyError, TypeError) as exc:
            rec.outcome = "unreadable"
            return 400, as_json({"status": "error", "reason": f"unreadable request: {exc}"}), CONTENT_TYPE, 0
        if not rec.key or rec.data.get("id") != rec.key or rec.key != invoice:
            rec.outcome = "no key"
            return 400, as_json({"status": "error", "reason": "the Idempotency-Key is not the invoice number"}), \
                CONTENT_TYPE, 0
        with self._lock:
            done = self.issued.get(rec.key)
            if done is not None:
                rec.outcome = "duplicate"
                return 200, done.answer, CONTENT_TYPE, self.delay
            if self._fail:
                self._fail -= 1
                rec.outcome = "failed"
                return self._fail_status, as_json({"status": "error", "reason": "maintenance window"}), CONTENT_TYPE, \
                    self.delay
            if self.mode == "refuse":
                rec.outcome = "refused"
                return 422, as_json({"id": rec.key, "status": "refused", "reason": self.reason}), CONTENT_TYPE, \
                    self.delay
            refers_to = einvoice.get("original_invoice_no")
            if kind == "credit_note" and not any(i.invoice == refers_to for i in self.issued.values()):
                rec.outcome = "refused"     # a red invoice reverses one the platform issued, or nothing
                return 422, as_json({"id": rec.key, "status": "refused",
                                   "reason": f"original invoice {refers_to} was not issued here"}), CONTENT_TYPE, \
                    self.delay
            official = f"2612{len(self.issued) + 1:016d}"
            verification = f"{(len(self.issued) + 1) * 7919 % 1_000_000:06d}"
            answer = as_json({"id": rec.key, "status": "accepted", "official_no": official,
                            "verification": verification})
            self.issued[rec.key] = Issued(rec.key, invoice, kind, total, official, verification,
                                          as_json({"id": rec.key, "status": "duplicate", "official_no": official,
                                                 "verification": verification}), refers_to)
            if self._lose:
                self._lose -= 1
                rec.outcome = "issued, answer lost"
                return 500, as_json({"status": "error", "reason": "gateway timeout"}), CONTENT_TYPE, self.delay
        rec.outcome = "issued"
        return 201, answer, CONTENT_TYPE, self.delay


@pytest.fixture
def tax_standin() -> Iterator[Callable[..., TaxStandIn]]:
    yield from started(TaxStandIn)

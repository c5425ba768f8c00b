"""A tax platform spoken to in JSON over HTTP (docs/connectors.md, "tax_json"): every invoice and credit note is
submitted to it as an e-invoice, and it answers with the official invoice it issued.

::

    POST {url}/einvoices   Idempotency-Key: 2612071234567890123-INV01
                           {"type": "einvoice", "id": "...-INV01", "kind": "invoice", "order_number": "...",
                            "format": "oms-einvoice/1", "data": <the e-invoice in that format>}
        -> 2xx {"status": "accepted", "official_no": "...", "verification": "..."}   issued
         | 2xx or 409 {"status": "duplicate", "official_no": ...}                   issued before, under this key
         | 4xx {"status": "refused", "reason": "..."}    the platform will not issue it (the message is dead)
         | anything else                                 the outbox tries again
    callback   {"kind": "einvoice", "order_number": ..., "invoice": "...-INV01", "status": "accepted" | "refused",
                "official_no": ..., "verification": ..., "reason": ...}, or a list of them
               (POST /api/callbacks/tax_json)

The idempotency key is the invoice number itself, the same for every attempt: a platform that issued an
invoice the OMS then saw fail (a timeout, a worker killed before it recorded the answer) answers the retry with
that invoice, so no invoice is issued twice. Requests are signed like a WMS's documents (``X-OMS-Timestamp``,
``X-OMS-Signature``) with the secret in the environment variable ``plugin_settings.tax_json.secret_env``;
request and answer are recorded byte for byte with the order (``oms order show``). The wire is wms_http.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import httpx

from oms_engine import CallbackEvent, MessageRefused, OutboundMessage, PluginContext, hookimpl

from .carrier_http import _dump, _object_or_none
from .sim_tax import einvoice_events
from .wms_http import Owner, WireError, http_client, post_signed, read_settings, reason_of

PLATFORM = Owner("tax platform", "plugin_settings.tax_json", "the tax platform", "https://tax.example.gov/api")
EINVOICES = "/einvoices"
EINVOICE = "tax.einvoice"
CONTENT_TYPE = "application/json"
ISSUED = ("accepted", "duplicate")


class TaxError(WireError):
    """A submission whose answer was neither an official invoice nor a refusal: the outbox tries again."""


class JsonTaxPlatform:
    kind = "tax"

    def __init__(self, name: str = "tax_json", settings: Mapping[str, Any] | None = None, *,
                 clock: Callable[[], float] = time.time, transport: httpx.BaseTransport | None = None) -> None:
        self.name, self.settings, self.clock, self.transport = name, dict(settings or {}), clock, transport

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        if message.topic != EINVOICE:
            raise ValueError(f"{self.name} does not send topic '{message.topic}' (it sends {EINVOICE})")
        p = message.payload
        cfg = read_settings(self.name, self.settings, "e-invoices", PLATFORM, path=EINVOICES)
        number = str(p["invoice"])
        what = f"{self.name}: {p.get('kind') or 'invoice'} {number} to {cfg.endpoint}"
        body = _dump({"type": "einvoice", "id": number, "kind": p.get("kind"), "order_number": p["order_number"],
                      "format": p.get("format"), "data": p["einvoice"]})
        with http_client(self.name, cfg, self.transport) as client:
            got = post_signed(client, cfg, cfg.endpoint, body, content_type=CONTENT_TYPE, correlation=number,
                              key=number, note=f"POST {cfg.endpoint} e-invoice {number}", what=what,
                              clock=self.clock, record=ctx.record_exchange, error=TaxError)
        answer = _object_or_none(got.body) or {}
        status = answer.get("status")
        official = str(answer.get("official_no") or "")[:64]
        ok = 200 <= got.status < 300 or (got.status == HTTPStatus.CONFLICT and status == "duplicate")
        if ok and status in ISSUED and official:
            ctx.receive_callback(self.name, {"kind": "einvoice", "order_number": p["order_number"], "invoice": number,
                                             "status": "accepted", "official_no": official,
                                             "verification": str(answer.get("verification") or "")[:300]})
            return
        if 400 <= got.status < 500 and status == "refused":
            reason = reason_of(answer) or "no reason given"
            ctx.receive_callback(self.name, {"kind": "einvoice", "order_number": p["order_number"], "invoice": number,
                                             "status": "refused", "reason": reason})
            raise MessageRefused(f"{what}: the tax platform refused it ({got.label}): {reason}")
        detail = reason_of(answer) or (f"body starts {got.body[:200]!r}" if got.body.strip() else "no body")
        if ok and status in ISSUED:
            detail = "no official_no in the answer"
        raise TaxError(f"{what}: the tax platform answered {got.label}: {detail}")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{self.name} schedules no tasks")

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        value = payload.get("body", payload) if isinstance(payload, Mapping) and "kind" not in payload else payload
        return einvoice_events(value)


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(JsonTaxPlatform(settings=config.plugin_settings.get("tax_json")))

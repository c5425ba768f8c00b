"""A payment provider spoken to in JSON over HTTP (docs/connectors.md, "payment_json"): refunds owed are paid
back through it.

::

    POST {url}/refunds   Idempotency-Key: oms-refund-2612071234567890123-R01
                         {"type": "refund", "id": "oms-refund-...-R01", "data": {"refund": "...-R01",
                          "payment": "...-P01", "provider_ref": "TXN-1", "amount": "12.50", "currency": "CNY",
                          "method": "card", "order_number": "...", "for_order": "...", "reason": "cancel: ..."}}
        -> 2xx {"status": "refunded", "reference": "RF-1"}     paid back
         | 2xx {"status": "pending"}                           the provider calls back when it knows
         | 4xx {"status": "refused", "reason": "..."}          it will not pay it (the refund fails)
         | anything else                                       the outbox tries again
    callback   {"kind": "refund", "order_number": ..., "refund": "...-R01", "status": "refunded" | "refused",
                "provider_ref": ..., "reason": ...}, or a list of them (POST /api/callbacks/payment_json)

The idempotency key is the refund's serial, the same for every attempt: a provider that paid a refund the OMS
then saw fail (a timeout, a worker killed before it recorded the answer) answers the retry with that refund,
so a refund is never paid twice. Requests are signed like a WMS's documents (``X-OMS-Timestamp``,
``X-OMS-Signature``) with the secret in the environment variable ``plugin_settings.payment_json.secret_env``;
request and answer are recorded byte for byte with the order (``oms order show``). The wire is wms_http.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, hookimpl

from .carrier_http import _dump, _object_or_none, decimal
from .sim_payment import refund_events
from .wms_http import Owner, WireError, http_client, post_signed, read_settings, reason_of

PROVIDER = Owner("payment provider", "plugin_settings.payment_json", "the payment provider",
                 "https://pay.example.com/v1")
REFUNDS = "/refunds"
REFUND = "payment.refund"
CONTENT_TYPE = "application/json"


class PaymentError(WireError):
    """A refund whose answer was neither paid, pending nor refused: the outbox tries again."""


class JsonPayments:
    kind = "payment"

    def __init__(self, name: str = "payment_json", settings: Mapping[str, Any] | None = None, *,
                 clock: Callable[[], float] = time.time, transport: httpx.BaseTransport | None = None) -> None:
        self.name, self.settings, self.clock, self.transport = name, dict(settings or {}), clock, transport

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        if message.topic != REFUND:
            raise ValueError(f"{self.name} does not send topic '{message.topic}' (it sends {REFUND})")
        p = message.payload
        cfg = read_settings(self.name, self.settings, "refunds", PROVIDER, path=REFUNDS)
        serial = str(p["refund"])
        key = f"{cfg.key_prefix}-refund-{serial}"
        what = f"{self.name}: refund {serial} (key {key}) to {cfg.endpoint}"
        data = {**p, "amount": decimal(int(p["amount"]), str(p["currency"]))}
        body = _dump({"type": "refund", "id": key, "data": data})
        with http_client(self.name, cfg, self.transport) as client:
            got = post_signed(client, cfg, cfg.endpoint, body, content_type=CONTENT_TYPE, correlation=serial,
                              key=key, note=f"POST {cfg.endpoint} refund {serial} key {key}", what=what,
                              clock=self.clock, record=ctx.record_exchange, error=PaymentError)
        answer = _object_or_none(got.body) or {}
        status = answer.get("status")
        if 200 <= got.status < 300 and status in ("refunded", "pending"):
            if status == "refunded":
                ctx.receive_callback(self.name, {"kind": "refund", "order_number": p["order_number"],
                                                 "refund": serial, "status": "refunded",
                                                 "provider_ref": str(answer.get("reference") or "")[:128]})
            return
        if 400 <= got.status < 500 and status == "refused":
            ctx.receive_callback(self.name, {"kind": "refund", "order_number": p["order_number"], "refund": serial,
                                             "status": "refused", "reason": reason_of(answer) or "no reason given"})
            return
        detail = reason_of(answer) or (f"body starts {got.body[:200]!r}" if got.body.strip() else "no body")
        raise PaymentError(f"{what}: the provider answered {got.label}: {detail}")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{self.name} schedules no tasks")

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        value = payload.get("body", payload) if isinstance(payload, Mapping) and "kind" not in payload else payload
        return refund_events(value)


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(JsonPayments(settings=config.plugin_settings.get("payment_json")))

"""A simulated tax platform: issues every e-invoice at once, or refuses a share of them.

On ``tax.einvoice`` it answers through a callback, as the HTTP connector does
with a real platform's answer: ``accepted`` with an official number of its
own (20 digits, from the invoice number) and a verification code, or, for a
share ``refusal_rate`` of invoices (chosen by the invoice number, so a run is
repeatable), ``refused`` with a reason, raising MessageRefused so the message
is dead at once. Its answer is worked out from the invoice number alone, so
an invoice sent again is answered as before (a retried message issues
nothing twice) with no state to keep. Settings in ``plugin_settings.sim_tax``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from oms_engine import CallbackEvent, MessageRefused, OutboundMessage, PluginContext, hookimpl

from .simulation import fraction

EINVOICE = "tax.einvoice"
DEFAULTS = {"refusal_rate": 0.0}


class SimTax:
    kind = "tax"

    def __init__(self, name: str = "sim_tax", settings: dict[str, Any] | None = None) -> None:
        self.name = name
        self.settings = {**DEFAULTS, **(settings or {})}

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        if message.topic != EINVOICE:
            raise ValueError(f"{self.name} does not understand topic '{message.topic}' (it takes {EINVOICE})")
        number = str(message.payload["invoice"])
        answer: dict[str, str]
        if fraction(f"{number}:refuse") < float(self.settings["refusal_rate"]):
            answer = {"status": "refused", "reason": "the buyer's tax registration is not on record"}
        else:
            digest = hashlib.sha256(number.encode()).hexdigest()
            answer = {"status": "accepted", "official_no": f"{int(digest[:16], 16) % 10**20:020d}",
                      "verification": f"{int(digest[16:24], 16) % 10**6:06d}"}
        ctx.receive_callback(self.name, {"kind": "einvoice", "order_number": message.payload["order_number"],
                                         "invoice": number, **answer})
        if answer["status"] == "refused":
            raise MessageRefused(f"{self.name}: {number} refused by the tax platform: {answer['reason']}")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{self.name} schedules no tasks")

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        # A list comes stored as {"body": [...]} (fulfilment/callbacks.py).
        value = payload.get("body", payload) if isinstance(payload, Mapping) and "kind" not in payload else payload
        return einvoice_events(value)


def einvoice_events(payload: Any) -> list[CallbackEvent]:
    """A tax platform's word on e-invoices: {kind: einvoice, order_number, invoice, status, official_no?,
    verification?, reason?}, or a list of them; ValueError saying what is wrong."""
    items = payload if isinstance(payload, list) else [payload]
    out = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"e-invoice answer {n} must be an object, got {type(item).__name__}")
        missing = [k for k in ("order_number", "invoice", "status") if not isinstance(item.get(k), str) or not item[k]]
        if missing:
            raise ValueError(f"e-invoice answer {n} needs {', '.join(missing)}")
        data = {k: str(item[k])[:300] for k in ("invoice", "official_no", "verification", "reason")
                if item.get(k) is not None}
        out.append(CallbackEvent(order_number=item["order_number"], status=item["status"], data=data,
                                 kind="einvoice", id=str(item.get("id") or "")))
    return out


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(SimTax(settings=config.plugin_settings.get("sim_tax")))

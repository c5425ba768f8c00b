"""A simulated payment provider: pays refunds back at once, or refuses a share of them.

On ``payment.refund`` it answers through a callback, as a provider's webhook
would: ``refunded`` with a reference of its own, or, for a share
``refusal_rate`` of refunds (chosen by the refund's serial, so a run is
repeatable), ``refused`` with a reason. A refund it has answered once is
answered the same way again (a retried message pays nothing twice). Settings
in ``plugin_settings.sim_payment``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, hookimpl

from .simulation import fraction

REFUND = "payment.refund"
DEFAULTS = {"refusal_rate": 0.0}


class SimPayment:
    kind = "payment"

    def __init__(self, name: str = "sim_payment", settings: dict[str, Any] | None = None) -> None:
        self.name = name
        self.settings = {**DEFAULTS, **(settings or {})}

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        if message.topic != REFUND:
            raise ValueError(f"{self.name} does not understand topic '{message.topic}' (it takes {REFUND})")
        serial = str(message.payload["refund"])
        answer = ctx.state_get(self.name, serial)
        if answer is None:
            if fraction(f"{serial}:refuse") < float(self.settings["refusal_rate"]):
                answer = {"status": "refused", "reason": "the card account is closed"}
            else:
                answer = {"status": "refunded", "provider_ref": f"SIMRF-{serial}"}
            ctx.state_put(self.name, serial, answer)
        ctx.receive_callback(self.name, {"kind": "refund", "order_number": message.payload["order_number"],
                                         "refund": serial, **answer})

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{self.name} schedules no tasks")

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        return refund_events(payload)


def refund_events(payload: Any) -> list[CallbackEvent]:
    """A provider's word on refunds: {kind: refund, order_number, refund, status, provider_ref?, reason?}, or a
    list of them; ValueError saying what is wrong."""
    items = payload if isinstance(payload, list) else [payload]
    out = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"refund answer {n} must be an object, got {type(item).__name__}")
        missing = [k for k in ("order_number", "refund", "status") if not isinstance(item.get(k), str) or not item[k]]
        if missing:
            raise ValueError(f"refund answer {n} needs {', '.join(missing)}")
        data = {k: str(item[k])[:300] for k in ("refund", "provider_ref", "reason") if item.get(k) is not None}
        out.append(CallbackEvent(order_number=item["order_number"], status=item["status"], data=data, kind="refund",
                                 id=str(item.get("id") or "")))
    return out


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(SimPayment(settings=config.plugin_settings.get("sim_payment")))

"""A simulated carrier: collects, moves and delivers parcels, reporting through callbacks.

On ``carrier.register`` (sent when the warehouse ships) it plans the parcel's
journey: collected, in transit, out for delivery, then signed for, or refused
by a share of customers and returned to the warehouse. Each event reaches the
core through the same callback path a real carrier's webhook would use.
Settings in ``plugin_settings.sim_carrier``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, hookimpl

from .simulation import fraction, parse_status_callback

DEFAULTS = {"collect_hours": 1, "transit_hours": 12, "out_hours": 20, "sign_hours": 4,
            "return_hours": 48, "refusal_rate": 0.03, "time_scale": 1.0}   # time_scale 0: every step at once
JOURNEY = (("COLLECTED", "collect_hours"), ("IN_TRANSIT", "transit_hours"),
           ("OUT_FOR_DELIVERY", "out_hours"), ("SIGNED", "sign_hours"))


class SimCarrier:
    kind = "carrier"

    def __init__(self, name: str = "sim_carrier", settings: dict[str, Any] | None = None) -> None:
        self.name = name
        self.settings = {**DEFAULTS, **(settings or {})}

    def _after(self, key: str, number: str, step: str) -> timedelta:
        scale = float(self.settings["time_scale"])
        return timedelta(hours=float(self.settings[key]) * scale * (0.5 + fraction(f"{number}:{step}")))

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        if message.topic != "carrier.register":
            raise ValueError(f"sim_carrier does not understand topic '{message.topic}'")
        number = message.order_number
        if ctx.state_get(self.name, number):
            return
        refuse = fraction(f"{number}:refuse") < float(self.settings["refusal_rate"])
        ctx.state_put(self.name, number, {"tracking_no": message.payload.get("tracking_no"), "refuse": refuse})
        ctx.schedule(self.name, ctx.now() + self._after("collect_hours", number, "COLLECTED"),
                     {"order": number, "i": 0}, key=number)

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        number, i = payload["order"], int(payload["i"])
        parcel = ctx.state_get(self.name, number) or {}
        if payload.get("returned"):
            ctx.receive_callback(self.name, {"order_number": number, "status": "RETURNED"})
            return
        status = JOURNEY[i][0]
        if status == "SIGNED" and parcel.get("refuse"):
            ctx.receive_callback(self.name, {"order_number": number, "status": "REFUSED",
                                             "note": "customer refused the parcel"})
            ctx.schedule(self.name, ctx.now() + self._after("return_hours", number, "RETURNED"),
                         {"order": number, "i": i, "returned": True}, key=number)
            return
        ctx.receive_callback(self.name, {"order_number": number, "status": status,
                                         "tracking_no": parcel.get("tracking_no")})
        if i + 1 < len(JOURNEY):
            nxt, key = JOURNEY[i + 1]
            ctx.schedule(self.name, ctx.now() + self._after(key, number, nxt), {"order": number, "i": i + 1},
                         key=number)

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        return parse_status_callback(payload)


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(SimCarrier(settings=config.plugin_settings.get("sim_carrier")))

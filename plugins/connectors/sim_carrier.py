"""A simulated carrier: collects, moves and delivers parcels, reporting through callbacks.

On ``carrier.register`` (sent when the warehouse ships) it plans the parcel's
journey: collected, in transit, out for delivery, then signed for, or refused
by a share of customers and returned to the warehouse. Each event reaches the
core through the same callback path a real carrier's webhook would use.
Settings in ``plugin_settings.sim_carrier``.

It quotes too (courier matching): a price from the service's (or the carrier's
master-data settings') ``base_price`` and ``price_per_kg``, a delivery
estimate from ``transit_hours`` (halved within the warehouse's own region),
and a refusal for a destination region in ``refuse_regions`` ("out of area")
or, for a share ``quote_refusal_rate`` of shipments, "no capacity".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, Quote, ServiceView, Shipment, hookimpl

from .simulation import fraction, parse_status_callback

DEFAULTS = {"collect_hours": 1, "transit_hours": 12, "out_hours": 20, "sign_hours": 4,
            "return_hours": 48, "refusal_rate": 0.03, "time_scale": 1.0}   # time_scale 0: every step at once
# What a quote costs and takes when neither the service nor the carrier's settings say.
QUOTE_DEFAULTS = {"base_price": 1000, "price_per_kg": 200, "transit_hours": 48, "quote_refusal_rate": 0.0,
                  "refuse_regions": []}
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

    def quote(self, shipment: Shipment, service: ServiceView, settings: Mapping[str, Any]) -> Quote:
        def setting(key: str) -> Any:
            return service.attributes.get(key, settings.get(key, QUOTE_DEFAULTS[key]))

        region = shipment.destination.region
        if region and region in (setting("refuse_regions") or []):
            return Quote(False, reason=f"{service.carrier} does not deliver to {region}")
        key = f"{shipment.reference}:{service.carrier}:{service.code}:quote"
        if fraction(key) < float(setting("quote_refusal_rate")):
            return Quote(False, reason=f"{service.carrier} has no capacity for this parcel today")
        kilos = max(1, math.ceil(shipment.weight_g / 1000))
        price = int(setting("base_price")) + int(setting("price_per_kg")) * (kilos - 1)
        hours = float(setting("transit_hours"))
        if shipment.origin.region and shipment.origin.region == region:
            hours /= 2
        eta = shipment.ready_at + timedelta(hours=hours) if shipment.ready_at is not None else None
        return Quote(True, price=price, currency=shipment.currency, eta=eta)

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        return parse_status_callback(payload)


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(SimCarrier(settings=config.plugin_settings.get("sim_carrier")))

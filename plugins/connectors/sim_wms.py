"""A simulated warehouse (WMS) that answers through the real callback path.

It behaves like a remote WMS: it keeps its own view of each document (in the
plugin state store), works through accepted -> picking -> packed -> shipped
on its own schedule (``time_scale`` 0: at once), and reports each step with a callback handed to the core
exactly as the callback API would hand it. Interception requests succeed
while the parcel is still in the building, and fail for a share of parcels
already on the loading dock. A share of documents (``late_rate``) waits ``late_hours`` more before
picking starts, and a share (``shortage_rate``) is reported short when picking starts: the bin is
empty, so the OMS writes the stock off there and routes the order again. A new delivery address
(``wms.readdress``) is accepted while the document has not been packed, and refused once it has (or when
the document is cancelled or unknown), ``readdress_minutes`` after it came. Timings and rates come from
``plugin_settings.sim_wms`` in config.yaml.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, hookimpl

from .simulation import fraction, parse_status_callback

STEPS = ("ACCEPTED", "PICKING", "PACKED", "SHIPPED")
# time_scale multiplies every delay: 1 is a warehouse's pace, 0 answers at once (an order then goes
# through with `oms run` alone, on the wall clock).
DEFAULTS = {"accept_minutes": 5, "pick_minutes": 120, "pack_minutes": 60, "ship_minutes": 120,
            "intercept_minutes": 15, "dock_refusal_rate": 0.3, "receive_minutes": 240, "time_scale": 1.0,
            "late_rate": 0.0, "late_hours": 30, "shortage_rate": 0.0, "readdress_minutes": 10}
# A document in one of these states has not been packed: its label can still carry another address.
_READDRESSABLE = ("NEW", "ACCEPTED", "PICKING")
# Goods-in and goods-out documents: what the warehouse reports once it has worked one.
_REPORTS = {"wms.purchase_order": "receipt", "wms.customer_return": "receipt", "wms.return_to_vendor": "shipped_out"}


class SimWMS:
    kind = "wms"

    def __init__(self, name: str = "sim_wms", settings: dict[str, Any] | None = None) -> None:
        self.name = name
        self.settings = {**DEFAULTS, **(settings or {})}

    def _delay(self, step: str, number: str) -> timedelta:
        minutes = {"ACCEPTED": "accept_minutes", "PICKING": "pick_minutes", "PACKED": "pack_minutes",
                   "SHIPPED": "ship_minutes"}[step]
        base = float(self.settings[minutes]) * float(self.settings["time_scale"])
        late = step == "PICKING" and fraction(f"{number}:late") < float(self.settings["late_rate"])
        extra = float(self.settings["late_hours"]) * 60 * float(self.settings["time_scale"]) if late else 0.0
        return timedelta(minutes=base * (0.5 + fraction(f"{number}:{step}")) + extra)

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        number = message.order_number
        doc = ctx.state_get(self.name, number) or {}
        if message.topic == "wms.create":
            if doc and doc.get("status") != "CANCELLED" and doc.get("warehouse") == message.payload.get("warehouse"):
                return  # the same document twice: a real WMS answers with its existing status
            ctx.state_put(self.name, number, {"status": "NEW", "warehouse": message.payload.get("warehouse"),
                                              "lines": len(message.payload.get("lines", [])), "message": message.id,
                                              "orders": list(message.payload.get("orders") or [number]),
                                              "carrier": message.payload.get("carrier"),
                                              "short_once": bool(doc.get("short_once")),
                                              "first_line": [{k: ln[k] for k in ("sku", "quantity", "order_number")
                                                              if k in ln}
                                                             for ln in message.payload.get("lines", [])[:1]]})
            ctx.schedule(self.name, ctx.now() + self._delay("ACCEPTED", number),
                         {"order": number, "step": "ACCEPTED"}, key=number)
        elif message.topic == "wms.cancel":
            ctx.state_put(self.name, number, {**doc, "status": "CANCELLED"})
        elif message.topic == "wms.intercept":
            # An order inside a merged parcel's document: only its lines come out.
            document = str(message.payload.get("document") or number)
            doc = ctx.state_get(self.name, document) or {}
            ctx.state_put(self.name, document, {**doc, "intercept": True})
            ctx.schedule(self.name, ctx.now() + timedelta(minutes=float(self.settings["intercept_minutes"])
                                                          * float(self.settings["time_scale"])),
                         {"order": document, "step": "INTERCEPT", "member": number}, key=document)
        elif message.topic == "wms.readdress":
            document = str(message.payload.get("document") or number)
            doc = ctx.state_get(self.name, document) or {}
            request = message.payload.get("request")
            asked = list(doc.get("readdress") or [])
            if request in asked:
                return  # the same request twice: answered once
            ctx.state_put(self.name, document, {**doc, "readdress": [*asked, request]})
            ctx.schedule(self.name, ctx.now() + timedelta(minutes=float(self.settings["readdress_minutes"])
                                                          * float(self.settings["time_scale"])),
                         {"order": document, "step": "READDRESS", "member": number, "request": request},
                         key=document)
        elif message.topic in _REPORTS:
            document = str(message.payload.get("document"))
            if ctx.state_get(self.name, document):
                return  # the same document twice
            ctx.state_put(self.name, document, {"status": "EXPECTED", "message": message.id})
            delay = timedelta(minutes=float(self.settings["receive_minutes"]) * float(self.settings["time_scale"])
                              * (0.5 + fraction(f"{document}:receive")))
            ctx.schedule(self.name, ctx.now() + delay, {"document": document, "kind": _REPORTS[message.topic],
                                                        "lines": [{k: ln[k] for k in ("sku", "quantity", "lot",
                                                                                      "expires_on") if k in ln}
                                                                  for ln in message.payload.get("lines", [])]},
                         key=document)
        elif message.topic.startswith("master."):
            return  # a simulated warehouse knows every item and supplier
        else:
            raise ValueError(f"sim_wms does not understand topic '{message.topic}'")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        if "document" in payload:   # a goods-in or goods-out document worked: everything as expected
            ctx.state_put(self.name, payload["document"], {"status": "DONE"})
            ctx.receive_callback(self.name, {"kind": payload["kind"], "document": payload["document"],
                                             "lines": payload["lines"]})
            return
        number, step = payload["order"], payload["step"]
        doc = ctx.state_get(self.name, number) or {}
        if step == "READDRESS":
            self._readdress(payload, doc, ctx)
            return
        if doc.get("status") in ("CANCELLED", "INTERCEPTED"):
            return
        if step == "INTERCEPT":
            member = payload.get("member") or number
            on_dock = doc.get("status") == "PACKED" and fraction(f"{number}:dock") < float(
                self.settings["dock_refusal_rate"])
            if doc.get("status") == "SHIPPED" or on_dock:
                ctx.state_put(self.name, number, {**doc, "intercept": False})
                ctx.receive_callback(self.name, {"order_number": member, "status": "INTERCEPT_FAILED",
                                                 "note": "parcel already left" if not on_dock else "on the dock"})
                return
            left = [n for n in doc.get("orders", [number]) if n != member]
            if left and member != number:
                # Its lines are taken out of the merged parcel; the rest goes on.
                ctx.state_put(self.name, number, {**doc, "orders": left, "intercept": False})
            else:
                ctx.state_put(self.name, number, {**doc, "status": "INTERCEPTED"})
            ctx.receive_callback(self.name, {"order_number": member, "status": "INTERCEPTED"})
            return
        if step == "PICKING" and not doc.get("short_once") and fraction(f"{number}:short") < float(
                self.settings["shortage_rate"]):
            # The first line's bin is empty; a document sent again (moved back here) is not short twice.
            ctx.state_put(self.name, number, {**doc, "status": "SHORT", "short_once": True})
            # In a merged parcel's document it is the order of that line that is short.
            short = doc.get("first_line") or [{}]
            ctx.receive_callback(self.name, {"order_number": short[0].get("order_number") or number,
                                             "status": "SHORTAGE", "note": "bin empty",
                                             "lines": [{k: v for k, v in ln.items() if k != "order_number"}
                                                       for ln in short if ln]})
            return
        event: dict[str, Any] = {"order_number": number, "status": step}
        if step == "SHIPPED":
            event["tracking_no"] = "SIM" + hashlib.sha1(number.encode()).hexdigest()[:12].upper()
            # It hands the parcel to the carrier the document names.
            event["carrier"] = doc.get("carrier") or "sim_carrier"
        ctx.state_put(self.name, number, {**doc, "status": step})
        ctx.receive_callback(self.name, event)
        i = STEPS.index(step)
        if i + 1 < len(STEPS):
            nxt = STEPS[i + 1]
            ctx.schedule(self.name, ctx.now() + self._delay(nxt, number), {"order": number, "step": nxt}, key=number)

    def _readdress(self, payload: Any, doc: dict[str, Any], ctx: PluginContext) -> None:
        """Answer a new address: taken while the document is not packed yet, refused after."""
        status, document = doc.get("status"), payload["order"]
        if not status or payload.get("member") not in doc.get("orders", [document]):
            answer, reason = "refused", f"no order {payload.get('member')} in a document {document} here"
        elif status in _READDRESSABLE:
            answer, reason = "accepted", ""
        elif status in ("PACKED", "SHIPPED"):
            answer, reason = "refused", f"the parcel is {status.lower()} already"
        else:
            answer, reason = "refused", f"document {document} is {status.lower()}"
        ctx.receive_callback(self.name, {"kind": "readdress", "order_number": payload.get("member") or payload["order"],
                                         "status": answer, "request": payload.get("request"), "reason": reason})

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        events = payload.get("events", [payload]) if isinstance(payload, dict) else None
        if not isinstance(events, list) or not any(isinstance(ev, dict) and ev.get("kind") == "readdress"
                                                   for ev in events):
            return parse_status_callback(payload)
        out: list[CallbackEvent] = []
        for ev in events:
            if isinstance(ev, dict) and ev.get("kind") == "readdress":
                if ev.get("request") is None or not ev.get("status"):
                    raise ValueError(f"a readdress answer names its request and status: {ev!r}")
                out.append(CallbackEvent(order_number=str(ev.get("order_number") or ""), status=str(ev["status"]),
                                         data={"request": ev["request"], "reason": str(ev.get("reason") or "")},
                                         kind="readdress"))
            else:
                out.extend(parse_status_callback(ev))
        return out


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(SimWMS(settings=config.plugin_settings.get("sim_wms")))

"""A carrier spoken to in JSON over HTTP (docs/connectors.md, "carrier_json"): quotes for courier matching,
parcels registered when they ship, tracking events called back.

::

    POST {url}/quotes      {"service": {"carrier": "SF", "code": "STANDARD"}, "shipment": {...}}
        -> {"accepted": true, "price": "12.50", "currency": "CNY", "eta": "2026-11-04T10:00:00Z"}
         | {"accepted": false, "reason": "out of area"}
    POST {url}/shipments   Idempotency-Key: oms-msg-17
                           {"type": "shipment", "id": "oms-msg-17", "data": {"order_number": ..., ...}}
        -> any 2xx, or 409 {"status": "duplicate"}: registered
    callback               {"id": "EV-1", "order_number": ..., "tracking_no": ..., "status": "SIGNED",
                            "at": ..., "place": ...}, or a list of them

Requests are signed like a WMS's documents (``X-OMS-Timestamp``, ``X-OMS-Signature``), with the carrier's
secret from its master-data settings; the carrier signs its callbacks with the same secret
(``X-Carrier-Timestamp``, ``X-Carrier-Signature``, over ``<timestamp>.`` and the body). The wire itself is
wms_http.py's.

A registration goes through the outbox: its request and answer are recorded byte for byte, and a failure is
retried. A quote is asked from the courier stage, which lends no context to record with, so its bytes are not
kept; a quote that cannot be had raises :class:`CarrierError` saying why, which the core records with the
decision as the carrier's refusal.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import httpx

from oms_engine import (
    Address,
    CallbackEvent,
    CanonicalOrder,
    OutboundMessage,
    PluginContext,
    Quote,
    ServiceView,
    Shipment,
    callback_body,
    exponent,
    hookimpl,
    read_json,
    secret_from,
)

from .wms_http import (
    MAX_CALLBACK_BYTES,
    Owner,
    WireError,
    http_client,
    no_record,
    post_signed,
    read_settings,
    reason_of,
    signed_ok,
    text_field,
    time_field,
)

CARRIER = Owner("carrier", "settings", "the carrier", "https://api.carrier.example/v1")
QUOTES, SHIPMENTS = "/quotes", "/shipments"
REGISTER = "carrier.register"
CARRIER_TIMESTAMP, CARRIER_SIGNATURE = "X-Carrier-Timestamp", "X-Carrier-Signature"
CONTENT_TYPE = "application/json"
# The parts of an address a carrier needs to quote: where, not who (no name, phone or street).
QUOTE_PLACE = ("country", "region", "city", "district", "postcode")


class CarrierError(WireError):
    """A quote that could not be had (the courier stage takes it as a refusal), or a registration the carrier
    did not take (the outbox tries again)."""


class JsonCarrier:
    kind = "carrier"

    def __init__(self, name: str = "carrier_json", *, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        # clock: wall-clock seconds, for signing and for checking a callback's timestamp (the carrier keeps
        # real time, whatever clock the OMS runs on). transport: httpx's, for tests.
        self.name, self.clock, self.transport = name, clock, transport

    # -- quotes -------------------------------------------------------------------------------------------
    def quote(self, shipment: Shipment, service: ServiceView, settings: Mapping[str, Any]) -> Quote:
        """The carrier's price and delivery for the shipment on the service, or its refusal; CarrierError when
        it cannot be asked or its answer cannot be read."""
        cfg = read_settings(self.name, settings, service.carrier, CARRIER, path=QUOTES)
        # Short: the core records it with the parcel, the carrier and the service, within a few hundred characters.
        what = f"{self.name}: quote from {cfg.endpoint}"
        with http_client(self.name, cfg, self.transport) as client:
            got = post_signed(client, cfg, cfg.endpoint, _dump(quote_request(shipment, service)),
                              content_type=CONTENT_TYPE, correlation=shipment.reference, key=None,
                              note=f"POST {cfg.endpoint} quote {shipment.reference}", what=what, clock=self.clock,
                              record=no_record, error=CarrierError)
        if not 200 <= got.status < 300:
            raise CarrierError(f"{what}: the carrier answered {got.label}{_detail(got.body)}")
        try:
            return read_quote(got.body, shipment)
        except ValueError as exc:
            raise CarrierError(f"{what}: the carrier answered {got.label} with a malformed quote: {exc}") from None

    # -- registering a parcel -----------------------------------------------------------------------------
    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        if message.topic != REGISTER:
            raise ValueError(f"{self.name} does not send topic '{message.topic}' (it sends {REGISTER})")
        carrier = str(message.payload.get("carrier") or "")
        cfg = read_settings(self.name, message.settings, carrier, CARRIER, path=SHIPMENTS)
        key = f"{cfg.key_prefix}-msg-{message.id}"
        what = f"{self.name}: shipment {message.order_number} (key {key}) to {cfg.endpoint}"
        body = _dump({"type": "shipment", "id": key, "data": registration(message.payload)})
        with http_client(self.name, cfg, self.transport) as client:
            got = post_signed(client, cfg, cfg.endpoint, body, content_type=CONTENT_TYPE,
                              correlation=str(message.id), key=key,
                              note=f"POST {cfg.endpoint} shipment {message.order_number} key {key}", what=what,
                              clock=self.clock, record=ctx.record_exchange, error=CarrierError)
        if 200 <= got.status < 300:
            return
        if got.status == HTTPStatus.CONFLICT and (_object_or_none(got.body) or {}).get("status") == "duplicate":
            return  # the carrier has this parcel registered already
        raise CarrierError(f"{what}: the carrier answered {got.label}{_detail(got.body)}")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{self.name} schedules no tasks")   # it never calls ctx.schedule

    # -- tracking callbacks -------------------------------------------------------------------------------
    def verify_callback(self, headers: Mapping[str, str], body: bytes, settings: Mapping[str, Any]) -> bool:
        """The carrier's signature (X-Carrier-Signature over X-Carrier-Timestamp and the body, with the
        carrier's secret), and a timestamp within five minutes of now."""
        return signed_ok(headers, body, secret_from(settings), now=self.clock(), timestamp_header=CARRIER_TIMESTAMP,
                         signature_header=CARRIER_SIGNATURE)

    def callback_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The event's ``id``; for a list, one id for the list made from all of its events' ids (a list sent
        again is a duplicate), or none when an event has none."""
        value = _callback_value(body)
        events = value if isinstance(value, list) else [value]
        ids = [str(e.get("id") or "") if isinstance(e, Mapping) else "" for e in events]
        if not ids or not all(ids):
            return ""
        if len(ids) == 1:
            return ids[0]
        return "batch-" + hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:40]

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        if isinstance(payload, Mapping) and isinstance(payload.get("body"), str):
            value = _callback_value(callback_body(payload))       # stored by POST /api/carriers/CARRIER/callbacks
        elif isinstance(payload, Mapping) and "body" in payload:
            value = payload["body"]             # a list handed over as JSON through POST /api/callbacks/carrier_json
        else:
            value = payload
        return events_from(value)


# -- the wire format ---------------------------------------------------------------------------------------
def quote_request(sh: Shipment, sv: ServiceView) -> dict[str, Any]:
    """What a carrier is asked to quote on: the parcel, where from and where to (no personal details)."""
    return {"service": {"carrier": sv.carrier, "code": sv.code},
            "shipment": {"reference": sh.reference, "orders": list(sh.orders), "warehouse": sh.warehouse,
                         "origin": _place(sh.origin), "destination": _place(sh.destination),
                         "weight_g": sh.weight_g, "volume_cm3": sh.volume_cm3,
                         "value": decimal(sh.value, sh.currency), "currency": sh.currency,
                         "cod_amount": decimal(sh.cod_amount, sh.currency), "cold_chain": sh.cold_chain,
                         "oversize": sh.oversize, "ready_at": _iso(sh.ready_at), "deliver_from": _iso(sh.deliver_from),
                         "deliver_by": _iso(sh.deliver_by), "promised_by": _iso(sh.promised_by)}}


def read_quote(body: bytes, sh: Shipment) -> Quote:
    """The quote in a carrier's answer; ValueError saying what is wrong with it."""
    answer = _object_or_none(body)
    if answer is None:
        raise ValueError(f"not a JSON object: {body[:100]!r}")
    accepted = answer.get("accepted")
    if not isinstance(accepted, bool):
        raise ValueError(f"'accepted' must be true or false, got {accepted!r}")
    if not accepted:
        return Quote(False, reason=reason_of(answer)[:300] or "no reason given")
    currency = answer.get("currency", sh.currency)
    if currency != sh.currency:
        # Prices in different currencies cannot be ranked against each other.
        raise ValueError(f"quoted in {currency!r}, the shipment is in {sh.currency}")
    try:
        price = CanonicalOrder.minor_units(answer.get("price"), sh.currency)
    except ValueError as exc:
        raise ValueError(f"'price': {exc}") from None
    eta = time_field(answer.get("eta"), "the quote")
    # The core keeps times as naive UTC.
    return Quote(True, price=price, currency=sh.currency,
                 eta=eta.astimezone(UTC).replace(tzinfo=None) if eta is not None else None)


def registration(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The parcel as the carrier is told of it: the payload, its value as a decimal string."""
    data = dict(payload)
    value, currency = data.get("value"), data.get("currency")
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(currency, str):
        data["value"] = decimal(value, currency)
    return data


def events_from(value: Any) -> list[CallbackEvent]:
    """The tracking events of one callback (an event or a list of them); ValueError saying what is wrong."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("the callback is an empty list of events")
    out = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise ValueError(f"tracking event {n} must be an object, got {type(item).__name__}")
        cid = item.get("id")
        if cid is not None and (isinstance(cid, bool) or not isinstance(cid, str | int)):
            raise ValueError(f"tracking event {n}: 'id' must be a string, got {cid!r}")
        where = f"tracking event {cid}" if cid not in (None, "") else f"tracking event {n}"
        number = text_field(item, "order_number", where, required=True)
        status = text_field(item, "status", where, required=True)
        extra = {k: text_field(item, k, where) for k in ("tracking_no", "place", "note")}
        out.append(CallbackEvent(order_number=number, status=status, data={k: v for k, v in extra.items() if v},
                                 at=time_field(item.get("at"), where), kind="order", id=str(cid or "")))
    return out


def decimal(amount: int, currency: str) -> str:
    """Minor units as a decimal string: 1250 CNY -> "12.50" (what the carrier API writes amounts as)."""
    digits = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def _place(address: Address) -> dict[str, str]:
    return {k: getattr(address, k) for k in QUOTE_PLACE}


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat() + "Z"


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _callback_value(body: bytes) -> Any:
    if len(body) > MAX_CALLBACK_BYTES:
        raise ValueError(f"the callback is over {MAX_CALLBACK_BYTES} bytes")
    if not body.strip():
        raise ValueError("the callback is empty")
    try:
        return read_json(body)
    except ValueError as exc:   # JsonRejected included: says what and where
        raise ValueError(f"the callback is not JSON: {exc}") from None


def _object_or_none(body: bytes) -> dict[str, Any] | None:
    try:
        value = read_json(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _detail(body: bytes) -> str:
    """What an answer that is not a success says: its reason, or the start of a body that is no JSON object."""
    reason = reason_of(_object_or_none(body))
    if reason:
        return f": {reason}"
    return f" (body starts {body[:200]!r})" if body.strip() else ""


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(JsonCarrier())

"""The canonical JSON channel: the OMS's own order format, for shops without a marketplace adapter.

A payload is one order object or a list of them, as UTF-8 JSON (RFC 8259: no
byte-order mark, no duplicate keys). Money is a decimal string in the order's
currency ("129.90": ASCII digits, at most the currency's decimals), never a
number; quantities are JSON integers; the currency is an active ISO 4217 code;
``placed_at`` and ``payment.paid_at`` are RFC 3339 date-times with an offset
(``Z`` or ``+08:00``), kept as UTC instants: a time without an offset is
refused, since nobody can tell which instant it meant. ``freight`` left out means
the shop charged none of its own: the OMS charges what its freight templates
say (rules/freight.yaml). A line's ``promotions`` are what the shop allotted to
it of the order's ``coupon``, kept as sent. Anything else is refused with an
error naming the field. Example::

    {"external_id": "A-1001", "currency": "CNY", "placed_at": "2026-11-20T09:30:00Z",
     "customer": {"ref": "C-42", "name": "Li Lei", "phone": "13800000000", "email": "li@example.com"},
     "ship_to": {"name": "Li Lei", "phone": "13800000000", "country": "CN", "region": "Shanghai",
                 "city": "Shanghai", "district": "Pudong", "line1": "1 Century Ave", "postcode": "200120"},
     "lines": [{"sku": "SKU-0001", "quantity": 2, "unit_price": "59.00",
                "promotions": [{"code": "WELCOME5", "name": "5 off your first order", "amount": "5.00"}]}],
     "freight": "10.00", "coupon": "5.00", "declared_total": "123.00",
     "payment": {"transaction_id": "PAY-889", "amount": "123.00", "method": "alipay"}}

Webhook signing (``POST /api/webhooks/json``, secret in ``OMS_WEBHOOK_SECRET_JSON``).
Each delivery carries three headers::

    X-OMS-Timestamp: 1795685400          # when it was signed, Unix seconds
    X-OMS-Delivery:  7c0e1f2a-...        # unique per delivery, 1-128 visible ASCII characters
    X-OMS-Signature: sha256=<hex>        # lowercase hex

where the signature is HMAC-SHA256, keyed with the secret, over the timestamp,
the delivery id and the raw body, joined by dots::

    signed = f"{timestamp}.{delivery_id}.".encode() + body
    signature = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()

This adapter checks only the signature. The core refuses a timestamp more
than 5 minutes (by default) from its clock, a delivery id it has seen within
twice that (409), and deliveries past the channel's rate (429 with
Retry-After); see :mod:`oms_engine.web.webhooks`. Sign each delivery when it
is sent, a retry included.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from oms_engine import CanonicalOrder, JsonRejected, ParsedPayload, hookimpl
from oms_engine import read_json as loads

MONEY_FIELDS = ("freight", "tax", "coupon", "gift_card", "points", "declared_total", "refunded")


def _describe(exc: ValidationError, reported: dict[str, str]) -> list[str]:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if loc in reported:
            continue
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return parts


def _minor(obj: dict[str, Any], key: str, currency: str | None, field: str, errors: dict[str, str]) -> None:
    """Amount ``obj[key]`` in minor units, in place. A bad one is put in ``errors`` and replaced by 0, so
    that the model still checks, and the error still names, every other field of the order."""
    if key in obj and obj[key] is not None:
        if currency is None:  # the currency is wrong, so are its decimals: only the currency is reported
            obj[key] = 0
            return
        try:
            obj[key] = CanonicalOrder.minor_units(obj[key], currency)
        except ValueError as exc:
            errors[field] = str(exc)
            obj[key] = 0


class JsonChannel:
    name = "json"

    def parse(self, body: bytes) -> list[ParsedPayload]:
        try:
            data = loads(body)
        except JsonRejected as exc:
            return [ParsedPayload(None, error="invalid JSON" + str(exc).removeprefix("malformed JSON"))]
        items = data if isinstance(data, list) else [data]
        return [self._one(item) for item in items]

    def _one(self, item: Any) -> ParsedPayload:
        if not isinstance(item, dict):
            return ParsedPayload(None, error=f"an order must be a JSON object, got {type(item).__name__}")
        ext = item.get("external_id")
        # Only to say which order an error is about; the model refuses a number as external_id.
        ext_id = ext if isinstance(ext, str) else str(ext) if isinstance(ext, int) and not isinstance(ext, bool) \
            else None
        errors: dict[str, str] = {}  # field -> what is wrong, found before the model is asked
        obj = dict(item)
        obj["channel"] = self.name
        currency = obj.get("currency")
        try:
            CanonicalOrder.currency_digits(currency)
        except ValueError as exc:
            errors["currency"] = str(exc)
        code = currency if isinstance(currency, str) and not errors else None
        for key in MONEY_FIELDS:
            _minor(obj, key, code, key, errors)
        lines = obj.get("lines")
        if isinstance(lines, list):
            obj["lines"] = [dict(ln) if isinstance(ln, dict) else ln for ln in lines]
            for i, ln in enumerate(obj["lines"]):
                if isinstance(ln, dict):
                    _minor(ln, "unit_price", code, f"lines.{i}.unit_price", errors)
                    promotions = ln.get("promotions")
                    if isinstance(promotions, list):
                        ln["promotions"] = [dict(p) if isinstance(p, dict) else p for p in promotions]
                        for j, p in enumerate(ln["promotions"]):
                            if isinstance(p, dict):
                                _minor(p, "amount", code, f"lines.{i}.promotions.{j}.amount", errors)
        if isinstance(obj.get("payment"), dict):
            obj["payment"] = dict(obj["payment"])
            _minor(obj["payment"], "amount", code, "payment.amount", errors)
        try:
            order = CanonicalOrder.model_validate(obj)
        except ValidationError as exc:
            problems = [f"{field}: {msg}" for field, msg in errors.items()] + _describe(exc, errors)
            return ParsedPayload(ext_id, error="; ".join(problems), raw=item)
        if errors:
            return ParsedPayload(ext_id, error="; ".join(f"{field}: {msg}" for field, msg in errors.items()), raw=item)
        return ParsedPayload(order.external_id, order=order, raw=item)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """True when X-OMS-Signature is the HMAC of timestamp, delivery id and body (the module's docstring)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get("x-oms-signature", "")
        timestamp, delivery_id = lowered.get("x-oms-timestamp", ""), lowered.get("x-oms-delivery", "")
        if not (secret and given and timestamp and delivery_id):
            # An empty key is one anybody can sign with.
            return False
        signed = f"{timestamp}.{delivery_id}.".encode("utf-8", "surrogateescape") + body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        # As bytes: compare_digest refuses a str with non-ASCII characters, and header values may have them.
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


@hookimpl(trylast=True)
def oms_register_channels(register: Any) -> None:
    register(JsonChannel())

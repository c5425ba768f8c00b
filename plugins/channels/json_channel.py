"""The canonical JSON channel: the OMS's own order format, for shops without a marketplace adapter.

A payload is one order object or a list of them. Money is a decimal string in
the order's currency ("129.90"), never a float. Example::

    {"external_id": "A-1001", "currency": "CNY", "placed_at": "2026-11-20T09:30:00Z",
     "customer": {"ref": "C-42", "name": "Li Lei", "phone": "13800000000", "email": "li@example.com"},
     "ship_to": {"name": "Li Lei", "phone": "13800000000", "country": "CN", "region": "Shanghai",
                 "city": "Shanghai", "district": "Pudong", "line1": "1 Century Ave", "postcode": "200120"},
     "lines": [{"sku": "SKU-0001", "quantity": 2, "unit_price": "59.00"}],
     "freight": "10.00", "coupon": "5.00", "declared_total": "123.00",
     "payment": {"transaction_id": "PAY-889", "amount": "123.00", "method": "alipay"}}

Webhooks are signed with HMAC-SHA256 over the raw body, sent as
``X-OMS-Signature: sha256=<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from oms_engine import CanonicalOrder, MoneyError, ParsedPayload, hookimpl, to_minor

MONEY_FIELDS = ("freight", "tax", "coupon", "gift_card", "points", "declared_total")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _minor(obj: dict[str, Any], key: str, currency: str, where: str) -> None:
    if key in obj and obj[key] is not None:
        try:
            obj[key] = to_minor(obj[key], currency)
        except MoneyError as exc:
            raise ValueError(f"{where}{key}: {exc}") from None


class JsonChannel:
    name = "json"

    def parse(self, body: bytes) -> list[ParsedPayload]:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            return [ParsedPayload(None, error=f"invalid JSON{where}: {getattr(exc, 'msg', exc)}")]
        items = data if isinstance(data, list) else [data]
        return [self._one(item) for item in items]

    def _one(self, item: Any) -> ParsedPayload:
        if not isinstance(item, dict):
            return ParsedPayload(None, error=f"an order must be a JSON object, got {type(item).__name__}")
        ext = item.get("external_id")
        ext_id = str(ext) if ext is not None else None
        try:
            obj = dict(item)
            obj["channel"] = self.name
            currency = str(obj.get("currency", "")).upper()
            if len(currency) != 3:
                raise ValueError("currency: a 3-letter ISO 4217 code is required")
            for key in MONEY_FIELDS:
                _minor(obj, key, currency, "")
            lines = obj.get("lines")
            if isinstance(lines, list):
                obj["lines"] = [dict(ln) if isinstance(ln, dict) else ln for ln in lines]
                for i, ln in enumerate(obj["lines"]):
                    if isinstance(ln, dict):
                        _minor(ln, "unit_price", currency, f"lines.{i}.")
            if isinstance(obj.get("payment"), dict):
                obj["payment"] = dict(obj["payment"])
                _minor(obj["payment"], "amount", currency, "payment.")
            order = CanonicalOrder.model_validate(obj)
        except ValidationError as exc:
            return ParsedPayload(ext_id, error=_describe(exc), raw=item)
        except ValueError as exc:
            return ParsedPayload(ext_id, error=str(exc), raw=item)
        return ParsedPayload(order.external_id, order=order, raw=item)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        given = {k.lower(): v for k, v in headers.items()}.get("x-oms-signature", "")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given, expected)


@hookimpl(trylast=True)
def oms_register_channels(register: Any) -> None:
    register(JsonChannel())

"""The WooCommerce channel: orders as the WooCommerce REST API v3 gives them, taken in unmodified.

A payload is one order object (``GET /wp-json/wc/v3/orders/<id>``, and the body of the ``order.created`` and
``order.updated`` webhooks) or a list of them (``GET /wp-json/wc/v3/orders``), UTF-8 JSON. Each order becomes
one canonical order, or an error naming the WooCommerce field that stopped it; a payload of another channel
(Shopify, Amazon, the OMS's own JSON) is refused as not a WooCommerce order. docs/channels/woocommerce.md has
the field-by-field mapping; in short:

* ``id`` is the external id; money is WooCommerce's decimal strings, in minor units of the order's currency,
  exactly: a line's unit price is its ``subtotal`` over its ``quantity``, and one that is not a whole number
  of minor units is an error, never rounded;
* a line's ``subtotal - total`` is a promotion (the codes of ``coupon_lines``), ``discount_total`` the
  coupon, ``total_tax`` the tax (cart, shipping and fee tax), ``shipping_total`` the freight and ``total`` the
  declared total, so a consistent order's totals agree. ``fee_lines`` have no canonical place: an order with
  fees is kept with them in its extensions, and held because its totals then disagree;
* a line without a SKU gets ``variation:<variation_id>`` (or ``product:<product_id>``), to be mapped to the
  catalogue like any channel SKU;
* what the canonical order has no place for is kept in its (or its line's) extensions, within the model's
  bound of 16 KB: the largest fields go first, named under ``not_kept``, and stay in the raw payload.

Webhooks (``POST /api/webhooks/woocommerce``, secret in ``OMS_WEBHOOK_SECRET_WOOCOMMERCE``): WooCommerce
signs the raw body only, ``X-WC-Webhook-Signature: base64(HMAC-SHA256(secret, body))``. It sends no signing
time, and its ``X-WC-Webhook-Delivery-ID`` is neither signed nor unique (a hash of the webhook id and the
current second). So :meth:`WooCommerceChannel.delivery` gives the core the time of receipt, which makes the
core's freshness check pass always, and a delivery id made of WooCommerce's and the signature's first
characters: a byte-identical second copy within the core's window is refused (409), two different bodies in
one second are not. Replays of a captured delivery cannot be told from a new one: what stops them changing
anything is that intake takes an order once (a re-send is a duplicate).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from oms_engine import NOT_KEPT, CanonicalOrder, ChannelReport, JsonRejected, ParsedPayload, fit_extensions, hookimpl
from oms_engine import read_json as loads

from .report_api import woocommerce_report

NAME = "woocommerce"
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
DELIVERY_HEADER = "X-WC-Webhook-Delivery-ID"
_PING = re.compile(rb"webhook_id=[0-9]{1,20}")

_TEXT_LIMITS = {"name": 200, "note": 4000, "order_type": 32, "channel_status": 64, "sku": 64, "property_name": 200,
                "property_value": 2000}
MAX_PROPERTIES = 50
MAX_QUANTITY = 100_000

# Statuses in which WooCommerce has taken the money (or, for cash on delivery, will collect it at the door).
PAID_STATUSES = frozenset({"processing", "completed"})
# Statuses in which an order must not be paid for and shipped, whatever date_paid_gmt says: a refunded order
# was paid and paid back.
VOID_STATUSES = frozenset({"cancelled", "refunded", "failed", "trash", "checkout-draft"})
# The shop has given the order up: the OMS stops it too (a refunded order may have shipped: its refunds say).
CANCELLED_STATUSES = frozenset({"cancelled", "failed", "trash"})

# Keys only a WooCommerce order has: Shopify, Amazon and the OMS's JSON have none of them (a Shopify order has
# line_items too).
_MARKERS = frozenset({"order_key", "date_created_gmt", "created_via", "prices_include_tax", "billing",
                      "shipping_total", "discount_total", "cart_tax", "customer_note", "date_paid_gmt", "fee_lines",
                      "coupon_lines"})
# Order keys whose value is in a canonical field (the extensions would only repeat them); some are put back
# when the canonical field could not take them (see _Reader).
_ORDER_MAPPED = frozenset({"id", "currency", "status", "created_via", "date_created_gmt", "customer_note", "line_items",
                           "total", "total_tax", "shipping_total", "discount_total", "payment_method", "transaction_id",
                           "date_paid_gmt", "customer_id", "shipping"})
# Derived from other fields, or WooCommerce's own bookkeeping: nobody needs them from the OMS.
_ORDER_NOISE = frozenset({"currency_symbol", "cart_hash"})
# Dropped last when the extensions are too large: what explains the order's amounts and who it is for.
_PROTECTED = frozenset({"number", "order_key", "fee_lines", "coupon_lines", "refunds", "billing", "shipping",
                        "payment_method_title", "not_kept"})
_LINE_MAPPED = frozenset({"id", "name", "quantity", "subtotal", "total", "sku", "meta_data"})
_SHIPPING_MAPPED = frozenset({"first_name", "last_name", "address_1", "address_2", "city", "state", "postcode",
                              "country"})

# What the canonical model refuses in text: C0 and C1 control characters and lone surrogates (in a note and in
# extension values, line breaks and tabs are allowed).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# WooCommerce's *_gmt times: UTC, written without an offset.
_GMT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?", re.ASCII)
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value if not isinstance(value, str) or len(value) <= limit else value[:limit])
    return text + ("..." if isinstance(value, str) and len(value) > limit else "")


def _fit_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _what_it_is(item: object) -> str:
    """What a payload that is not a WooCommerce order looks like, for the error."""
    if not isinstance(item, dict):
        return _kind(item)
    keys = set(item)
    if keys & {"external_id", "lines", "ship_to"}:
        return "the OMS's own JSON order format (channel 'json')"
    if keys & {"order", "orders", "refund", "fulfillment", "risks"} or keys & {"financial_status", "total_price",
                                                                                "total_line_items_price"}:
        return "a Shopify payload"
    if keys & {"payload", "AmazonOrderId", "OrderItems"}:
        return "an Amazon Selling Partner API response"
    if keys == {"action", "arg"}:
        return "a WooCommerce action webhook (it carries no order)"
    shown = ", ".join(sorted(str(k)[:30] for k in keys)[:8]) or "none"
    return f"an object with the keys {shown}{', ...' if len(keys) > 8 else ''}"


def _not_woocommerce(item: object) -> str:
    return ("not a WooCommerce order: expected a WooCommerce REST API v3 order object (id, order_key, status, "
            "currency, line_items, billing, shipping, total...) or a list of them, as the REST API and its "
            f"order.created / order.updated webhooks send; got {_what_it_is(item)}")


def _order_id(item: dict[str, Any]) -> str | None:
    value = item.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    return None


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


class _Reader:
    """One WooCommerce order read into the canonical order's fields; what is wrong is kept per WooCommerce
    field, so that every problem of the order is reported at once."""

    def __init__(self, item: dict[str, Any], external_id: str | None) -> None:
        self.item = item
        self.external_id = external_id
        self.errors: dict[str, str] = {}       # WooCommerce field -> what is wrong
        self.where: dict[str, str] = {}        # canonical field -> the WooCommerce field it came from
        self.currency: str | None = None
        self.digits = 0
        self.extensions: dict[str, Any] = {}

    def error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def obj(self, parent: Mapping[str, Any], key: str, field: str) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(field, f"an object is expected, not {_kind(value)}")
            return {}
        return value

    def items(self, parent: Mapping[str, Any], key: str, field: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(field, f"a list is expected, not {_kind(value)}")
            return []
        return value

    def text(self, parent: Mapping[str, Any], key: str, field: str) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.error(field, f"a string is expected, not {_kind(value)}")
            return ""
        return value

    def money(self, parent: Mapping[str, Any], key: str, field: str) -> int | None:
        """The amount ``parent[key]`` in minor units; None when absent or wrong (then an error is kept)."""
        value = parent.get(key)
        if value is None or self.currency is None:
            return None
        try:
            return CanonicalOrder.minor_units(value, self.currency)
        except ValueError as exc:
            self.error(field, str(exc))
            return None

    def instant(self, key: str) -> str | None:
        """The WooCommerce time ``item[key]`` (a ``*_gmt`` one: UTC, written without an offset) as RFC 3339."""
        value = self.item.get(key)
        if value in (None, ""):
            return None
        if isinstance(value, str) and _GMT.fullmatch(value.removesuffix("Z")):
            return value.removesuffix("Z") + "Z"     # a relay that added the Z has said the same
        self.error(key, f"{_shown(value)} is not a WooCommerce UTC time such as \"2017-03-22T19:28:02\"")
        return None

    def per_unit(self, amount: int, quantity: int) -> str:
        exact = Decimal(amount) / Decimal(quantity) / (Decimal(10) ** self.digits)
        shown = exact.quantize(Decimal(1).scaleb(-(self.digits + 4)))
        return f"{shown}".rstrip("0") + ("" if shown == exact else "\u2026")

    # -- the parts of the order ----------------------------------------------------------------------------
    def read_currency(self) -> None:
        value = self.item.get("currency")
        try:
            self.digits = CanonicalOrder.currency_digits(value)
            self.currency = value if isinstance(value, str) else None
        except ValueError as exc:
            self.error("currency", str(exc))

    def customer(self, billing: dict[str, Any]) -> dict[str, Any]:
        first = self.text(billing, "first_name", "billing.first_name").strip()
        last = self.text(billing, "last_name", "billing.last_name").strip()
        email = self.text(billing, "email", "billing.email").strip()
        phone = self.text(billing, "phone", "billing.phone").strip()
        customer_id = self.item.get("customer_id")
        if isinstance(customer_id, int) and not isinstance(customer_id, bool) and customer_id > 0:
            # Prefixed: customer refs are the OMS's across channels, and shop 42's customer 42 is nobody else's.
            ref = f"{NAME}:{customer_id}"
            self.where["customer.ref"] = "customer_id"
        elif customer_id not in (None, 0) and not (isinstance(customer_id, int) and not isinstance(customer_id, bool)):
            self.error("customer_id", f"a whole number is expected (0 for a guest), not {_kind(customer_id)}")
            ref = "?"
        elif email:
            # A guest is known by the address, whatever its case: the same guest is one customer.
            ref = email.lower()
            self.where["customer.ref"] = "billing.email"
        else:
            # No account and no address (an order keyed in by the shop): a customer of its own.
            ref = f"{NAME}:guest:{self.external_id}"
        self.where.update({"customer.name": "billing.first_name/last_name", "customer.email": "billing.email",
                           "customer.phone": "billing.phone", "customer": "billing"})
        return {"ref": ref, "name": " ".join(p for p in (first, last) if p), "email": email, "phone": phone}

    def ship_to(self, shipping: dict[str, Any], billing: dict[str, Any]) -> dict[str, Any]:
        def text(key: str) -> str:
            return self.text(shipping, key, f"shipping.{key}").strip()

        name = " ".join(p for p in (text("first_name"), text("last_name")) if p)
        # The carrier needs a phone: WooCommerce asks for one with the shipping address only since 5.6.
        phone = text("phone")
        self.where["ship_to.phone"] = "shipping.phone"
        if not phone:
            phone = self.text(billing, "phone", "billing.phone").strip()
            self.where["ship_to.phone"] = "billing.phone"
        fields = {"name": name, "phone": phone, "country": text("country"), "region": text("state"),
                  "city": text("city"), "line1": text("address_1"), "line2": text("address_2"),
                  "postcode": text("postcode")}
        self.where.update({"ship_to.name": "shipping.first_name/last_name", "ship_to.country": "shipping.country",
                           "ship_to.region": "shipping.state", "ship_to.city": "shipping.city",
                           "ship_to.line1": "shipping.address_1", "ship_to.line2": "shipping.address_2",
                           "ship_to.postcode": "shipping.postcode", "ship_to": "shipping"})
        extra = {k: v for k, v in shipping.items()
                 if k not in _SHIPPING_MAPPED and k != "phone" and v not in ("", None)}
        if extra:
            self.extensions["shipping"] = extra
        return fields

    def coupon_codes(self) -> list[str]:
        codes = []
        for i, c in enumerate(self.items(self.item, "coupon_lines", "coupon_lines")):
            code = c.get("code") if isinstance(c, dict) else None
            if isinstance(code, str) and code and not _CONTROL.search(code):
                codes.append(code)
            elif not isinstance(c, dict):
                self.error(f"coupon_lines.{i}", f"an object is expected, not {_kind(c)}")
        return list(dict.fromkeys(codes))

    def line(self, i: int, k: int, ln: Any, codes: list[str]) -> dict[str, Any] | None:
        """WooCommerce's line ``i`` as the canonical order's line ``k`` (they differ after a line that is
        no object: the order is refused then, but the rest of its errors still name the right line)."""
        path = f"line_items.{i}"
        if not isinstance(ln, dict):
            self.error(path, f"an object is expected, not {_kind(ln)}")
            return None
        extensions: dict[str, Any] = {key: v for key, v in ln.items() if key not in _LINE_MAPPED}
        self.where.update({f"lines.{k}": path, f"lines.{k}.quantity": f"{path}.quantity",
                           f"lines.{k}.unit_price": f"{path}.subtotal", f"lines.{k}.name": f"{path}.name",
                           f"lines.{k}.channel_line_id": f"{path}.id", f"lines.{k}.promotions": f"{path}.total",
                           f"lines.{k}.properties": f"{path}.meta_data", f"lines.{k}.sku": f"{path}.sku"})
        quantity = ln.get("quantity")
        if not (isinstance(quantity, int) and not isinstance(quantity, bool) and 1 <= quantity <= MAX_QUANTITY):
            self.error(f"{path}.quantity", f"a whole number from 1 to {MAX_QUANTITY:,} is expected, not "
                                           f"{_shown(quantity)}")
            quantity = None
        subtotal = self.money(ln, "subtotal", f"{path}.subtotal")
        total = self.money(ln, "total", f"{path}.total")
        basis, field = (subtotal, "subtotal") if subtotal is not None else (total, "total")
        promoted = 0
        if subtotal is not None and total is not None:
            if total > subtotal:
                # Raised after the fact (no canonical place for a surcharge): the line is charged its total.
                basis, field = total, "total"
                extensions["subtotal"] = ln["subtotal"]
            else:
                promoted = subtotal - total
        unit_price = None
        if basis is None and self.currency is not None and not any(f.startswith(f"{path}.") for f in self.errors):
            self.error(f"{path}.subtotal", "required: the line's price before discounts, a decimal string such "
                                            "as \"12.00\"")
        elif basis is not None and quantity is not None:
            unit_price, rest = divmod(basis, quantity)
            if rest:
                self.error(f"{path}.{field}", f"{ln[field]} {self.currency} for {quantity} units is "
                           f"{self.per_unit(basis, quantity)} a unit, not a whole number of minor units: "
                           "the OMS keeps whole unit prices and does not round them")
                unit_price = None
        line: dict[str, Any] = {"sku": self.sku(ln, path, extensions), "quantity": quantity or 1,
                                "unit_price": unit_price or 0}
        line_id = ln.get("id")
        if isinstance(line_id, int) and not isinstance(line_id, bool):
            line["channel_line_id"] = str(line_id)
        elif line_id is not None:
            self.error(f"{path}.id", f"a whole number is expected, not {_kind(line_id)}")
        name = self.text(ln, "name", f"{path}.name")
        if name:
            # WooCommerce writes its product names with HTML entities ("Ship Your Idea &ndash; Black").
            shown = html.unescape(name)
            line["name"] = _fit_text(shown, _TEXT_LIMITS["name"])
            if line["name"] != shown:
                extensions["name"] = shown
        if promoted:
            line["promotions"] = [self.promotion(promoted, codes)]
        properties, hidden = self.properties(ln, path)
        if properties:
            line["properties"] = properties
        if hidden:
            extensions["meta_data"] = hidden
        line["extensions"] = fit_extensions(extensions, protected=_PROTECTED)
        return line

    def sku(self, ln: dict[str, Any], path: str, extensions: dict[str, Any]) -> str:
        sku = ln.get("sku")
        if isinstance(sku, str) and sku and len(sku) <= _TEXT_LIMITS["sku"] and not _CONTROL.search(sku):
            return sku
        if sku not in ("", None):
            extensions["sku"] = sku       # too long, or not text: the line is known by its product instead
        for key, prefix in (("variation_id", "variation"), ("product_id", "product")):
            value = ln.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return f"{prefix}:{value}"
        self.error(f"{path}.sku", f"{_shown(sku)} is no SKU of 1 to 64 characters, and the line has no "
                                  "product_id or variation_id to stand in for it")
        return "?"

    def promotion(self, amount: int, codes: list[str]) -> dict[str, Any]:
        # WooCommerce does not say which coupon took what off a line: with one coupon it is that one's.
        if len(codes) == 1 and len(codes[0]) <= 64:
            return {"code": codes[0], "kind": "coupon", "amount": amount}
        if codes:
            return {"name": _fit_text(", ".join(codes), 200), "kind": "coupon", "amount": amount}
        return {"kind": "discount", "amount": amount}

    def properties(self, ln: dict[str, Any], path: str) -> tuple[list[dict[str, str]], list[Any]]:
        """The meta WooCommerce shows the customer (its key not starting with "_", a scalar value, not empty) as
        properties; the rest, and any a property cannot hold, as they were sent."""
        properties: list[dict[str, str]] = []
        hidden: list[Any] = []
        for meta in self.items(ln, "meta_data", f"{path}.meta_data"):
            key = meta.get("key") if isinstance(meta, dict) else None
            value = meta.get("value") if isinstance(meta, dict) else None
            shown: str | None = None
            if isinstance(value, str):
                shown = value
            elif isinstance(value, bool | int | float):
                shown = json.dumps(value)       # WooCommerce shows any scalar; a number as written
            fits = (isinstance(key, str) and not key.startswith("_") and 1 <= len(key) <= _TEXT_LIMITS["property_name"]
                    and not _CONTROL.search(key) and shown not in (None, "")
                    and len(shown) <= _TEXT_LIMITS["property_value"] and not _CONTROL_BUT_BREAKS.search(shown)
                    and len(properties) < MAX_PROPERTIES)
            if fits:
                assert isinstance(key, str) and shown is not None
                properties.append({"name": key, "value": shown})
            else:
                hidden.append(meta)
        return properties, hidden

    def refunded(self) -> int:
        """What the order's refunds paid back (WooCommerce lists each with a negative total)."""
        paid_back = 0
        refunds = self.item.get("refunds")
        for i, refund in enumerate(refunds if isinstance(refunds, list) else []):
            amount = refund.get("total") if isinstance(refund, dict) else None
            if isinstance(amount, str) and self.currency is not None:
                try:
                    paid_back += CanonicalOrder.minor_units(amount.strip().removeprefix("-"), self.currency)
                except ValueError as exc:
                    self.errors.setdefault(f"refunds.{i}.total", str(exc))
        return paid_back

    def paid(self, total: int | None) -> dict[str, Any] | None:
        status = self.item.get("status")
        status = status if isinstance(status, str) else ""     # a wrong one is reported as channel_status
        paid_gmt = self.item.get("date_paid_gmt")
        if status in VOID_STATUSES or total is None:
            return None
        if paid_gmt in (None, "") and status not in PAID_STATUSES:
            return None
        oid = self.external_id
        payment: dict[str, Any] = {"amount": total}
        txn = self.item.get("transaction_id")
        if isinstance(txn, str) and txn and len(txn) <= 128 and not _CONTROL.search(txn):
            payment["transaction_id"] = txn
            self.where["payment.transaction_id"] = "transaction_id"
        else:
            # Bank transfer, cheque and cash on delivery record none: a stand-in that a re-send repeats.
            key = self.item.get("order_key")
            stand_in = f"{NAME}:{oid}:{key}" if isinstance(key, str) and key and len(key) <= 80 \
                and not _CONTROL.search(key) else f"{NAME}:{oid}"
            payment["transaction_id"] = stand_in
            self.where["payment.transaction_id"] = "order_key"
            if txn not in ("", None):
                self.extensions["transaction_id"] = txn
        method = self.item.get("payment_method")
        if method not in (None, ""):
            payment["method"] = method
        self.where.update({"payment.method": "payment_method", "payment.amount": "total",
                           "payment.paid_at": "date_paid_gmt"})
        payment["paid_at"] = self.instant("date_paid_gmt")
        return payment

    def read(self) -> dict[str, Any]:
        """The canonical order's fields; ``errors`` says what is wrong with the WooCommerce ones."""
        item = self.item
        self.read_currency()
        billing = self.obj(item, "billing", "billing")
        shipping = self.obj(item, "shipping", "shipping")
        codes = self.coupon_codes()
        raw_lines = item.get("line_items")
        if not isinstance(raw_lines, list):
            self.error("line_items", f"the order's items, a list, are required, not {_kind(raw_lines)}")
            raw_lines = []
        self.where["lines"] = "line_items"
        lines: list[dict[str, Any]] = []
        for i, ln in enumerate(raw_lines):
            line = self.line(i, len(lines), ln, codes)
            if line is not None:
                lines.append(line)
        total = self.money(item, "total", "total")
        if "total" not in item:
            self.error("total", "required: what the customer owes, a decimal string such as \"29.35\"")
        obj: dict[str, Any] = {
            "channel": NAME, "external_id": self.external_id, "currency": self.currency or "XXX",
            "customer": self.customer(billing), "ship_to": self.ship_to(shipping, billing), "lines": lines,
            "tax": self.money(item, "total_tax", "total_tax") or 0,
            "coupon": self.money(item, "discount_total", "discount_total") or 0,
            "declared_total": total,
        }
        self.where.update({"external_id": "id", "currency": "currency", "tax": "total_tax", "coupon": "discount_total",
                           "declared_total": "total", "freight": "shipping_total", "placed_at": "date_created_gmt",
                           "note": "customer_note", "order_type": "created_via", "channel_status": "status"})
        obj["freight"] = self.freight()
        obj["placed_at"] = self.instant("date_created_gmt")
        mapped = set(_ORDER_MAPPED)
        note = self.text(item, "customer_note", "customer_note")
        obj["note"] = _fit_text(note, _TEXT_LIMITS["note"])
        if obj["note"] != note:
            mapped.discard("customer_note")
        for key, field in (("created_via", "order_type"), ("status", "channel_status")):
            word = self.text(item, key, key)
            obj[field] = _fit_text(word, _TEXT_LIMITS[field])
            if obj[field] != word:
                mapped.discard(key)
        # What the shop says after the order was placed: the OMS answers it as an update (orders/updates.py).
        obj["cancelled"] = isinstance(item.get("status"), str) and item["status"] in CANCELLED_STATUSES
        obj["refunded"] = self.refunded()
        payment = self.paid(total)
        if payment is not None:
            obj["payment"] = payment
        else:
            # No payment for them to go in (not paid yet; or paid, then cancelled or refunded): kept as sent.
            mapped -= {"payment_method", "transaction_id", "date_paid_gmt"}
        extensions = {k: v for k, v in item.items() if k not in mapped and k not in _ORDER_NOISE}
        obj["extensions"] = fit_extensions({**extensions, **self.extensions}, protected=_PROTECTED)
        return obj

    def freight(self) -> int | None:
        """``shipping_total``; failing it, the shipping lines' totals. None (the OMS charges its own) only when
        the order says nothing of shipping at all."""
        if "shipping_total" in self.item:
            return self.money(self.item, "shipping_total", "shipping_total") or 0
        lines = self.items(self.item, "shipping_lines", "shipping_lines")
        if "shipping_lines" not in self.item:
            return None
        amounts = [self.money(s, "total", f"shipping_lines.{i}.total") if isinstance(s, dict) else None
                   for i, s in enumerate(lines)]
        self.where["freight"] = "shipping_lines"
        return sum(a for a in amounts if a is not None)

    def problems(self, exc: ValidationError) -> list[str]:
        """The model's errors named by the WooCommerce field they came from, those already reported left out."""
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # The nearest WooCommerce field: "lines.0.properties.2.name" came from "line_items.0.meta_data".
            field = next((self.where[_loc(loc[:n])] for n in range(len(loc), 0, -1) if _loc(loc[:n]) in self.where),
                         _loc(loc))
            if field in self.errors:
                continue
            msg = err["msg"].removeprefix("Value error, ")
            out.append(f"{field}: {msg}" if field else msg)
        # Said once: one WooCommerce field may fill two canonical ones (billing.phone: the buyer's, the carrier's).
        return list(dict.fromkeys(out))


def _extension_errors(exc: ValidationError) -> list[tuple[Any, ...]] | None:
    """The locations of the extension fields the model refused, when those are all it refused."""
    locs = [tuple(e["loc"]) for e in exc.errors()]
    found = []
    for loc in locs:
        if loc[:1] == ("extensions",):
            found.append(("extensions",))
        elif len(loc) >= 3 and loc[0] == "lines" and loc[2] == "extensions":
            found.append(loc[:3])
        else:
            return None
    return found


def _without(obj: dict[str, Any], locs: list[tuple[Any, ...]], exc: ValidationError) -> dict[str, Any]:
    """``obj`` with the refused extensions replaced by a note of why."""
    why = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())[:150]
    note = {NOT_KEPT: [f"refused by the OMS: {why}", "all of it is in the raw payload"]}
    obj = dict(obj, lines=[dict(ln) for ln in obj["lines"]])
    for loc in locs:
        if loc == ("extensions",):
            obj["extensions"] = note
        else:
            obj["lines"][loc[1]]["extensions"] = note
    return obj


def _wp_specialchars_decode(text: str) -> str:
    """What WordPress's wp_specialchars_decode(text, ENT_QUOTES) makes of ``text``: WooCommerce signs with the
    secret so decoded. One pass, as PHP's strtr: "&amp;lt;" becomes "&lt;", not "<"."""
    if "&" not in text:
        return text
    return _ENTITY.sub(lambda m: _DECODED[(m.group(1) or m.group(2) or m.group(3) or "").lower()], text)


_ENTITY = re.compile(r"&(?:#0*(39|34|60|62|38);|#[xX]0*(27|22|26);|(lt|gt|amp|quot);)")
_DECODED = {"39": "'", "34": '"', "60": "<", "62": ">", "38": "&", "27": "'", "22": '"', "26": "&",
            "lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class WooCommerceChannel:
    name = NAME

    def report(self, account: Any, message: ChannelReport, http: Any) -> str | None:
        """Tell the shop what became of one of its orders (channels/reports.py; the calls are report_api.py's)."""
        return woocommerce_report(account, message, http)

    def parse(self, body: bytes) -> list[ParsedPayload]:
        try:
            data = loads(body)
        except JsonRejected as exc:
            error = "invalid JSON" + str(exc).removeprefix("malformed JSON")
            if body.startswith(b"webhook_id="):
                error += ("; this is the ping WooCommerce sends, unsigned, when a webhook is saved: it carries no "
                          "order")
            return [ParsedPayload(None, error=error)]
        items = data if isinstance(data, list) else [data]
        return [self._one(item) for item in items]

    def _one(self, item: Any) -> ParsedPayload:
        if not isinstance(item, dict) or not (_MARKERS & set(item)):
            if isinstance(item, dict) and set(item) == {"id"}:
                return ParsedPayload(_order_id(item), raw=item, error=(
                    "a WooCommerce order.deleted notice: it carries only the order's id, no order to take in"))
            # No external id: another channel's "id" is not a WooCommerce order's.
            return ParsedPayload(None, raw=item, error=_not_woocommerce(item))
        external_id = _order_id(item)
        reader = _Reader(item, external_id)
        if external_id is None:
            reader.error("id", f"the order's id, a whole number above 0, is required, not {_shown(item.get('id'))}")
        obj = reader.read()
        obj["external_id"] = external_id or "?"
        order = None
        problems: list[str] = []
        try:
            order = CanonicalOrder.model_validate(obj)
        except ValidationError as exc:
            # Extension fields are the channel's extras: one the model refuses is dropped and named, and the
            # order is still taken in.
            locs = _extension_errors(exc)
            if locs:
                try:
                    order = CanonicalOrder.model_validate(_without(obj, locs, exc))
                except ValidationError as again:
                    problems = reader.problems(again)
            else:
                problems = reader.problems(exc)
        if reader.errors or problems or order is None:
            text = [f"{field}: {msg}" for field, msg in reader.errors.items()] + problems
            return ParsedPayload(external_id, error="; ".join(text) or "the order could not be read", raw=item)
        return ParsedPayload(order.external_id, order=order, raw=item)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """True when X-WC-Webhook-Signature is base64(HMAC-SHA256(secret, body)), as WooCommerce signs."""
        given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
        if not (secret and given):
            # An empty key is one anybody can sign with.
            return False
        key = _wp_specialchars_decode(secret).encode("utf-8", "surrogateescape")
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
        # As bytes: compare_digest refuses a str with non-ASCII characters, and header values may have them.
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)

    def delivery(self, headers: Mapping[str, str]) -> tuple[str, int | None] | None:
        """The delivery's id and time for the core's replay and freshness checks (module docstring).

        WooCommerce's delivery id is a hash of the webhook id and the current second, so two deliveries of one
        webhook in one second share it: the signature's first characters (a digest of the body) are added, so
        only a byte-identical copy is taken for a replay. WooCommerce sends no time at all, and signs neither:
        None says so, and the core checks replays of the id only.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        wc_id = lowered.get(DELIVERY_HEADER.lower(), "")
        if not wc_id:
            return None
        if not _VISIBLE_ASCII.fullmatch(wc_id):
            raise ValueError(f"{DELIVERY_HEADER} must be 1 to 64 visible ASCII characters (WooCommerce sends a hash "
                             "of 32 hex digits)")
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        key = f"{wc_id}:{signature[:24]}" if _BASE64.fullmatch(signature) else wc_id
        return key, None

    # WooCommerce retries a delivery until it gets a 2xx: a copy of one stored is answered as received.
    replays_ok = True

    def ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        """WooCommerce's check of the address when a webhook is saved: ``webhook_id=<n>``, unsigned."""
        lowered = {k.lower() for k in headers}
        return SIGNATURE_HEADER.lower() not in lowered and _PING.fullmatch(body) is not None


@hookimpl(trylast=True)
def oms_register_channels(register: Any) -> None:
    register(WooCommerceChannel())

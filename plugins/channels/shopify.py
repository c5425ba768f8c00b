"""The Shopify channel: orders of the REST Admin API, as Shopify sends them (docs/channels/shopify.md).

A payload is, unmodified, any of::

    {"order": {...}}          GET /admin/api/<version>/orders/<id>.json
    {"orders": [{...}, ...]}  GET /admin/api/<version>/orders.json
    {...}                     the order itself: the body of the orders/create (orders/paid...) webhook

(a JSON list of bare orders is read too), and gives one result per order. Amounts are the shop-currency
ones (``currency``, the plain amount fields, ``shop_money`` of a ``*_set`` field when the plain one is
absent), turned into minor units exactly; what the canonical order has no place for is kept in its
extension fields, never refused. A payload of anything else (a refund, a fulfillment, another channel's
order) is refused with an error saying what it is and what was expected. A channel account of this adapter
is also pulled from the shop's Admin API (``pull``, in pull_api.py); the pages are read by the same ``parse``.

Webhook signing (``POST /api/webhooks/shopify``, the secret in ``OMS_WEBHOOK_SECRET_SHOPIFY``): Shopify
sends ``X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(secret, raw body))``. The signature covers the body only:
the delivery id (``X-Shopify-Webhook-Id``) and time (``X-Shopify-Triggered-At``) that the core checks for
freshness and replays are not signed, so against someone who captured a delivery those checks guard
nothing; what holds then is that an order taken in twice is one order (channel and order id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from oms_engine import CanonicalOrder, ChannelReport, JsonRejected, ParsedPayload, PulledPage, hookimpl
from oms_engine import read_json as loads

from .pull_api import shopify_pull
from .report_api import shopify_report

log = logging.getLogger(__name__)

NAME = "shopify"
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
DELIVERY_ID_HEADER = "X-Shopify-Webhook-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"

EXPECTED = ('expected a Shopify REST Admin API order: {"order": {...}}, {"orders": [...]} or the order object '
            "itself (id, line_items, total_price, financial_status...)")

# What Shopify's other resources are, by the name it wraps them in.
WRAPPERS = {"refund": "a Shopify refund", "refunds": "Shopify refunds", "fulfillment": "a Shopify fulfillment",
            "fulfillments": "Shopify fulfillments", "risks": "Shopify order risks", "risk": "a Shopify order risk",
            "transaction": "a Shopify transaction", "transactions": "Shopify transactions",
            "draft_order": "a Shopify draft order", "draft_orders": "Shopify draft orders",
            "checkout": "a Shopify checkout", "checkouts": "Shopify checkouts", "customer": "a Shopify customer",
            "customers": "Shopify customers", "product": "a Shopify product", "products": "Shopify products"}

# The financial statuses in which the customer has paid the order's total (some of it may have been given back
# since: the payment still happened). "refunded" and "voided" are left out on purpose: nothing is left paid, and
# an order recorded as paid would be shipped.
PAID = frozenset({"paid", "partially_refunded"})

# The core refuses extension fields over 16 KB as JSON, nested deeper than 8, with keys over 64 characters
# (orders/canonical.py; not part of the public API, so mirrored here). A little under the limit, so that the
# list of what was left out still fits.
EXTENSION_BUDGET = 15_000
EXTENSION_DEPTH = 8
KEY_CHARS = 64
# What goes first when an order's fields do not fit: Shopify's own records of things the OMS does itself or
# keeps elsewhere (fulfillments, refunds), then the bulkiest copies. The raw payload keeps all of it.
DROP_FIRST = ("fulfillments", "refunds", "customer", "discount_applications", "client_details", "billing_address",
              "shipping_lines")

# Top-level keys the canonical order holds (or that only repeat what it holds): not copied into extensions.
ORDER_MAPPED = frozenset({
    "id", "currency", "line_items", "customer", "email", "contact_email", "phone", "shipping_address",
    "shipping_lines", "note", "total_price", "financial_status", "fulfillment_status", "source_name",
    "admin_graphql_api_id",
})
LINE_MAPPED = frozenset({"id", "sku", "quantity", "price", "name", "properties", "discount_allocations",
                         "admin_graphql_api_id"})
ADDRESS_MAPPED = frozenset({"name", "phone", "country_code", "province", "city", "address1", "address2", "zip"})

# Text a canonical field takes: no control characters but line breaks and tabs in multi-line text (none at all
# in single-line text), no lone surrogates.
_NOT_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_COUNTRY = re.compile(r"[A-Z]{2}")
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}")
_ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:?\d{2})", re.ASCII)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _shown(value: object, limit: int = 40) -> str:
    """``value`` quoted for an error message, cut to ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "..."
    return repr(value)[:limit + 2]


def _line(value: object, limit: int) -> str:
    """Descriptive single-line text as a canonical field takes it: what is not text becomes its text or nothing,
    control characters become spaces, cut to ``limit``. A name or an address is never a reason to refuse an
    order; the raw payload keeps what was sent."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    text = value if isinstance(value, str) else str(value)
    return _NOT_SINGLE_LINE.sub(" ", text).strip()[:limit]


def _id(value: object) -> str | None:
    """A Shopify id (a number, or its text) as text; None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _money_bag(key: str, value: object) -> bool:
    """``price_set`` and the like: the amount again in shop and presentment money."""
    return key.endswith("_set") and isinstance(value, dict) and ("shop_money" in value or "presentment_money" in value)


def _extension_value(value: object, depth: int) -> Any:
    """``value`` as an extension field takes it: JSON values, texts without control characters, integers that
    fit 64 bits (a larger one becomes its text), containers no deeper than the core allows (deeper ones become
    their JSON text); money bags and GraphQL ids, which repeat what is there, are left out."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _NOT_MULTI_LINE.sub("\ufffd", value)
    if isinstance(value, int):
        return value if -(2 ** 63) <= value < 2 ** 63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | dict):
        if depth >= EXTENSION_DEPTH:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
            return _NOT_MULTI_LINE.sub("\ufffd", text)
        if isinstance(value, list):
            return [_extension_value(v, depth + 1) for v in value]
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _money_bag(key, item) or key == "admin_graphql_api_id":
                continue
            out[_extension_key(key)] = _extension_value(item, depth + 1)
        return out
    return str(value)


def _extension_key(key: object) -> str:
    text = _NOT_SINGLE_LINE.sub("?", str(key))[:KEY_CHARS]
    return text or "_"


def _size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def _fit(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` within the extension budget: the keys of :data:`DROP_FIRST`, then the largest, left out until
    it fits, their names listed under ``_omitted``."""
    total = _size(fields)
    if total <= EXTENSION_BUDGET:
        return fields
    # Each field's share of the JSON text (its key, a colon and a comma), counted once: a payload of many
    # fields is not measured again after each one left out.
    weight = {k: _size(k) + _size(v) + 2 for k, v in fields.items()}
    order = [k for k in DROP_FIRST if k in fields]
    order += sorted((k for k in fields if k not in DROP_FIRST), key=lambda k: -weight[k])
    omitted: list[str] = []
    names: list[str] = []
    for key in order:
        del fields[key]
        total -= weight[key]
        omitted.append(key)
        # Names, not a reason to go over: a payload of thousands of fields is named in part.
        names = omitted if len(omitted) <= 50 else [*omitted[:50], f"and {len(omitted) - 50} more"]
        if total + _size({"_omitted": names}) <= EXTENSION_BUDGET:
            break
    fields["_omitted"] = names
    return fields


def _extensions(obj: Mapping[str, Any], skip: frozenset[str] | set[str], depth: int = 1) -> dict[str, Any]:
    """The fields of ``obj`` but ``skip`` as extension values, at ``depth`` (1: the fields' top level)."""
    return {_extension_key(k): _extension_value(v, depth) for k, v in obj.items()
            if k not in skip and not _money_bag(k, v) and k != "admin_graphql_api_id"}


def _what_else(obj: Mapping[str, Any]) -> str | None:
    """What a bare object is when it is plainly not a Shopify order; None when it may be one."""
    gid = obj.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid.startswith("gid://shopify/"):
        kind = gid.removeprefix("gid://shopify/").split("/", 1)[0]
        return None if kind == "Order" else f"a Shopify {kind}"
    if "AmazonOrderId" in obj or ("payload" in obj and isinstance(obj["payload"], dict)):
        return "an Amazon Selling Partner API order or response"
    if "order_key" in obj or ("date_created" in obj and "total" in obj):
        return "a WooCommerce order"
    if "external_id" in obj and "lines" in obj:
        return "an order in the OMS's own JSON format (send it to the 'json' channel)"
    if "order_id" in obj or "invoice_url" in obj or "abandoned_checkout_url" in obj:
        # Refunds, fulfillments, risks and transactions belong to an order; draft orders and checkouts
        # become one.
        for marks, what in ((("refund_line_items",), "a Shopify refund"),
                            (("tracking_number", "tracking_numbers", "tracking_company"), "a Shopify fulfillment"),
                            (("recommendation", "cause_cancel"), "a Shopify order risk"),
                            (("kind", "gateway", "authorization"), "a Shopify transaction"),
                            (("invoice_url",), "a Shopify draft order"),
                            (("abandoned_checkout_url",), "a Shopify checkout")):
            if any(m in obj for m in marks):
                return what
        return "a record that belongs to a Shopify order (it has order_id), not the order"
    if not any(k in obj for k in ("total_price", "financial_status", "order_number", "total_line_items_price",
                                  "subtotal_price")):
        return "an object with none of a Shopify order's fields (total_price, financial_status, order_number...)"
    return None


def _orders(data: Any) -> list[Any] | str:
    """The order objects of a payload, or what the payload is instead."""
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        return f"{_kind(data)}"
    if len(data) == 1:
        [(key, value)] = data.items()
        if key == "order":
            return [value]
        if key == "orders":
            return value if isinstance(value, list) else f'"orders" holding {_kind(value)}, not a list'
        if isinstance(value, dict | list):
            # Shopify wraps each resource in its name: {"refund": {...}}, {"risks": [...]}.
            wrapped = f"{{{json.dumps(key[:30])}: ...}}"
            return f"{WRAPPERS[key]} ({wrapped})" if key in WRAPPERS else wrapped
    return [data]


class _Order:
    """One Shopify order read into the canonical order's fields; the problems found, by Shopify field."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.errors: dict[str, str] = {}
        # canonical field -> the Shopify field it came from, to name it in the model's errors
        self.source: dict[str, str] = {}
        self.currency: str | None = None

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def money(self, obj: Mapping[str, Any], key: str, path: str) -> int | None:
        """``obj[key]`` (else the shop money of ``obj[key + "_set"]``) in minor units; None when absent. A bad
        amount is recorded and counts as 0, so the rest of the order is still checked."""
        value = obj.get(key)
        if value is None:
            bag = obj.get(key + "_set")
            value = _dict(_dict(bag).get("shop_money")).get("amount")
            path = f"{path}_set.shop_money.amount" if value is not None else path
        if value is None:
            return None
        if self.currency is None:
            return 0
        try:
            return CanonicalOrder.minor_units(value, self.currency)
        except ValueError as exc:
            self.fail(path, str(exc))
            return 0

    def build(self) -> dict[str, Any]:
        o = self.obj
        self.read_currency()
        lines, allotted = self.lines()
        shipping, shipping_off = self.shipping()
        placed_key = "processed_at" if o.get("processed_at") is not None else "created_at"
        self.source["placed_at"] = placed_key
        taxes_included = o.get("taxes_included") is True
        tax = self.money(o, "total_tax", "total_tax")
        declared = self.money(o, "total_price", "total_price")
        order: dict[str, Any] = {
            "channel": NAME, "external_id": _id(o.get("id")), "currency": self.currency or o.get("currency"),
            "placed_at": o.get(placed_key), "customer": self.customer(), "ship_to": self.ship_to(),
            "lines": lines, "freight": shipping, "coupon": self.coupon(allotted, shipping_off),
            # Prices that include tax already hold it: the tax is not added again (it is kept, in extensions).
            "tax": 0 if taxes_included else (tax or 0),
            "declared_total": declared, "payment": self.payment(declared),
            "note": _NOT_MULTI_LINE.sub(" ", o["note"])[:4000] if isinstance(o.get("note"), str) else "",
            "order_type": _line(o.get("source_name"), 32), "channel_status": self.status(),
            "extensions": self.extensions(placed_key),
            # What Shopify says after the order was placed: the OMS answers it as an update (orders/updates.py).
            "cancelled": o.get("cancelled_at") is not None, "refunded": self.refunded(),
        }
        if order["external_id"] is None:
            self.fail("id", "the order's id is required (a number, as Shopify sends it)")
        return order

    def read_currency(self) -> None:
        code = self.obj.get("currency")
        path = "currency"
        if code is None:
            code = _dict(_dict(self.obj.get("total_price_set")).get("shop_money")).get("currency_code")
            path = "total_price_set.shop_money.currency_code" if code is not None else path
        try:
            CanonicalOrder.currency_digits(code)
        except ValueError as exc:
            self.fail(path, str(exc))
            return
        self.currency = code

    def lines(self) -> tuple[list[Any], bool]:
        """The canonical lines, and whether Shopify itemised its discounts (``discount_allocations``)."""
        items = self.obj.get("line_items")
        if items is None:
            self.fail("line_items", "missing: the OMS takes an order with its line items (an order list fetched "
                                    "with fields= that leaves them out cannot be taken in)")
            return [], False
        if not isinstance(items, list):
            self.fail("line_items", f"a list of line items is required, not {_kind(items)}")
            return [], False
        allotted = any(isinstance(it, dict) and isinstance(it.get("discount_allocations"), list) for it in items)
        return [self.line(i, it, allotted) for i, it in enumerate(items)], allotted

    def line(self, i: int, item: Any, allotted: bool) -> Any:
        path = f"line_items.{i}"
        if not isinstance(item, dict):
            self.fail(path, f"a line item is an object, not {_kind(item)}")
            return item
        sku = item.get("sku").strip() if isinstance(item.get("sku"), str) else ""
        if sku:
            self.source[f"lines.{i}.sku"] = f"{path}.sku"
        else:
            # Shopify lets a variant have no SKU: its variant (else product) id names it as steadily, and can be
            # mapped to the catalogue like a SKU (oms skus map shopify variant:123 SKU). A custom item has neither.
            for key, prefix in (("variant_id", "variant"), ("product_id", "product")):
                ident = _id(item.get(key))
                if ident is not None:
                    sku = f"{prefix}:{ident}"
                    self.source[f"lines.{i}.sku"] = f"{path}.{key} (the line has no sku)"
                    break
            else:
                title = _line(item.get("title") or item.get("name"), 57)
                sku = f"custom:{title}"
                self.source[f"lines.{i}.sku"] = f"{path}.title (the line has no sku, variant_id or product_id)"
                if not title:
                    self.fail(f"{path}.sku", "empty, and the line has no variant_id, product_id or title to name it")
        price = self.money(item, "price", f"{path}.price")
        if price is None:
            self.fail(f"{path}.price", "the line's price is required")
        name = _line(item.get("name"), 200) or _line(item.get("title"), 200)
        self.source[f"lines.{i}.quantity"] = f"{path}.quantity"
        self.source[f"lines.{i}.channel_line_id"] = f"{path}.id"
        self.source[f"lines.{i}.properties"] = f"{path}.properties"
        self.source[f"lines.{i}.promotions"] = f"{path}.discount_allocations"
        return {"sku": sku, "quantity": item.get("quantity"), "unit_price": price, "name": name or None,
                "channel_line_id": _id(item.get("id")), "promotions": self.promotions(path, item, allotted),
                "properties": self.properties(item.get("properties")),
                "extensions": _fit(_extensions(item, LINE_MAPPED))}

    def promotions(self, path: str, item: dict[str, Any], allotted: bool) -> list[dict[str, Any]]:
        """What Shopify allotted to the line: its ``discount_allocations``, named by the discount applications
        they point at; else, in payloads from before allocations, its ``total_discount``. Never both: an app
        may fill in both for one discount."""
        applications = _list(self.obj.get("discount_applications"))
        out: list[dict[str, Any]] = []
        if allotted:
            for j, alloc in enumerate(_list(item.get("discount_allocations"))):
                if not isinstance(alloc, dict):
                    self.fail(f"{path}.discount_allocations.{j}", f"an allocation is an object, not {_kind(alloc)}")
                    continue
                amount = self.money(alloc, "amount", f"{path}.discount_allocations.{j}.amount")
                index = alloc.get("discount_application_index")
                app = _dict(applications[index]) if isinstance(index, int) and not isinstance(index, bool) \
                    and 0 <= index < len(applications) else {}
                if amount:
                    out.append({"code": _line(app.get("code"), 64),
                                "name": _line(app.get("title") or app.get("description"), 200),
                                "kind": _line(app.get("type"), 32), "amount": amount})
            return out
        amount = self.money(item, "total_discount", f"{path}.total_discount")
        if amount:
            codes = [c for c in _list(self.obj.get("discount_codes"))
                     if isinstance(c, dict) and c.get("type") != "shipping"]
            code = _line(codes[0].get("code"), 64) if len(codes) == 1 else ""
            out.append({"code": code, "name": "", "kind": "total_discount", "amount": amount})
        return out

    @staticmethod
    def properties(value: object) -> list[dict[str, str]]:
        """The line's properties as the customer gave them; a malformed one is left out (the raw payload has it)."""
        out = []
        for prop in _list(value)[:50]:
            if isinstance(prop, dict) and prop.get("name") is not None:
                raw = prop.get("value")
                text = raw if isinstance(raw, str) else "" if raw is None else json.dumps(raw, default=str)
                out.append({"name": _line(prop.get("name"), 200),
                            "value": _NOT_MULTI_LINE.sub(" ", text)[:2000]})
        return out

    def shipping(self) -> tuple[int | None, int]:
        """The freight the customer paid (shipping lines' prices less the discounts allotted to them), and
        those discounts; freight None when the payload says nothing of shipping."""
        lines = self.obj.get("shipping_lines")
        if not isinstance(lines, list):
            if lines is not None:
                self.fail("shipping_lines", f"a list of shipping lines is required, not {_kind(lines)}")
            return self.money(self.obj, "total_shipping_price", "total_shipping_price"), 0
        price = off = 0
        for i, ship in enumerate(lines):
            if not isinstance(ship, dict):
                self.fail(f"shipping_lines.{i}", f"a shipping line is an object, not {_kind(ship)}")
                continue
            price += self.money(ship, "price", f"shipping_lines.{i}.price") or 0
            for j, alloc in enumerate(_list(ship.get("discount_allocations"))):
                off += self.money(_dict(alloc), "amount", f"shipping_lines.{i}.discount_allocations.{j}.amount") or 0
        if off > price:
            self.fail("shipping_lines", f"discounts of {off} minor units on shipping of {price}")
            return 0, 0
        self.source["freight"] = "shipping_lines"
        return price - off, off

    def coupon(self, allotted: bool, shipping_off: int) -> int:
        """The discounts off the goods. Itemised (Shopify allots every discount to a line or a shipping line):
        what the lines got. Else ``total_discounts`` (every discount of the order), else the discount codes'
        amounts."""
        if allotted:
            total = 0
            for i, item in enumerate(_list(self.obj.get("line_items"))):
                for j, alloc in enumerate(_list(_dict(item).get("discount_allocations"))):
                    total += self.money(_dict(alloc), "amount", f"line_items.{i}.discount_allocations.{j}.amount") \
                        or 0
            return total
        total = self.money(self.obj, "total_discounts", "total_discounts")
        if total is not None:
            self.source["coupon"] = "total_discounts"
            return max(total - shipping_off, 0)
        codes = 0
        for i, code in enumerate(_list(self.obj.get("discount_codes"))):
            codes += self.money(_dict(code), "amount", f"discount_codes.{i}.amount") or 0
        self.source["coupon"] = "discount_codes"
        return codes

    def customer(self) -> dict[str, Any]:
        o = self.obj
        c = _dict(o.get("customer"))
        ship, bill = _dict(o.get("shipping_address")), _dict(o.get("billing_address"))
        email = next((_line(v, 200) for v in (o.get("email"), o.get("contact_email"), c.get("email"))
                      if _line(v, 200)), "")
        phone = next((_line(v, 64) for v in (o.get("phone"), c.get("phone"), bill.get("phone")) if _line(v, 64)), "")
        name = " ".join(p for p in (_line(c.get("first_name"), 100), _line(c.get("last_name"), 100)) if p)
        name = name or _line(ship.get("name"), 200) or _line(bill.get("name"), 200)
        ident = _id(c.get("id"))
        # Customer refs are the OMS's across channels: a Shopify customer number is prefixed so that it cannot
        # be taken for another channel's; an email names one buyer anywhere.
        if ident is not None:
            ref, self.source["customer.ref"] = f"shopify:{ident}", "customer.id"
        elif email:
            ref, self.source["customer.ref"] = email.lower(), "email"
        elif phone:
            ref, self.source["customer.ref"] = phone, "phone"
        else:
            ref, self.source["customer.ref"] = f"shopify-guest:{_id(o.get('id'))}", "id (a guest order)"
        out = {"ref": ref, "name": name[:200], "email": email, "phone": phone}
        # The language the buyer shopped in ("en", "zh-CN"): the messages of the OMS go out in it where it can.
        locale = o.get("customer_locale")
        if isinstance(locale, str) and _LOCALE.fullmatch(locale.strip()):
            out["language"] = locale.strip()
        return out

    def ship_to(self) -> dict[str, Any]:
        a = _dict(self.obj.get("shipping_address"))
        country = a.get("country_code")
        if isinstance(country, str):
            country = country.strip().upper()
        elif country is not None:
            self.fail("shipping_address.country_code", f"an ISO 3166-1 alpha-2 code is required, not {_kind(country)}")
            country = ""
        if country and not _COUNTRY.fullmatch(country):
            self.fail("shipping_address.country_code", f"{_shown(country)} is not an ISO 3166-1 alpha-2 code")
            country = ""
        name = _line(a.get("name"), 200) or " ".join(
            p for p in (_line(a.get("first_name"), 100), _line(a.get("last_name"), 100)) if p)
        return {"name": name, "phone": _line(a.get("phone"), 64), "country": country or "",
                "region": _line(a.get("province"), 100), "city": _line(a.get("city"), 100),
                "line1": _line(a.get("address1"), 200), "line2": _line(a.get("address2"), 200),
                "postcode": _line(a.get("zip"), 32)}

    def payment(self, total: int | None) -> dict[str, Any] | None:
        """The order's payment: its total when paid (:data:`PAID`) or authorized, what was paid of it when
        partially paid and Shopify says what is outstanding, or the cash to collect for cash on delivery; else
        none."""
        o = self.obj
        status = o.get("financial_status") if isinstance(o.get("financial_status"), str) else None
        names = [n for n in _list(o.get("payment_gateway_names")) if isinstance(n, str) and n.strip()]
        # A gift card pays alongside the gateway that paid the rest: the latter says how the order was paid.
        method = next((n for n in names if n != "gift_card"), names[0] if names else _line(o.get("gateway"), 64))
        method = _line(method, 64)
        ident = _id(o.get("id"))
        if total is None or ident is None or o.get("cancelled_at") is not None:
            return None
        amount: int | None = None
        authorized = False
        if status in PAID:
            amount = total
        elif status == "authorized":
            # Held on the buyer's card until Shopify captures it (on fulfilment or by hand, as the shop is set):
            # secured, so the order goes on.
            amount, authorized = total, True
        elif status == "partially_paid":
            outstanding = self.money(o, "total_outstanding", "total_outstanding")
            amount = total - outstanding if outstanding is not None and outstanding <= total else None
        elif status == "pending" and re.search(r"cash on delivery|\bcod\b", method, re.I):
            amount = total
        # Shopify's order carries no transaction ids (they are in its Transaction API): the order id is always
        # there, stays the same on every re-send, and finds the order's transactions in Shopify.
        if amount is None:
            return None
        return {"transaction_id": ident, "amount": amount, "method": method, **({"authorized": True} if authorized
                                                                                 else {})}

    def refunded(self) -> int:
        """What the order's refunds paid back: their successful refund transactions."""
        total = 0
        for i, refund in enumerate(_list(self.obj.get("refunds"))):
            for j, tx in enumerate(_list(_dict(refund).get("transactions"))):
                tx = _dict(tx)
                if tx.get("kind") == "refund" and tx.get("status") in ("success", None):
                    total += self.money(tx, "amount", f"refunds.{i}.transactions.{j}.amount") or 0
        return total

    def status(self) -> str:
        o = self.obj
        parts = [_line(o.get("financial_status"), 30) or "unknown", _line(o.get("fulfillment_status"), 20)
                 or "unfulfilled"]
        if o.get("cancelled_at") is not None:
            parts.append("cancelled")
        return "/".join(parts)[:64]

    def extensions(self, placed_key: str) -> dict[str, Any]:
        o = self.obj
        skip = set(ORDER_MAPPED) | {placed_key}
        if o.get("taxes_included") is not True:
            skip.add("total_tax")
        fields = _extensions(o, skip)
        ship = _dict(o.get("shipping_address"))
        rest = _extensions(ship, ADDRESS_MAPPED, 2)
        if rest:
            fields["shipping_address"] = rest
        if isinstance(o.get("shipping_lines"), list):
            fields["shipping_lines"] = _extension_value(o["shipping_lines"], 1)
        customer = o.get("customer")
        if isinstance(customer, dict):
            fields["customer"] = _extensions(customer, {"default_address", "addresses", "email", "phone"}, 2)
        presentment = o.get("presentment_currency")
        if isinstance(presentment, str) and presentment != o.get("currency"):
            amount = _dict(_dict(o.get("total_price_set")).get("presentment_money")).get("amount")
            fields["presentment_total_price"] = _extension_value(amount, 1)
        return _fit(fields)


_WHERE: tuple[tuple[str, str], ...] = (
    ("external_id", "id"), ("customer.ref", "customer.id"), ("customer.name", "customer"),
    ("customer.email", "email"), ("customer.phone", "phone"), ("ship_to.country", "shipping_address.country_code"),
    ("ship_to.region", "shipping_address.province"), ("ship_to.line1", "shipping_address.address1"),
    ("ship_to.line2", "shipping_address.address2"), ("ship_to.postcode", "shipping_address.zip"),
    ("ship_to", "shipping_address"), ("lines", "line_items"), ("tax", "total_tax"), ("declared_total", "total_price"),
    ("order_type", "source_name"), ("channel_status", "financial_status"), ("payment", "financial_status"),
    ("freight", "shipping_lines"), ("coupon", "total_discounts"), ("extensions", "the order's other fields"),
)


def _where(loc: Sequence[Any], source: Mapping[str, str]) -> str:
    """The Shopify field a canonical field's error is about."""
    dotted = ".".join(str(p) for p in loc)
    for depth in range(len(loc), 0, -1):
        head = ".".join(str(p) for p in loc[:depth])
        if head in source:
            return source[head] + dotted[len(head):]
    if len(loc) >= 2 and loc[0] == "lines":
        # lines.3.extensions -> line_items.3 (its other fields)
        rest = ".".join(str(p) for p in loc[2:])
        return f"line_items.{loc[1]}" + (f".{rest}" if rest and rest != "extensions" else
                                         " (its other fields)" if rest else "")
    for canonical, shopify in _WHERE:
        if dotted == canonical or dotted.startswith(canonical + "."):
            return shopify + dotted[len(canonical):]
    return dotted


class ShopifyChannel:
    name = NAME

    def parse(self, body: bytes) -> list[ParsedPayload]:
        try:
            data = loads(body)
        except JsonRejected as exc:
            return [ParsedPayload(None, error="invalid JSON" + str(exc).removeprefix("malformed JSON"))]
        found = _orders(data)
        if isinstance(found, str):
            return [ParsedPayload(None, error=f"not a Shopify order: the payload is {found}; {EXPECTED}", raw=data)]
        return [self._safely(item) for item in found]

    def _safely(self, item: Any) -> ParsedPayload:
        try:
            return self._one(item)
        except Exception as exc:  # parse never raises: one unreadable order must not stop the rest of the batch
            log.exception("shopify: an order could not be read")
            ident = _id(item.get("id")) if isinstance(item, dict) else None
            return ParsedPayload(ident, error=f"the Shopify adapter could not read this order "
                                              f"({type(exc).__name__}: {str(exc)[:200]})", raw=item)

    def _one(self, item: Any) -> ParsedPayload:
        if not isinstance(item, dict):
            return ParsedPayload(None, error=f"not a Shopify order: {_kind(item)}; {EXPECTED}", raw=item)
        other = _what_else(item)
        if other is not None:
            return ParsedPayload(None, error=f"not a Shopify order: this is {other}; {EXPECTED}", raw=item)
        reader = _Order(item)
        fields = reader.build()
        ext_id = fields["external_id"]
        try:
            order = CanonicalOrder.model_validate(fields)
        except ValidationError as exc:
            problems = dict(reader.errors)
            for err in exc.errors():
                where = _where(err["loc"], reader.source)
                if where not in problems:
                    problems[where] = err["msg"].removeprefix("Value error, ")
            return ParsedPayload(ext_id, error=_joined(problems), raw=item)
        if reader.errors:
            return ParsedPayload(ext_id, error=_joined(reader.errors), raw=item)
        return ParsedPayload(order.external_id, order=order, raw=item)

    def report(self, account: Any, message: ChannelReport, http: Any) -> str | None:
        """Tell the channel what became of one of its orders (channels/reports.py; the calls are report_api.py's)."""
        return shopify_report(account, message, http)

    def pull(self, account: Any, cursor: str | None, http: Any) -> PulledPage:
        """One page of the shop's orders after ``cursor`` (channels/pulling.py; the fetching is pull_api.py's)."""
        return shopify_pull(account, cursor, http)

    # Shopify retries a delivery (the same webhook id) until it gets a 2xx, and drops a subscription that keeps
    # failing: a copy of one stored is answered as received.
    replays_ok = True

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """True when X-Shopify-Hmac-Sha256 is base64(HMAC-SHA256(secret, body)); the body is all it covers."""
        given = _header(headers, SIGNATURE_HEADER)
        if not (secret and given):
            # An empty key is one anybody can sign with.
            return False
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        # As bytes: compare_digest refuses a str with non-ASCII characters, and header values may have them.
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)

    def delivery(self, headers: Mapping[str, str]) -> tuple[str, int] | None:
        """The delivery id (X-Shopify-Webhook-Id) and when Shopify triggered it (X-Shopify-Triggered-At, ISO 8601)
        in Unix seconds; None when either is absent, ValueError naming the header when malformed. Neither is
        signed (the module's docstring)."""
        ident, when = _header(headers, DELIVERY_ID_HEADER), _header(headers, TRIGGERED_AT_HEADER)
        if not (ident and when):
            return None
        if not _DELIVERY_ID.fullmatch(ident):
            raise ValueError(f"header {DELIVERY_ID_HEADER} must be 1 to 128 visible ASCII characters")
        return ident, _unix_seconds(when)


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted and isinstance(v, str)), "")


def _unix_seconds(text: str) -> int:
    """An ISO 8601 time with an offset (fractions of a second dropped) in Unix seconds."""
    m = _ISO_TIME.fullmatch(text.strip())
    problem = f"header {TRIGGERED_AT_HEADER} must be an ISO 8601 time with an offset such as " \
              f"2026-11-20T09:30:00.123Z, got {_shown(text)}"
    if m is None:
        raise ValueError(problem)
    offset = m.group(3).upper().replace("Z", "+00:00")
    offset = offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"
    try:
        seconds = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{offset}").timestamp()
    except (ValueError, OverflowError):
        raise ValueError(problem) from None
    if not 0 <= seconds < 10 ** 12:
        raise ValueError(problem)
    return int(seconds)


def _joined(problems: Mapping[str, str]) -> str:
    return "; ".join(f"{field}: {msg}" if field else msg for field, msg in problems.items())


@hookimpl(trylast=True)
def oms_register_channels(register: Any) -> None:
    register(ShopifyChannel())

"""Telling Shopify, WooCommerce and Amazon what became of their orders: each adapter's ``report`` (the OMS's
ChannelReport, channels/reports.py), made of the channel's own API calls.

Every report can come twice (a worker killed after the channel took it and before the OMS recorded it), so each
function first asks the channel whether it is done already, and answers the reference of what it found:

* Shopify (REST Admin API): a shipment is a fulfillment of the order's fulfillment orders (``POST
  /fulfillments.json`` with the tracking number), unless one with that tracking number exists; a later step is
  a fulfillment event on it; a cancellation ``POST /orders/<id>/cancel.json`` (422 "already cancelled" is
  done), a split's lines a refund of those lines with ``restock_type: cancel`` and no money; a refund
  ``POST /orders/<id>/refunds.json`` against the order's successful sale or capture, its note naming the
  OMS's refund, which is how a second copy is found.
* WooCommerce (REST API v3, HTTP Basic with the consumer key and secret as ``key:secret``): a shipment is an
  order note to the customer with the carrier and tracking number, and the order ``completed`` when the whole
  order shipped; a later step a note; a cancellation ``status: cancelled`` (a split's lines: a note); a
  refund ``POST /orders/<id>/refunds`` with ``api_refund: true`` (the payment gateway pays it back). Notes and
  refunds carry a mark naming the report, which is how a second copy is found.
* Amazon (Selling Partner API): a shipment is ``confirmShipment`` with the items shipped, unless its items are
  shipped already; Amazon follows the parcel itself, so later steps need nothing; a cancellation and a refund
  are feeds (``POST_ORDER_ACKNOWLEDGEMENT_DATA``, ``POST_PAYMENT_ADJUSTMENT_DATA``: a feed document created,
  its XML uploaded, the feed created), the refund's ``MerchantAdjustmentItemID`` the OMS's serial, by which
  Amazon takes an adjustment once. Amazon processes feeds later: the refund is recorded as made when the
  feed is accepted.

Stock (``channel.stock``: no order; ``levels``, each the channel's ``sku`` and the absolute ``quantity`` available
to sell) sets each SKU's number at the channel. A second copy sets the same numbers again, which changes nothing;
Shopify and WooCommerce are read first and a number already right is not written at all (so a report cut short
by a rate limit gets further each time it is tried again). A SKU the channel does not have is skipped, the
others are set, and the answer (the report's reference) names it, as it names a SKU the channel would not take
(an item Shopify does not track, a SKU on two Shopify variants: which one sells it is not the OMS's to guess):

* Shopify: the location ``settings.location_id`` (required; checked with ``GET /locations/<id>.json``), the
  variants' inventory items found by SKU in ``GET /products.json?fields=id,variants&limit=250`` page by page
  (REST has no look-up by SKU; once per report), their levels read with ``GET /inventory_levels.json`` (50
  items a call) and each one that differs set with ``POST /inventory_levels/set.json``.
* WooCommerce: products and variations found with ``GET /products?sku=A,B,...`` (the SKU filter matches
  variations too; 50 SKUs a call, a SKU with a comma alone), then ``manage_stock: true`` and ``stock_quantity``
  set with ``POST /products/batch``, a variation's with ``POST /products/<parent>/variations/batch`` (100 a
  batch; an item the batch answers with an error is named, the others stand).
* Amazon: one ``JSON_LISTINGS_FEED`` (``settings.seller_id`` required: the feed's ``sellerId``), a ``PATCH`` of
  ``fulfillment_availability`` (channel ``DEFAULT``) per SKU; Amazon names a SKU it does not list in the feed's
  processing report, which is not read yet: the reference is the feed id.

A 4xx answer that says the channel will not take it (the order is unknown, the refund over what is left) is a
refusal for good (MessageRefused: not tried again); 429, 5xx, timeouts and garbage are tried again later.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import httpx

from oms_engine import ChannelReport, MessageRefused, exponent

from .pull_api import _NEXT, SHOPIFY_VERSION, ChannelApiError, _need

log = logging.getLogger("oms.channels")

ERROR_TEXT = 300
FEEDS = "/feeds/2021-06-30"
XML_FEED = "text/xml; charset=UTF-8"
JSON_FEED = "application/json; charset=UTF-8"
SHOPIFY_PAGE = 250          # products a page, Shopify's most
SHOPIFY_LEVEL_ITEMS = 50    # inventory item ids one GET inventory_levels.json takes
WOO_SKUS = 50               # SKUs one GET /products?sku= asks for (its answer: at most 100 a page)
WOO_BATCH = 100             # items a WooCommerce batch takes
NAMED = 20                  # SKUs a stock report's reference names before "and N more"
# Amazon's carrier codes the OMS's carrier names are sent as; any other goes as "Other" with its own name.
AMAZON_CARRIERS = frozenset({"UPS", "USPS", "FedEx", "DHL", "DHL eCommerce", "Royal Mail", "Yodel", "Hermes",
                             "DPD", "GLS", "SF Express", "China Post", "YunExpress", "Yamato Transport"})
# Shopify's fulfillment event statuses for the OMS's steps after shipping.
SHOPIFY_EVENT = {"in_transit": "in_transit", "out_for_delivery": "out_for_delivery", "delivered": "delivered",
                 "refused": "failure"}


def decimal_text(minor: int, currency: str) -> str:
    """Minor units as the decimal text the channels' APIs take ("12.30"; "1230" for JPY)."""
    return str(Decimal(minor).scaleb(-exponent(currency)))


def mark(message: ChannelReport) -> str:
    """What a note or refund the OMS leaves at a channel carries, so a second copy of the report finds it."""
    return f"[oms {message.topic.removeprefix('channel.')} {message.id}]"


def _call(http: httpx.Client, method: str, url: str, what: str, *, headers: Mapping[str, str],
          json: Any = None, content: bytes | None = None, params: Mapping[str, Any] | None = None,
          ok: tuple[int, ...] = (200, 201, 202, 204)) -> httpx.Response:
    try:
        resp = http.request(method, url, headers=dict(headers), json=json, content=content, params=params)
    except httpx.TimeoutException:
        raise ChannelApiError(f"{what}: no answer within the account's timeout") from None
    except httpx.HTTPError as exc:
        raise ChannelApiError(f"{what}: {type(exc).__name__}: {exc}") from None
    if resp.status_code in ok:
        return resp
    text = f"{what}: {resp.status_code} {resp.reason_phrase}: {resp.text[:ERROR_TEXT]}"
    if resp.status_code in (400, 404, 409, 422):
        raise MessageRefused(text)
    raise ChannelApiError(text)


def _json(resp: httpx.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise ChannelApiError(f"{what}: the answer is not JSON: {resp.text[:ERROR_TEXT]!r}") from None


def _list(data: Any, key: str, what: str) -> list[dict[str, Any]]:
    found = data.get(key) if isinstance(data, dict) else None
    if not isinstance(found, list):
        raise ChannelApiError(f"{what}: the answer has no list '{key}'")
    return [x for x in found if isinstance(x, dict)]


def stock_levels(message: ChannelReport) -> dict[str, int]:
    """A ``channel.stock`` report's levels, SKU to quantity (a SKU given twice: its last quantity); a payload that
    is not levels is refused for good, as no try will make it any better."""
    levels = message.payload.get("levels")
    if not isinstance(levels, list):
        raise MessageRefused(f"{message.topic}: the payload has no list 'levels'")
    out: dict[str, int] = {}
    for n, level in enumerate(levels):
        sku = level.get("sku") if isinstance(level, Mapping) else None
        qty = level.get("quantity") if isinstance(level, Mapping) else None
        if not isinstance(sku, str) or not sku or not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            raise MessageRefused(f"{message.topic}: levels[{n}] is not a SKU and a quantity of 0 or more: "
                                 f"{str(level)[:100]}")
        out[sku] = qty
    return out


def _named(items: list[str]) -> str:
    more = len(items) - NAMED
    return ", ".join(items[:NAMED]) + (f" and {more} more" if more > 0 else "")


@dataclass
class _Pushed:
    """What a stock report did at a channel; ``said`` is its reference."""

    channel: str
    account: str
    set: int = 0
    unchanged: int = 0
    unknown: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def said(self) -> str:
        text = f"{self.channel} stock: {self.set} set, {self.unchanged} already right"
        if self.unknown:
            text += f"; not at {self.channel}, skipped: {_named(self.unknown)}"
        if self.refused:
            text += "; not taken: " + _named([f"{sku} ({why[:120]})" for sku, why in self.refused.items()])
        if self.unknown or self.refused:
            log.warning("channel account '%s': %s", self.account, text)
        return text


# -- Shopify -----------------------------------------------------------------------------------------------------
class _Shopify:
    def __init__(self, account: Any, http: httpx.Client, message: ChannelReport) -> None:
        _need(account, "a Shopify Admin API access token")
        version = str(account.settings.get("api_version") or SHOPIFY_VERSION)
        self.base = f"{account.url}/admin/api/{version}"
        self.order = f"{self.base}/orders/{message.external_id}"     # no order for stock: never asked then
        self.headers = {"X-Shopify-Access-Token": account.token, "Accept": "application/json"}
        self.http, self.message, self.account = http, message, account

    def get(self, path: str, key: str, what: str) -> list[dict[str, Any]]:
        resp = _call(self.http, "GET", f"{self.order}/{path}", what, headers=self.headers, ok=(200,))
        return _list(_json(resp, what), key, what)

    def post(self, url: str, body: Any, what: str, ok: tuple[int, ...] = (200, 201)) -> Any:
        return _json(_call(self.http, "POST", url, what, headers=self.headers, json=body, ok=ok), what)

    def line_items(self, lines: list[Mapping[str, Any]]) -> dict[str, int]:
        """The order's line item ids for the report's lines: their own ids, else found by SKU at Shopify."""
        wanted = {str(ln["line_id"]): int(ln["quantity"]) for ln in lines if ln.get("line_id")}
        missing = [ln for ln in lines if not ln.get("line_id")]
        if missing:
            resp = _call(self.http, "GET", f"{self.order}.json", "Shopify order", headers=self.headers,
                         params={"fields": "id,line_items"}, ok=(200,))
            order = _json(resp, "Shopify order").get("order") or {}
            by_sku = {str(li.get("sku")): str(li.get("id")) for li in _list(order, "line_items", "Shopify order")}
            for ln in missing:
                ident = by_sku.get(str(ln["sku"]))
                if ident is None:
                    raise MessageRefused(f"Shopify order {self.message.external_id} has no line with SKU {ln['sku']}")
                wanted[ident] = wanted.get(ident, 0) + int(ln["quantity"])
        return wanted

    def shipment(self) -> str | None:
        p = self.message.payload
        tracking = str(p.get("tracking_no") or "")
        for f in self.get("fulfillments.json", "fulfillments", "Shopify fulfillments"):
            if tracking and f.get("tracking_number") == tracking and f.get("status") != "cancelled":
                return str(f.get("id"))
        wanted = self.line_items(list(p.get("lines") or []))
        groups = []
        for fo in self.get("fulfillment_orders.json", "fulfillment_orders", "Shopify fulfillment orders"):
            if fo.get("status") not in ("open", "in_progress"):
                continue
            items = []
            for li in fo.get("line_items") or []:
                need = wanted.get(str(li.get("line_item_id")), 0)
                take = min(need, int(li.get("fulfillable_quantity") or 0))
                if take > 0:
                    items.append({"id": li["id"], "quantity": take})
                    wanted[str(li.get("line_item_id"))] = need - take
            if items:
                groups.append({"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": items})
        if not groups:
            return None     # nothing left to fulfil: a copy of a shipment reported already
        body = {"fulfillment": {"line_items_by_fulfillment_order": groups, "notify_customer": True,
                                "tracking_info": {"number": tracking, "company": str(p.get("carrier") or "")}}}
        made = self.post(f"{self.base}/fulfillments.json", body, "Shopify fulfillment")
        return str((made.get("fulfillment") or {}).get("id") or "") or None

    def tracking(self) -> str | None:
        p = self.message.payload
        status = SHOPIFY_EVENT.get(str(p.get("status")))
        if status is None:
            return None
        tracking = str(p.get("tracking_no") or "")
        found = [f for f in self.get("fulfillments.json", "fulfillments", "Shopify fulfillments")
                 if f.get("status") != "cancelled" and (not tracking or f.get("tracking_number") == tracking)]
        if not found:
            raise ChannelApiError(f"Shopify order {self.message.external_id} has no fulfillment with tracking number "
                                  f"{tracking or '(none)'} yet")
        fid = found[-1]["id"]
        events = self.get(f"fulfillments/{fid}/events.json", "fulfillment_events", "Shopify fulfillment events")
        if any(e.get("status") == status for e in events):
            return str(fid)
        self.post(f"{self.order}/fulfillments/{fid}/events.json",
                  {"event": {"status": status, "message": str(p.get("label") or "")}}, "Shopify fulfillment event")
        return str(fid)

    def cancel(self) -> str | None:
        p = self.message.payload
        if p.get("whole"):
            try:
                self.post(f"{self.order}/cancel.json", {"reason": "other", "email": True, "restock": True},
                          "Shopify cancel")
            except MessageRefused as exc:
                if "already" not in str(exc).lower():
                    raise
            return self.message.external_id
        # A split's lines: Shopify cancels unfulfilled lines by refunding them with restock "cancel", no money.
        note = f"{p.get('reason') or 'cancelled'} {mark(self.message)}"
        for r in self.get("refunds.json", "refunds", "Shopify refunds"):
            if mark(self.message) in str(r.get("note") or ""):
                return str(r.get("id"))
        wanted = self.line_items(list(p.get("lines") or []))
        body = {"refund": {"note": note, "notify": False, "transactions": [],
                           "refund_line_items": [{"line_item_id": int(i) if i.isdigit() else i, "quantity": q,
                                                  "restock_type": "cancel"} for i, q in wanted.items()]}}
        made = self.post(f"{self.order}/refunds.json", body, "Shopify line cancellation")
        return str((made.get("refund") or {}).get("id") or "") or None

    def refund(self) -> str | None:
        p = self.message.payload
        serial = str(p["refund"])
        for r in self.get("refunds.json", "refunds", "Shopify refunds"):
            if f"[oms refund {serial}]" in str(r.get("note") or ""):
                return str(r.get("id"))
        paid = [t for t in self.get("transactions.json", "transactions", "Shopify transactions")
                if t.get("kind") in ("sale", "capture") and t.get("status") == "success"]
        if not paid:
            raise MessageRefused(f"Shopify order {self.message.external_id} has no successful payment to refund")
        parent = paid[-1]
        body = {"refund": {"currency": p["currency"], "notify": True,
                           "note": f"{p.get('reason') or 'refund'} [oms refund {serial}]",
                           "transactions": [{"parent_id": parent["id"], "kind": "refund",
                                             "gateway": parent.get("gateway") or "",
                                             "amount": decimal_text(int(p["amount"]), str(p["currency"]))}]}}
        made = self.post(f"{self.order}/refunds.json", body, "Shopify refund")
        return str((made.get("refund") or {}).get("id") or "") or None


    def stock(self) -> str | None:
        raw = self.account.settings.get("location_id")
        location = str(raw if raw is not None else "").strip()
        if not location.isdigit():
            raise MessageRefused(f"channel account '{self.account.name}' needs settings.location_id (the Shopify "
                                 "location whose stock the OMS sets)" + (f", a number, not {raw!r}" if raw else ""))
        levels = stock_levels(self.message)
        if not levels:
            return None
        try:
            _call(self.http, "GET", f"{self.base}/locations/{location}.json", "Shopify location",
                  headers=self.headers, ok=(200,))
        except MessageRefused as exc:
            raise MessageRefused(f"channel account '{self.account.name}': settings.location_id {location} is not "
                                 f"a location of the shop ({exc})") from None
        pushed = _Pushed("Shopify", self.account.name)
        found = self.inventory_items(set(levels))
        items: dict[str, Any] = {}
        for sku in levels:
            carried = found.get(sku, [])
            if not carried:
                pushed.unknown.append(sku)
            elif len(carried) > 1:
                pushed.refused[sku] = f"on {len(carried)} variants: not set, which one sells it is the shop's call"
            else:
                items[sku] = carried[0]
        now = self.available(location, list(items.values()))
        for sku, item in items.items():
            qty = levels[sku]
            if now.get(str(item)) == qty:
                pushed.unchanged += 1
                continue
            try:
                self.post(f"{self.base}/inventory_levels/set.json",
                          {"location_id": int(location), "inventory_item_id": item, "available": qty},
                          "Shopify inventory level")
            except MessageRefused as exc:     # this item only (not tracked, gone since): the others go on
                pushed.refused[sku] = str(exc)
            else:
                pushed.set += 1
        return pushed.said()

    def inventory_items(self, wanted: set[str]) -> dict[str, list[Any]]:
        """The inventory item of every variant carrying each wanted SKU, from the shop's product list, page by
        page (the REST Admin API looks nothing up by SKU)."""
        found: dict[str, list[Any]] = {}
        url: str | None = f"{self.base}/products.json"
        params: dict[str, Any] | None = {"limit": SHOPIFY_PAGE, "fields": "id,variants"}
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            resp = _call(self.http, "GET", url, "Shopify products", headers=self.headers, params=params, ok=(200,))
            for product in _list(_json(resp, "Shopify products"), "products", "Shopify products"):
                for variant in product.get("variants") or []:
                    sku = variant.get("sku") if isinstance(variant, dict) else None
                    if sku in wanted and variant.get("inventory_item_id"):
                        found.setdefault(sku, []).append(variant["inventory_item_id"])
            # The next page's address carries its page_info (with which Shopify takes no other filter).
            following = _NEXT.search(resp.headers.get("Link", ""))
            url, params = (following.group(1) if following else None), None
        return found

    def available(self, location: str, items: list[Any]) -> dict[str, Any]:
        """What the location has available of each inventory item now, by the item's id as text (None: the item
        is not tracked; missing: not stocked there yet, which setting it mends)."""
        now: dict[str, Any] = {}
        for start in range(0, len(items), SHOPIFY_LEVEL_ITEMS):
            chunk = items[start:start + SHOPIFY_LEVEL_ITEMS]
            resp = _call(self.http, "GET", f"{self.base}/inventory_levels.json", "Shopify inventory levels",
                         headers=self.headers, ok=(200,),
                         params={"inventory_item_ids": ",".join(str(i) for i in chunk), "location_ids": location,
                                 "limit": SHOPIFY_PAGE})
            for level in _list(_json(resp, "Shopify inventory levels"), "inventory_levels", "Shopify inventory levels"):
                if str(level.get("location_id")) == location:
                    now[str(level.get("inventory_item_id"))] = level.get("available")
        return now


def shopify_report(account: Any, message: ChannelReport, http: httpx.Client) -> str | None:
    shop = _Shopify(account, http, message)
    return _dispatch(shop, message)


def _dispatch(target: Any, message: ChannelReport) -> str | None:
    what = message.topic.removeprefix("channel.")
    act = getattr(target, what if what in ("shipment", "tracking", "cancel", "refund", "stock") else "", None)
    if act is None:
        raise MessageRefused(f"this adapter does not report '{message.topic}'")
    result: str | None = act()
    return result


# -- WooCommerce -------------------------------------------------------------------------------------------------
class _Woo:
    def __init__(self, account: Any, http: httpx.Client, message: ChannelReport) -> None:
        _need(account, "a WooCommerce REST API key and secret, as key:secret")
        key = base64.b64encode(account.token.encode()).decode()
        self.shop = f"{account.url}/wp-json/wc/v3"
        self.order = f"{self.shop}/orders/{message.external_id}"     # no order for stock: never asked then
        self.headers = {"Authorization": f"Basic {key}", "Accept": "application/json"}
        self.http, self.message, self.account = http, message, account

    def _get(self, path: str, what: str) -> list[dict[str, Any]]:
        resp = _call(self.http, "GET", f"{self.order}/{path}", what, headers=self.headers, ok=(200,))
        data = _json(resp, what)
        if not isinstance(data, list):
            raise ChannelApiError(f"{what}: the answer is not a list")
        return [x for x in data if isinstance(x, dict)]

    def _note(self, text: str) -> str | None:
        stamp = mark(self.message)
        for n in self._get("notes", "WooCommerce order notes"):
            if stamp in str(n.get("note") or ""):
                return str(n.get("id"))
        made = _json(_call(self.http, "POST", f"{self.order}/notes", "WooCommerce order note", headers=self.headers,
                           json={"note": f"{text} {stamp}", "customer_note": True}), "WooCommerce order note")
        return str(made.get("id") or "") or None

    def _status(self, status: str, what: str) -> None:
        _call(self.http, "PUT", self.order, what, headers=self.headers, json={"status": status}, ok=(200,))

    def shipment(self) -> str | None:
        p = self.message.payload
        lines = ", ".join(f"{ln['quantity']} x {ln['sku']}" for ln in p.get("lines") or [])
        note = self._note(f"Shipped by {p.get('carrier') or 'the carrier'}, tracking number "
                          f"{p.get('tracking_no') or '(none)'}: {lines}")
        if p.get("order_number") == p.get("channel_order"):     # the whole order, not a split's part of it
            self._status("completed", "WooCommerce order completed")
        return note

    def tracking(self) -> str | None:
        p = self.message.payload
        return self._note(f"{p.get('label') or p.get('status')}: tracking number {p.get('tracking_no') or '(none)'}")

    def cancel(self) -> str | None:
        p = self.message.payload
        if p.get("whole"):
            self._status("cancelled", "WooCommerce order cancelled")
            return self.message.external_id
        lines = ", ".join(f"{ln['quantity']} x {ln['sku']}" for ln in p.get("lines") or [])
        return self._note(f"Cancelled, not to be shipped: {lines} ({p.get('reason') or 'no reason given'})")

    def refund(self) -> str | None:
        p = self.message.payload
        stamp = f"[oms refund {p['refund']}]"
        for r in self._get("refunds", "WooCommerce refunds"):
            if stamp in str(r.get("reason") or ""):
                return str(r.get("id"))
        body = {"amount": decimal_text(int(p["amount"]), str(p["currency"])),
                "reason": f"{p.get('reason') or 'refund'} {stamp}", "api_refund": True}
        made = _json(_call(self.http, "POST", f"{self.order}/refunds", "WooCommerce refund", headers=self.headers,
                           json=body), "WooCommerce refund")
        return str(made.get("id") or "") or None


    def stock(self) -> str | None:
        levels = stock_levels(self.message)
        if not levels:
            return None
        pushed = _Pushed("WooCommerce", self.account.name)
        found = self.products(list(levels))
        products: list[tuple[str, dict[str, Any]]] = []
        variations: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for sku, qty in levels.items():
            product = found.get(sku)
            if product is None:
                pushed.unknown.append(sku)
            elif product.get("manage_stock") is True and product.get("stock_quantity") == qty:
                pushed.unchanged += 1
            else:
                row = {"id": product["id"], "manage_stock": True, "stock_quantity": qty}
                if product.get("type") == "variation" and product.get("parent_id"):
                    variations.setdefault(str(product["parent_id"]), []).append((sku, row))
                else:
                    products.append((sku, row))
        self._batch(f"{self.shop}/products/batch", products, pushed)
        for parent, rows in variations.items():
            self._batch(f"{self.shop}/products/{parent}/variations/batch", rows, pushed)
        return pushed.said()

    def products(self, skus: list[str]) -> dict[str, dict[str, Any]]:
        """The products and variations carrying the SKUs, by SKU. WooCommerce splits ``sku`` at commas (and
        matches the whole text too), so a SKU with a comma in it is asked alone."""
        plain = [s for s in skus if "," not in s]
        groups = [[s] for s in skus if "," in s] + [plain[i:i + WOO_SKUS] for i in range(0, len(plain), WOO_SKUS)]
        found: dict[str, dict[str, Any]] = {}
        for group in groups:
            page, pages = 1, 1
            while page <= pages:
                resp = _call(self.http, "GET", f"{self.shop}/products", "WooCommerce products", headers=self.headers,
                             params={"sku": ",".join(group), "per_page": 100, "page": page}, ok=(200,))
                data = _json(resp, "WooCommerce products")
                if not isinstance(data, list):
                    raise ChannelApiError("WooCommerce products: the answer is not a list")
                for product in data:
                    if isinstance(product, dict) and product.get("sku") in group and product.get("id"):
                        found[str(product["sku"])] = product
                try:
                    pages = int(resp.headers.get("X-WP-TotalPages") or 1)
                except ValueError:
                    pages = 1
                page += 1
        return found

    def _batch(self, url: str, rows: list[tuple[str, dict[str, Any]]], pushed: _Pushed) -> None:
        for start in range(0, len(rows), WOO_BATCH):
            chunk = rows[start:start + WOO_BATCH]
            answer = _json(_call(self.http, "POST", url, "WooCommerce stock batch", headers=self.headers,
                                 json={"update": [row for _, row in chunk]}, ok=(200, 201)), "WooCommerce stock batch")
            done = {str(item.get("id")): item for item in _list(answer, "update", "WooCommerce stock batch")}
            for sku, row in chunk:
                item = done.get(str(row["id"]))
                error = item.get("error") if item is not None else "not in the batch's answer"
                if error:
                    pushed.refused[sku] = str(error.get("message") or error) if isinstance(error, dict) else str(error)
                else:
                    pushed.set += 1


def woocommerce_report(account: Any, message: ChannelReport, http: httpx.Client) -> str | None:
    return _dispatch(_Woo(account, http, message), message)


# -- Amazon ------------------------------------------------------------------------------------------------------
class _Amazon:
    def __init__(self, account: Any, http: httpx.Client, message: ChannelReport) -> None:
        _need(account, "a Login with Amazon access token")
        markets = account.settings.get("marketplace_ids")
        self.markets = [str(m) for m in markets] if isinstance(markets, list) else \
            [m for m in str(markets or "").split(",") if m]
        if not self.markets:
            raise MessageRefused(f"channel account '{account.name}' needs settings.marketplace_ids")
        self.seller = str(account.settings.get("seller_id") or "")
        self.url, self.name = account.url, account.name
        self.order = f"{account.url}/orders/v0/orders/{message.external_id}"     # no order for stock: never asked
        self.headers = {"x-amz-access-token": account.token, "Accept": "application/json"}
        self.http, self.message = http, message

    def items(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            resp = _call(self.http, "GET", f"{self.order}/orderItems", "Amazon getOrderItems", headers=self.headers,
                         params={"NextToken": token} if token else None, ok=(200,))
            payload = _json(resp, "Amazon getOrderItems").get("payload") or {}
            out += _list(payload, "OrderItems", "Amazon getOrderItems")
            token = payload.get("NextToken")
            if not token:
                return out

    def _item_ids(self, lines: list[Mapping[str, Any]], items: list[dict[str, Any]]) -> list[tuple[dict[str, Any],
                                                                                                     int]]:
        by_id = {str(i.get("OrderItemId")): i for i in items}
        by_sku = {str(i.get("SellerSKU")): i for i in items}
        out = []
        for ln in lines:
            item = by_id.get(str(ln.get("line_id"))) or by_sku.get(str(ln.get("sku")))
            if item is None:
                raise MessageRefused(f"Amazon order {self.message.external_id} has no item for SKU {ln.get('sku')}")
            out.append((item, int(ln["quantity"])))
        return out

    def shipment(self) -> str | None:
        p = self.message.payload
        shipped = self._item_ids(list(p.get("lines") or []), self.items())
        if all(int(item.get("QuantityShipped") or 0) >= int(item.get("QuantityOrdered") or 0) for item, _ in shipped):
            return None     # a copy of a shipment confirmed already
        carrier = str(p.get("carrier") or "")
        detail: dict[str, Any] = {"packageReferenceId": str(p.get("order_number") or self.message.order_number),
                                  "carrierCode": carrier if carrier in AMAZON_CARRIERS else "Other",
                                  "trackingNumber": str(p.get("tracking_no") or ""),
                                  "shipDate": str(p.get("shipped_at") or ""),
                                  "orderItems": [{"orderItemId": item["OrderItemId"], "quantity": q}
                                                 for item, q in shipped]}
        if carrier not in AMAZON_CARRIERS:
            detail["carrierName"] = carrier or "Other"
        _call(self.http, "POST", f"{self.order}/shipmentConfirmation", "Amazon confirmShipment", headers=self.headers,
              json={"marketplaceId": self.markets[0], "packageDetail": detail}, ok=(204, 200))
        return detail["packageReferenceId"]

    def tracking(self) -> str | None:
        return None     # Amazon follows the parcel with the carrier itself

    def _xml_feed(self, feed_type: str, message_type: str, body: str) -> str:
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/'
               'XMLSchema-instance" xsi:noNamespaceSchemaLocation="amzn-envelope.xsd"><Header><DocumentVersion>1.01'
               f'</DocumentVersion><MerchantIdentifier>{escape(self.seller)}</MerchantIdentifier></Header>'
               f'<MessageType>{message_type}</MessageType><Message><MessageID>1</MessageID>{body}</Message>'
               '</AmazonEnvelope>').encode()
        return self._feed(feed_type, xml, XML_FEED)

    def _feed(self, feed_type: str, document: bytes, content: str) -> str:
        """A feed: its document created for ``content`` (the content type), uploaded, the feed created; its id."""
        doc = _json(_call(self.http, "POST", f"{self.url}{FEEDS}/documents", "Amazon createFeedDocument",
                          headers=self.headers, json={"contentType": content}), "Amazon createFeedDocument")
        if not isinstance(doc, dict) or not doc.get("url") or not doc.get("feedDocumentId"):
            raise ChannelApiError("Amazon createFeedDocument: the answer has no url and feedDocumentId")
        # The upload address is signed for the document: no credential goes with it.
        _call(self.http, "PUT", str(doc["url"]), "Amazon feed upload", headers={"Content-Type": content},
              content=document, ok=(200, 201, 204))
        feed = _json(_call(self.http, "POST", f"{self.url}{FEEDS}/feeds", "Amazon createFeed", headers=self.headers,
                           json={"feedType": feed_type, "marketplaceIds": self.markets,
                                 "inputFeedDocumentId": doc["feedDocumentId"]}), "Amazon createFeed")
        return str(feed.get("feedId") or "")

    def cancel(self) -> str | None:
        p = self.message.payload
        ident = escape(self.message.external_id)
        items = "" if p.get("whole") else "".join(
            f"<Item><AmazonOrderItemCode>{escape(str(item['OrderItemId']))}</AmazonOrderItemCode>"
            f"<CancelReason>GeneralAdjustment</CancelReason></Item>"
            for item, _ in self._item_ids(list(p.get("lines") or []), self.items()))
        body = (f"<OrderAcknowledgement><AmazonOrderID>{ident}</AmazonOrderID><StatusCode>Failure</StatusCode>"
                f"{items}</OrderAcknowledgement>")
        return self._xml_feed("POST_ORDER_ACKNOWLEDGEMENT_DATA", "OrderAcknowledgement", body)

    def refund(self) -> str | None:
        p = self.message.payload
        currency, left = str(p["currency"]), int(p["amount"])
        adjusted = []
        # The refund laid over the items in order, each up to its price and then its shipping.
        for item in self.items():
            for kind, key in (("Principal", "ItemPrice"), ("Shipping", "ShippingPrice")):
                price = item.get(key) if isinstance(item.get(key), dict) else {}
                try:
                    room = int(Decimal(str(price.get("Amount") or "0")).scaleb(exponent(currency)))
                except ArithmeticError:
                    room = 0
                take = min(left, room)
                if take > 0:
                    adjusted.append((item, kind, take))
                    left -= take
        if left > 0:
            raise MessageRefused(f"Amazon order {self.message.external_id}: the refund is "
                                 f"{decimal_text(left, currency)} {currency} more than its items' prices")
        rows = "".join(
            f"<AdjustedItem><AmazonOrderItemCode>{escape(str(item['OrderItemId']))}</AmazonOrderItemCode>"
            f"<MerchantAdjustmentItemID>{escape(str(p['refund']))}-{n}</MerchantAdjustmentItemID>"
            f"<AdjustmentReason>GeneralAdjustment</AdjustmentReason><ItemPriceAdjustments><Component>"
            f"<Type>{kind}</Type><Amount currency=\"{escape(currency)}\">{decimal_text(take, currency)}</Amount>"
            f"</Component></ItemPriceAdjustments></AdjustedItem>"
            for n, (item, kind, take) in enumerate(adjusted, start=1))
        body = (f"<OrderAdjustment><AmazonOrderID>{escape(self.message.external_id)}</AmazonOrderID>{rows}"
                "</OrderAdjustment>")
        return self._xml_feed("POST_PAYMENT_ADJUSTMENT_DATA", "OrderAdjustment", body)

    def stock(self) -> str | None:
        if not self.seller:
            raise MessageRefused(f"channel account '{self.name}' needs settings.seller_id (the listings feed's "
                                 "sellerId) to set stock")
        levels = stock_levels(self.message)
        if not levels:
            return None
        feed = {"header": {"sellerId": self.seller, "version": "2.0"},
                "messages": [{"messageId": n, "sku": sku, "operationType": "PATCH", "productType": "PRODUCT",
                              "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                           "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": qty}]}]}
                             for n, (sku, qty) in enumerate(levels.items(), start=1)]}
        return self._feed("JSON_LISTINGS_FEED", json.dumps(feed).encode(), JSON_FEED)


def amazon_report(account: Any, message: ChannelReport, http: httpx.Client) -> str | None:
    return _dispatch(_Amazon(account, http, message), message)

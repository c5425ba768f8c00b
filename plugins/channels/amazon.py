"""Amazon Selling Partner API channel: orders as the Orders API (v0) returns them, read unmodified.

Amazon gives an order in pieces, one call each: its header (``getOrders``, a page of orders, or
``getOrder``), its items (``getOrderItems``) and, for restricted data, its address
(``getOrderAddress``) and buyer (``getOrderBuyerInfo``). A payload is one such response as Amazon
returned it (``{"payload": {...}}``), or a JSON list of them in any order; the adapter joins them by
``AmazonOrderId`` into one canonical order per order header:

- an order whose header is in the payload more than once (two pages of a pull that overlap) is one
  order: the header with the later ``LastUpdateDate`` wins, and of two equally recent the later in
  the payload;
- an order needs its items: a header without its getOrderItems response is an error naming the
  order; items (or an address) of an order whose header is not in the payload are an error too.
  The raw payload is kept either way, so sending the missing piece with the rest makes the order;
- items from several getOrderItems pages are joined by ``OrderItemId``, and the last page (the one
  without a ``NextToken``) must be there.

Amounts are Amazon's Money objects (``{"CurrencyCode": "USD", "Amount": "10.00"}``), read exactly
into minor units; all of one order's must be in one currency. ``ItemPrice`` is the price of the
whole quantity, so a line's unit price is ItemPrice / QuantityOrdered, and an item whose price does
not divide into whole minor units is an error (never rounded). The order's freight is everything
Amazon charged besides goods and tax: ShippingPrice less ShippingDiscount, plus GiftWrapPrice and
the COD fee less its discount; an order with none of them has freight 0 (Amazon charged none, and
the OMS must not charge its own on top of what the buyer paid). Taxes are added to the order unless
``OrderTotal`` shows that they are included in the prices (VAT marketplaces): then the order's tax
is 0 and the amounts stay in the lines' extensions. An OrderTotal that matches neither way is kept
as the declared total, and the OMS holds the order for disagreeing totals.

Amazon takes the buyer's money. An order it has charged (Unshipped, PartiallyShipped, Shipped,
InvoiceUnconfirmed) carries a payment of its OrderTotal, transaction ``amazon:<AmazonOrderId>``;
one not charged yet (Pending, PendingAvailability, Unfulfillable) has none. A Canceled order is taken
in as cancelled: known already, the OMS cancels it or asks the warehouse to intercept it
(orders/updates.py). Everything the canonical order has no place for is kept as sent in the order's and
the lines' extensions, under Amazon's own names; nothing is refused for being there.

Amazon pushes no orders to a webhook (its notifications go through SQS or EventBridge and carry no
order): orders are pulled and handed over as files (``oms ingest --channel amazon FILE``), so
:meth:`AmazonChannel.verify` refuses every delivery. See docs/channels/amazon.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from oms_engine import CanonicalOrder, ChannelReport, JsonRejected, ParsedPayload, PulledPage, format_minor, hookimpl
from oms_engine import read_json as loads

from .pull_api import amazon_pull
from .report_api import amazon_report

# The statuses in which Amazon has charged the buyer.
CHARGED = frozenset({"Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"})
CANCELED = "Canceled"

EXPECTED = ("expected SP-API Orders v0 responses as Amazon returns them: getOrders "
            "({\"payload\": {\"Orders\": [...]}}), getOrderItems ({\"payload\": {\"AmazonOrderId\": ..., "
            "\"OrderItems\": [...]}}) or getOrderAddress ({\"payload\": {\"AmazonOrderId\": ..., "
            "\"ShippingAddress\": {...}}}), one or a JSON list of them")

# Header fields the canonical order has a place for; the rest goes to its extensions as sent.
_HEADER_MAPPED = frozenset({"AmazonOrderId", "PurchaseDate", "OrderStatus", "OrderType", "OrderTotal"})
# Item fields with a place on the canonical line (SellerSKU, Title and BuyerInfo are handled on their own).
_ITEM_MAPPED = frozenset({"QuantityOrdered", "ItemPrice", "PromotionDiscount"})
# ShippingAddress -> ship_to (AddressLine2 and AddressLine3 share line2).
_ADDRESS = {"Name": "name", "Phone": "phone", "CountryCode": "country", "StateOrRegion": "region", "City": "city",
            "District": "district", "AddressLine1": "line1", "PostalCode": "postcode"}
# What a buyer wrote for an item, shown as the line's properties rather than buried in its extensions.
_PROPERTIES = ("GiftMessageText", "GiftWrapLevel")
# Item amounts taken off the order's freight and tax (what is added is read in _Builder._line).
_FREIGHT_LESS = ("ShippingDiscount", "CODFeeDiscount")
_TAX_LESS = ("PromotionDiscountTax", "ShippingDiscountTax")
# What getOrderBuyerInfo says of the buyer, as the header's BuyerInfo would.
_BUYER = frozenset({"BuyerEmail", "BuyerName", "BuyerCounty", "BuyerTaxInfo", "PurchaseOrderNumber"})
# Where a canonical field came from, to name it in errors as Amazon calls it (longest prefix wins).
_SOURCE = {"placed_at": "PurchaseDate", "order_type": "OrderType", "channel_status": "OrderStatus",
           "currency": "OrderTotal.CurrencyCode", "declared_total": "OrderTotal", "payment": "OrderTotal",
           "payment.method": "PaymentMethod", "payment.transaction_id": "AmazonOrderId",
           "external_id": "AmazonOrderId", "deliver_from": "EarliestDeliveryDate",
           "deliver_by": "LatestDeliveryDate", "freight": "ShippingPrice less ShippingDiscount",
           "tax": "ItemTax", "coupon": "PromotionDiscount", "note": "BuyerRequestedCancel",
           "customer.phone": "ShippingAddress.Phone", "lines": "OrderItems",
           "extensions": "the order's fields kept as sent (extensions)",
           **{f"ship_to.{v}": f"ShippingAddress.{k}" for k, v in _ADDRESS.items()},
           "ship_to.line2": "ShippingAddress.AddressLine2/AddressLine3"}
_LINE_SOURCE = {"sku": "SellerSKU", "quantity": "QuantityOrdered", "unit_price": "ItemPrice", "name": "Title",
                "channel_line_id": "OrderItemId", "promotions": "PromotionIds", "properties": "BuyerInfo",
                "extensions": "(its fields kept as sent)"}
# Characters an order note may not hold (canonical.py): a buyer's text quoted in one is cleaned of them.
_NOT_IN_NOTE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_NAME_CHARS = 200    # CanonicalLine.name
_CODE_CHARS = 64     # LinePromotion.code
_NOTE_CHARS = 4000


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _instant(value: object) -> datetime | None:
    """An SP-API date-time (ISO 8601 with an offset) as an aware datetime, or None when it is not one the
    OMS can keep (the canonical order takes 1970 to 2100)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None or when.utcoffset() is None:
        return None
    try:
        utc = when.astimezone(UTC)
    except OverflowError:
        return None
    return when if datetime(1970, 1, 1, tzinfo=UTC) <= utc < datetime(2100, 1, 1, tzinfo=UTC) else None


@dataclass
class _Order:
    """What a payload says about one order, gathered from all its responses."""

    first: tuple[int, int]          # where the payload first names it (response, order): results keep that order
    header: dict[str, Any] | None = None
    # (has a date, LastUpdateDate, position): the highest wins.
    rank: tuple[int, datetime, tuple[int, int]] | None = None
    items: dict[str, Any] = field(default_factory=dict)   # by OrderItemId, in the order first seen
    item_pages: int = 0
    last_page: bool = False                     # a getOrderItems page without NextToken was seen
    details: dict[str, Any] = field(default_factory=dict)   # getOrderAddress / getOrderBuyerInfo fields
    detail_calls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Amounts:
    """An order's Money objects read into minor units, all in one currency; what is wrong, by field."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.currency: str | None = None
        self.currency_from = ""

    def read(self, obj: Mapping[str, Any], key: str, path: str) -> int | None:
        """The amount of Money ``obj[key]`` (None when absent or wrong: then an error names ``path``)."""
        money = obj.get(key)
        if money is None:
            return None
        if not isinstance(money, dict):
            self.errors.append(f"{path}: a Money object {{\"CurrencyCode\": ..., \"Amount\": ...}} is expected, "
                               f"not {_kind(money)}")
            return None
        code = money.get("CurrencyCode")
        try:
            CanonicalOrder.currency_digits(code)
        except ValueError as exc:
            self.errors.append(f"{path}.CurrencyCode: {exc}")
            return None
        assert isinstance(code, str)
        if self.currency is None:
            self.currency, self.currency_from = code, path
        elif code != self.currency:
            self.errors.append(f"{path}.CurrencyCode: {code}, but {self.currency_from} is in {self.currency}: "
                               f"all amounts of an order must be in one currency")
            return None
        try:
            return CanonicalOrder.minor_units(money.get("Amount"), code)
        except ValueError as exc:
            self.errors.append(f"{path}.Amount: {exc}")
            return None

    def total(self, obj: Mapping[str, Any], keys: tuple[str, ...], path: str) -> int:
        return sum(self.read(obj, k, f"{path}.{k}") or 0 for k in keys)


class AmazonChannel:
    name = "amazon"

    def parse(self, body: bytes) -> list[ParsedPayload]:
        try:
            data = loads(body)
        except JsonRejected as exc:
            return [ParsedPayload(None, error="invalid JSON" + str(exc).removeprefix("malformed JSON"))]
        listed = isinstance(data, list)
        responses = data if listed else [data]
        if not responses:
            return [ParsedPayload(None, error=f"an empty list: {EXPECTED}")]
        orders: dict[str, _Order] = {}
        problems: list[tuple[tuple[int, int], str]] = []   # (position, error) of responses not read
        foreign = 0
        for i, response in enumerate(responses):
            problem, amazons = self._take(response, i, orders)
            if problem is not None:
                foreign += not amazons
                where = f"[{i}]: " if listed else ""
                problems.append(((i, 0), f"{where}{problem}" + ("" if amazons else f"; {EXPECTED}")))
        if not orders and foreign == len(responses):
            # Nothing in it is Amazon's: one answer for the payload, not one per element of another channel's list.
            return [ParsedPayload(None, error=f"not an SP-API Orders response ({_what(data)}); {EXPECTED}")]
        results = [(o.first, self._order(ext, o)) for ext, o in orders.items()]
        results += [(at, ParsedPayload(None, error=msg)) for at, msg in problems]
        return [p for _, p in sorted(results, key=lambda r: r[0])]

    # -- reading the responses ------------------------------------------------------------------------
    def _take(self, response: Any, position: int, orders: dict[str, _Order]) -> tuple[str | None, bool]:
        """File one response's orders, items or details under their AmazonOrderId. Returns what is wrong
        with it, if anything, and whether it is an SP-API response at all."""
        if not isinstance(response, dict):
            return f"{_kind(response)}, not an SP-API response", False
        if "payload" not in response:
            errors = response.get("errors")
            if isinstance(errors, list) and errors:
                said = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" if isinstance(e, dict) else str(e)
                                 for e in errors[:5])
                return f"an SP-API error response, with no orders: {said[:500]}", True
            return f"not an SP-API response ({_what(response)})", False
        payload = response["payload"]
        if not isinstance(payload, dict):
            return f"payload is {_kind(payload)}, not an object", False

        def order(ext: str, at: tuple[int, int]) -> _Order:
            if ext not in orders:
                orders[ext] = _Order(first=at)
            return orders[ext]

        if "Orders" in payload:   # getOrders: a page of headers
            headers = payload["Orders"]
            if not isinstance(headers, list):
                return f"payload.Orders is {_kind(headers)}, not a list of orders", True
            stray = [j for j, h in enumerate(headers) if not _order_id(h)]
            for j, header in enumerate(headers):
                ext = _order_id(header)
                if ext:
                    _header(order(ext, (position, j)), header, (position, j))
            if stray:
                more = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
                return f"payload.Orders.{stray[0]}: an order without an AmazonOrderId{more}", True
            return None, True
        ext = _order_id(payload)
        if not ext:
            keys = ", ".join(list(payload)[:8])
            return f"payload has no AmazonOrderId (its keys: {keys or 'none'})", False
        found = order(ext, (position, 0))
        if "OrderItems" in payload:   # getOrderItems: one page of one order's items
            items = payload["OrderItems"]
            found.item_pages += 1
            if not payload.get("NextToken"):
                found.last_page = True
            if not isinstance(items, list):
                found.problems.append(f"OrderItems: a list of items is expected, not {_kind(items)}")
                return None, True
            for item in items:
                key = item.get("OrderItemId") if isinstance(item, dict) else None
                # A later page's copy of an item replaces the earlier one, in the earlier one's place.
                found.items[key if isinstance(key, str) and key else f"#{len(found.items)}"] = item
            return None, True
        if "OrderStatus" in payload or "PurchaseDate" in payload:   # getOrder: one header
            _header(found, payload, (position, 0))
            return None, True
        # getOrderAddress or getOrderBuyerInfo: restricted details, the later response's winning.
        found.details.update((k, v) for k, v in payload.items() if k != "AmazonOrderId")
        found.detail_calls.append("getOrderAddress" if "ShippingAddress" in payload else "getOrderBuyerInfo")
        return None, True

    # -- one order ------------------------------------------------------------------------------------
    def _order(self, ext: str, found: _Order) -> ParsedPayload:
        raw = {"header": found.header, "items": list(found.items.values()), "details": found.details}
        header = found.header
        if header is None:
            parts = list(dict.fromkeys(
                (["its items (getOrderItems)"] if found.item_pages else []) +
                [f"its {'address' if c == 'getOrderAddress' else 'buyer'} ({c})" for c in found.detail_calls]))
            verb = "is" if len(parts) == 1 and "items" not in parts[0] else "are"
            return ParsedPayload(ext, error=f"order {ext}: {' and '.join(parts)} {verb} in the payload but not the "
                                            f"order itself: the getOrders (or getOrder) response that lists it is "
                                            f"needed in the same payload", raw=raw)
        if not found.item_pages:
            return ParsedPayload(ext, error=f"order {ext}: its items are not in the payload: the getOrderItems "
                                            f"response for {ext} (GET /orders/v0/orders/{ext}/orderItems) is needed "
                                            f"in the same payload as its header", raw=raw)
        if found.problems:
            return ParsedPayload(ext, error="; ".join(found.problems), raw=raw)
        if not found.last_page:
            return ParsedPayload(ext, error=f"order {ext}: its getOrderItems response has more pages (NextToken): "
                                            f"send every page in the same payload", raw=raw)
        errors: list[str] = []
        obj = _Builder(ext, header, list(found.items.values()), found.details, errors).build()
        if errors:
            return ParsedPayload(ext, error="; ".join(errors), raw=raw)
        try:
            canon = CanonicalOrder.model_validate(obj.fields)
        except ValidationError as exc:
            return ParsedPayload(ext, error="; ".join(obj.describe(exc)), raw=raw)
        return ParsedPayload(ext, order=canon, raw=raw)

    # Amazon pushes no orders: POST /api/webhooks/amazon is answered 404, saying how its orders come in.
    webhooks = False

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """Always False: Amazon sends no orders to a webhook (they are pulled), so no delivery is genuine."""
        return False

    def report(self, account: Any, message: ChannelReport, http: Any) -> str | None:
        """Tell the channel what became of one of its orders (channels/reports.py; the calls are report_api.py's)."""
        return amazon_report(account, message, http)

    def pull(self, account: Any, cursor: str | None, http: Any) -> PulledPage:
        """A page of the seller's orders by ``getOrders``, with each order's items and address (pull_api.py)."""
        return amazon_pull(account, cursor, http)


def _order_id(obj: Any) -> str | None:
    ext = obj.get("AmazonOrderId") if isinstance(obj, dict) else None
    return ext if isinstance(ext, str) and ext else None


def _header(found: _Order, header: dict[str, Any], position: tuple[int, int]) -> None:
    """Keep ``header`` if it is the most recent of the order's: by LastUpdateDate, then by position."""
    updated = _instant(header.get("LastUpdateDate"))
    rank = (1, updated, position) if updated is not None else (0, datetime(1970, 1, 1, tzinfo=UTC), position)
    if found.rank is None or rank > found.rank:
        found.header, found.rank = header, rank


def _what(data: Any) -> str:
    """What a payload that is not Amazon's looks like, to say so."""
    if isinstance(data, dict):
        keys = list(data)
        shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
        return f"an object with the keys {shown}" if keys else "an empty object"
    if isinstance(data, list):
        return f"a list of {len(data)} elements, none of them an SP-API response"
    return _kind(data)


@dataclass
class _Built:
    fields: dict[str, Any]
    sources: dict[str, str]   # canonical field (dotted) -> the SP-API field it came from

    def describe(self, exc: ValidationError) -> list[str]:
        """The model's complaints, each naming the SP-API field it is about."""
        out = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            source = next((self.sources[p] for p in _prefixes(loc) if p in self.sources), loc)
            out.append(f"{source}: {msg}" if source else msg)
        return list(dict.fromkeys(out))


def _prefixes(loc: str) -> list[str]:
    parts = loc.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


class _Builder:
    """One order's header, items and details into the fields of a canonical order; what is wrong goes to
    ``errors``, naming the SP-API field."""

    def __init__(self, ext: str, header: dict[str, Any], items: list[Any], details: dict[str, Any],
                 errors: list[str]) -> None:
        self.ext, self.header, self.items, self.details, self.errors = ext, header, items, details, errors
        self.money = _Amounts(errors)
        self.sources = dict(_SOURCE)

    def build(self) -> _Built:
        h = self.header
        # OrderTotal first: the currency every other amount must be in is the total's.
        declared = self.money.read(h, "OrderTotal", "OrderTotal")
        ext: dict[str, Any] = {k: v for k, v in h.items() if k not in _HEADER_MAPPED}
        # The address and the buyer are read below; the rest of what getOrderAddress says is kept as sent.
        ext.update((k, v) for k, v in self.details.items() if k != "ShippingAddress" and k not in _BUYER)
        execution = h.get("PaymentExecutionDetail")
        if isinstance(execution, list):   # COD sub-payments: read only so their currency is checked
            for i, part in enumerate(execution):
                if isinstance(part, dict):
                    self.money.read(part, "Payment", f"PaymentExecutionDetail.{i}.Payment")
        lines, sums, notes = self._lines()
        goods = sum(ln.get("unit_price", 0) * ln["quantity"] for ln in lines
                    if isinstance(ln.get("unit_price"), int) and isinstance(ln.get("quantity"), int))
        freight = sums["freight_plus"] - sums["freight_less"]
        if freight < 0:
            cur = self.money.currency or ""
            less, plus = format_minor(sums["freight_less"], cur), format_minor(sums["freight_plus"], cur)
            self.errors.append(f"ShippingDiscount: the discounts on shipping ({less}) are more than what was "
                               f"charged for it ({plus})")
        coupon = sums["promotion"]
        tax, included = self._tax(declared, goods + max(freight, 0) - coupon, sums)
        if included:
            ext["TaxIncludedInPrices"] = True
        address = self.details.get("ShippingAddress", h.get("ShippingAddress"))
        ship_to, address_rest = self._address(address)
        if address_rest:
            ext["ShippingAddress"] = address_rest
        elif "ShippingAddress" in ext:
            del ext["ShippingAddress"]
        customer = self._customer(h, address, ext)
        fields: dict[str, Any] = {
            "channel": AmazonChannel.name, "external_id": self.ext, "currency": self.money.currency,
            "placed_at": h.get("PurchaseDate"), "customer": customer, "ship_to": ship_to, "lines": lines,
            "freight": max(freight, 0), "tax": tax, "coupon": coupon, "declared_total": declared,
            "channel_status": h.get("OrderStatus", ""), "order_type": h.get("OrderType", ""), "extensions": ext,
            # Cancelled at Amazon: stored all the same and stopped, or, known already, taken as an update.
            "cancelled": h.get("OrderStatus") == CANCELED}
        if self.money.currency is None:
            self.errors.append("OrderTotal: the order has no amounts (neither OrderTotal nor an item's ItemPrice; "
                               "Amazon leaves them out until it has charged the buyer), so its currency is unknown")
        self._window(h, fields, ext)
        status = h.get("OrderStatus")
        if isinstance(status, str) and status in CHARGED:
            method = h.get("PaymentMethod")
            ext.pop("PaymentMethod", None)
            amount = declared if declared is not None else max(goods + max(freight, 0) + tax - coupon, 0)
            fields["payment"] = {"transaction_id": f"amazon:{self.ext}", "amount": amount,
                                 "method": method if method is not None else ""}
        if notes:
            fields["note"] = _NOT_IN_NOTE.sub("?", "\n".join(notes))[:_NOTE_CHARS]
        return _Built(fields, self.sources)

    def _lines(self) -> tuple[list[dict[str, Any]], dict[str, int], list[str]]:
        lines: list[dict[str, Any]] = []
        sums = dict.fromkeys(("freight_plus", "freight_less", "tax_plus", "tax_less", "promotion"), 0)
        notes: list[str] = []
        for i, item in enumerate(self.items):
            path = f"OrderItems.{i}"
            for k, v in _LINE_SOURCE.items():
                self.sources[f"lines.{i}.{k}"] = f"{path}.{v}" if not v.startswith("(") else f"{path} {v}"
            if not isinstance(item, dict):
                self.errors.append(f"{path}: an order item is an object, not {_kind(item)}")
                continue
            line, sums_of_item, note = self._line(item, path, i)
            lines.append(line)
            for k, v in sums_of_item.items():
                sums[k] += v
            if note:
                notes.append(note)
        if not lines and not self.errors:
            self.errors.append(f"OrderItems: order {self.ext} has no items")
        return lines, sums, notes

    def _line(self, item: dict[str, Any], path: str, i: int) -> tuple[dict[str, Any], dict[str, int], str | None]:
        ext: dict[str, Any] = {k: v for k, v in item.items() if k not in _ITEM_MAPPED}
        sku = item.get("SellerSKU")
        if not (isinstance(sku, str) and sku):
            # No seller SKU (an item Amazon lists for the seller without one): the ASIN names the product.
            sku = item.get("ASIN")
            self.sources[f"lines.{i}.sku"] = f"{path}.ASIN (there is no SellerSKU)"
        else:
            ext.pop("SellerSKU")
        quantity = item.get("QuantityOrdered")
        line: dict[str, Any] = {"sku": sku, "quantity": quantity}
        if isinstance(item.get("OrderItemId"), str):
            # Also kept in the extensions: the core does not store channel_line_id.
            line["channel_line_id"] = item["OrderItemId"]
        title = item.get("Title")
        if isinstance(title, str):
            ext.pop("Title")
            if len(title) > _NAME_CHARS:
                ext["Title"] = title   # the whole of it, as sent
                title = title[:_NAME_CHARS - 1] + "…"
            line["name"] = title
        elif title is not None:
            line["name"] = title   # the model names what is wrong with it
        price = self.money.read(item, "ItemPrice", f"{path}.ItemPrice")
        counted = isinstance(quantity, int) and not isinstance(quantity, bool) and quantity > 0
        if price is not None and counted:
            assert isinstance(quantity, int)
            if price % quantity:
                self.errors.append(f"{path}.ItemPrice: {_amount(item)} for {quantity} units is not a whole number "
                                   f"of {self.money.currency} minor units a unit; the adapter does not round it")
            else:
                line["unit_price"] = price // quantity
        buyer = item.get("BuyerInfo")
        gift_from = item if "GiftWrapPrice" in item or "GiftWrapTax" in item or not isinstance(buyer, dict) else buyer
        gift_path = path if gift_from is item else f"{path}.BuyerInfo"
        sums = {"freight_plus": self.money.total(item, ("ShippingPrice", "CODFee"), path)
                + self.money.total(gift_from, ("GiftWrapPrice",), gift_path),
                "freight_less": self.money.total(item, _FREIGHT_LESS, path),
                "tax_plus": self.money.total(item, ("ItemTax", "ShippingTax"), path)
                + self.money.total(gift_from, ("GiftWrapTax",), gift_path),
                "tax_less": self.money.total(item, _TAX_LESS, path)}
        points = item.get("PointsGranted")
        if isinstance(points, dict):   # read only so that its currency is checked
            self.money.read(points, "PointsMonetaryValue", f"{path}.PointsGranted.PointsMonetaryValue")
        discount = self.money.read(item, "PromotionDiscount", f"{path}.PromotionDiscount")
        sums["promotion"] = discount or 0
        if discount:
            ids = item.get("PromotionIds")
            codes = [c for c in ids if isinstance(c, str)] if isinstance(ids, list) else []
            code = ",".join(codes)
            line["promotions"] = [{"code": code[:_CODE_CHARS], "kind": "PromotionDiscount", "amount": discount}]
            if len(code) <= _CODE_CHARS and codes == ids:
                ext.pop("PromotionIds", None)   # all of it is in the promotion's code
        elif item.get("PromotionIds") == []:
            ext.pop("PromotionIds")
        if isinstance(buyer, dict):
            properties = [{"name": k, "value": buyer[k]} for k in _PROPERTIES if isinstance(buyer.get(k), str)]
            custom = buyer.get("BuyerCustomizedInfo")
            url = custom.get("CustomizedURL") if isinstance(custom, dict) else None
            if isinstance(url, str):
                properties.append({"name": "CustomizedURL", "value": url})
            if properties:
                line["properties"] = properties
                rest = {k: v for k, v in buyer.items() if k not in _PROPERTIES
                        and not (k == "BuyerCustomizedInfo" and isinstance(url, str) and len(custom) == 1)}
                if rest:
                    ext["BuyerInfo"] = rest
                else:
                    del ext["BuyerInfo"]
        line["extensions"] = ext
        return line, sums, self._cancel_note(item, sku)

    @staticmethod
    def _cancel_note(item: dict[str, Any], sku: Any) -> str | None:
        """A line for the order's note when the buyer asked to cancel the item: support must see it before
        the order ships, and the extensions are not where anybody looks first."""
        asked = item.get("BuyerRequestedCancel")
        if not isinstance(asked, dict) or str(asked.get("IsBuyerRequestedCancel")).lower() != "true":
            return None
        reason = asked.get("BuyerCancelReason")
        what = f"item {item.get('OrderItemId')} ({sku})" if isinstance(sku, str) else f"item {item.get('OrderItemId')}"
        return f"Amazon: the buyer asked to cancel {what}" + (f": {reason}" if isinstance(reason, str) and reason
                                                               else "")

    def _tax(self, declared: int | None, before_tax: int, sums: dict[str, int]) -> tuple[int, bool]:
        """The order's tax, and whether the prices include it (VAT marketplaces): whichever reading makes
        the lines add up to OrderTotal; taxes added when none does (the OMS then holds the order)."""
        net = sums["tax_plus"] - sums["tax_less"]
        readings = ([(net, False)] if net >= 0 else []) + [(sums["tax_plus"], False), (0, True)]
        if declared is not None:
            for tax, included in readings:
                if before_tax + tax == declared:
                    return tax, included
        return readings[0]

    def _address(self, address: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """ship_to from a ShippingAddress, and the parts it has no place for."""
        if address is None:
            return {}, {}
        if not isinstance(address, dict):
            self.errors.append(f"ShippingAddress: an address object is expected, not {_kind(address)}")
            return {}, {}
        ship_to = {_ADDRESS[k]: v for k, v in address.items() if k in _ADDRESS and v is not None}
        extra = [address.get(k) for k in ("AddressLine2", "AddressLine3") if address.get(k) is not None]
        if extra:
            wrong = next((v for v in extra if not isinstance(v, str)), None)
            ship_to["line2"] = wrong if wrong is not None else ", ".join(v for v in extra if v)
        rest = {k: v for k, v in address.items() if k not in _ADDRESS and k not in ("AddressLine2", "AddressLine3")}
        return ship_to, rest

    def _customer(self, h: dict[str, Any], address: Any, ext: dict[str, Any]) -> dict[str, Any]:
        """The buyer: known by the (anonymised, stable) BuyerEmail Amazon gives, else by the order."""
        buyer = dict(h["BuyerInfo"]) if isinstance(h.get("BuyerInfo"), dict) else {}
        buyer.update((k, v) for k, v in self.details.items() if k in _BUYER)
        email = buyer.get("BuyerEmail")
        address = address if isinstance(address, dict) else {}
        known = isinstance(email, str) and 0 < len(email) <= 128
        customer: dict[str, Any] = {"ref": email if known else f"amazon:{self.ext}"}
        self.sources["customer.ref"] = "BuyerInfo.BuyerEmail" if known else "AmazonOrderId"
        if email is not None:
            customer["email"] = email
            self.sources["customer.email"] = "BuyerInfo.BuyerEmail"
        name = buyer.get("BuyerName")
        if name is not None and name != "":   # an empty one says nothing: the address's name does
            customer["name"] = name
            self.sources["customer.name"] = "BuyerInfo.BuyerName"
        elif address.get("Name") is not None:
            customer["name"] = address["Name"]
            self.sources["customer.name"] = "ShippingAddress.Name"
        if address.get("Phone") is not None:
            customer["phone"] = address["Phone"]
        rest = {k: v for k, v in buyer.items() if k not in ("BuyerEmail", "BuyerName")}
        if rest:
            ext["BuyerInfo"] = rest
        else:
            ext.pop("BuyerInfo", None)
        return customer

    @staticmethod
    def _window(h: dict[str, Any], fields: dict[str, Any], ext: dict[str, Any]) -> None:
        """The delivery window Amazon promised the buyer, when it is one; else its dates stay as sent."""
        start, end = _instant(h.get("EarliestDeliveryDate")), _instant(h.get("LatestDeliveryDate"))
        if end is None:
            return
        fields["deliver_by"] = end
        ext.pop("LatestDeliveryDate", None)
        if start is not None and start <= end:
            fields["deliver_from"] = start
            ext.pop("EarliestDeliveryDate", None)


def _amount(item: dict[str, Any]) -> str:
    price = item.get("ItemPrice")
    return str(price.get("Amount")) if isinstance(price, dict) else "?"


@hookimpl(trylast=True)
def oms_register_channels(register: Any) -> None:
    register(AmazonChannel())

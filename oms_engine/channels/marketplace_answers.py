"""The marketplace stand-in's answers to what the OMS tells it (marketplace.py has the list): each function takes
the marketplace with its lock held, the method, the path and the body as JSON (or text), and answers a status
and a JSON value. They check what real APIs check (the order exists, quantities left, refunds within what was
paid) and apply it to the orders the marketplace holds, so a second copy of a report finds it done.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .marketplace import Listed, Marketplace

Answer = tuple[int, Any]
NOT_FOUND: Answer = (404, {"errors": "Not Found"})
WOO_PRODUCTS = "/wp-json/wc/v3/products"


def _money(text: Any) -> Decimal:
    try:
        return Decimal(str(text or "0"))
    except InvalidOperation:
        return Decimal(-1)


# -- Shopify -----------------------------------------------------------------------------------------------------
def shopify(m: Marketplace, method: str, path: str, body: Any) -> Answer:
    """``path``: after ``/admin/api/<version>/``."""
    if path == "fulfillments.json" and method == "POST":
        return _fulfil(m, body)
    if path == f"locations/{m.location_id}.json" and method == "GET":
        return 200, {"location": {"id": m.location_id, "name": "Shop location", "active": True}}
    if path == "inventory_levels/set.json" and method == "POST":
        return _set_level(m, body)
    found = re.fullmatch(r"orders/(\d+)(?:\.json|/(.+))", path)
    if found is None:
        return NOT_FOUND
    oid, rest = found.group(1), found.group(2)
    listed = m.orders.get(oid)
    if listed is None:
        return NOT_FOUND
    if rest is None and method == "GET":
        return 200, {"order": listed.order}
    if rest == "fulfillment_orders.json" and method == "GET":
        return 200, {"fulfillment_orders": [_fulfillment_order(m, listed)]}
    if rest == "fulfillments.json" and method == "GET":
        return 200, {"fulfillments": [_shown(f) for f in m.fulfillments.get(oid, [])]}
    events = re.fullmatch(r"fulfillments/(\d+)/events\.json", rest or "")
    if events is not None:
        return _event(m, oid, events.group(1), method, body)
    if rest == "cancel.json" and method == "POST":
        if listed.order.get("cancelled_at"):
            return 422, {"error": "Order has already been cancelled"}
        if m.fulfillments.get(oid):
            return 422, {"error": "Cannot cancel an order with fulfillments"}
        reason = (body or {}).get("reason") or "other"
        m._touch(listed, cancelled_at=f"{listed.updated.isoformat()}", cancel_reason=reason)
        return 200, {"order": listed.order}
    if rest == "transactions.json" and method == "GET":
        return 200, {"transactions": _transactions(m, listed)}
    if rest == "refunds.json":
        if method == "GET":
            return 200, {"refunds": m.refunds.get(oid, [])}
        if method == "POST":
            return _refund(m, listed, body)
    return NOT_FOUND


def shopify_products(m: Marketplace) -> list[dict[str, Any]]:
    """The shop's products, by id, each with its variants (from ``add_product``)."""
    products: dict[int, dict[str, Any]] = {}
    for r in m.products:
        product = products.setdefault(r["product_id"], {"id": r["product_id"], "title": r["sku"], "variants": []})
        product["variants"].append({"id": r["variant_id"], "product_id": r["product_id"], "sku": r["sku"],
                                    "inventory_item_id": r["inventory_item_id"],
                                    "inventory_management": "shopify" if r["tracked"] else None,
                                    "inventory_quantity": m.inventory.get(r["sku"], 0)})
    return [products[k] for k in sorted(products)]


def _level(m: Marketplace, record: dict[str, Any]) -> dict[str, Any]:
    return {"inventory_item_id": record["inventory_item_id"], "location_id": m.location_id,
            "available": m.inventory.get(record["sku"], 0) if record["tracked"] else None}


def shopify_levels(m: Marketplace, query: dict[str, str]) -> Answer:
    """``GET inventory_levels.json``: by ``inventory_item_ids`` (at most 50) and ``location_ids``."""
    try:
        items = {int(i) for i in query.get("inventory_item_ids", "").split(",") if i}
        locations = {int(i) for i in query.get("location_ids", "").split(",") if i}
    except ValueError:
        return 400, {"errors": {"inventory_item_ids": "must be a list of ids"}}
    if not items and not locations:
        return 422, {"errors": ["Must specify at least one of inventory_item_ids or location_ids"]}
    if len(items) > 50:
        return 422, {"errors": {"inventory_item_ids": ["too many ids: at most 50"]}}
    levels = [_level(m, r) for r in m.products if not items or r["inventory_item_id"] in items]
    return 200, {"inventory_levels": [lv for lv in levels if not locations or lv["location_id"] in locations]}


def _set_level(m: Marketplace, body: Any) -> Answer:
    b = body if isinstance(body, dict) else {}
    qty = b.get("available")
    if not isinstance(qty, int) or isinstance(qty, bool) or not b.get("inventory_item_id") or not b.get("location_id"):
        return 400, {"errors": {"inventory_level": "Required parameter missing or invalid: location_id, "
                                                   "inventory_item_id and available"}}
    if b["location_id"] != m.location_id:
        return 404, {"errors": "Not Found"}
    found = [r for r in m.products if r["inventory_item_id"] == b["inventory_item_id"]]
    if not found:
        return 404, {"errors": "Not Found"}
    if not found[0]["tracked"]:
        return 422, {"errors": ["Inventory item does not have inventory tracking enabled"]}
    m.inventory[found[0]["sku"]] = qty
    return 200, {"inventory_level": _level(m, found[0])}


def _line_items(listed: Listed) -> list[dict[str, Any]]:
    return [li for li in listed.order.get("line_items") or [] if isinstance(li, dict)]


def _taken(m: Marketplace, oid: str) -> dict[str, int]:
    """Units of each line item fulfilled or cancelled."""
    out: dict[str, int] = {}
    for f in m.fulfillments.get(oid, []):
        for li in f["line_items"]:
            out[str(li["id"])] = out.get(str(li["id"]), 0) + li["quantity"]
    for r in m.refunds.get(oid, []):
        for rl in r.get("refund_line_items", []):
            if rl.get("restock_type") == "cancel":
                out[str(rl["line_item_id"])] = out.get(str(rl["line_item_id"]), 0) + rl["quantity"]
    return out


def _fulfillment_order(m: Marketplace, listed: Listed) -> dict[str, Any]:
    taken = _taken(m, listed.id)
    items = [{"id": int(li["id"]) + 1, "line_item_id": li["id"], "quantity": li.get("quantity", 0),
              "fulfillable_quantity": max(int(li.get("quantity") or 0) - taken.get(str(li["id"]), 0), 0)}
             for li in _line_items(listed)]
    open_ = not listed.order.get("cancelled_at") and any(i["fulfillable_quantity"] for i in items)
    return {"id": int(listed.id) + 1, "order_id": int(listed.id), "status": "open" if open_ else "closed",
            "line_items": items}


def _fulfil(m: Marketplace, body: Any) -> Answer:
    f = (body or {}).get("fulfillment") if isinstance(body, dict) else None
    if not isinstance(f, dict) or not isinstance(f.get("line_items_by_fulfillment_order"), list):
        return 400, {"errors": {"fulfillment": "line_items_by_fulfillment_order is required"}}
    made: list[dict[str, Any]] = []
    oid = None
    for group in f["line_items_by_fulfillment_order"]:
        oid = str(int(group.get("fulfillment_order_id", 0)) - 1)
        listed = m.orders.get(oid)
        if listed is None:
            return 404, {"errors": "Fulfillment order not found"}
        fo = {i["id"]: i for i in _fulfillment_order(m, listed)["line_items"]}
        for item in group.get("fulfillment_order_line_items") or []:
            have = fo.get(item.get("id"))
            if have is None or not 0 < int(item.get("quantity") or 0) <= have["fulfillable_quantity"]:
                return 422, {"errors": ["Invalid fulfillment order line item quantity requested."]}
            made.append({"id": have["line_item_id"], "quantity": int(item["quantity"])})
    if oid is None or not made:
        return 422, {"errors": ["No line items to fulfil."]}
    info = f.get("tracking_info") or {}
    fulfillment = {"id": m._next_id(), "order_id": int(oid), "status": "success",
                   "tracking_number": info.get("number") or None, "tracking_company": info.get("company") or None,
                   "line_items": made, "events": []}
    m.fulfillments.setdefault(oid, []).append(fulfillment)
    listed = m.orders[oid]
    done = _fulfillment_order(m, listed)["status"] != "open"
    m._touch(listed, fulfillment_status="fulfilled" if done else "partial")
    if done and m.capture_on_fulfilment and listed.order.get("financial_status") == "authorized":
        m._capture(listed)
    return 201, {"fulfillment": _shown(fulfillment)}


def _shown(fulfillment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fulfillment.items() if k != "events"}


def _event(m: Marketplace, oid: str, fid: str, method: str, body: Any) -> Answer:
    found = [f for f in m.fulfillments.get(oid, []) if str(f["id"]) == fid]
    if not found:
        return NOT_FOUND
    if method == "GET":
        return 200, {"fulfillment_events": found[0]["events"]}
    event = (body or {}).get("event") if isinstance(body, dict) else None
    known = {"in_transit", "out_for_delivery", "delivered", "failure", "attempted_delivery", "confirmed",
             "label_printed", "label_purchased", "ready_for_pickup"}
    if not isinstance(event, dict) or event.get("status") not in known:
        return 422, {"errors": {"status": ["is not included in the list"]}}
    made = {"id": m._next_id(), "fulfillment_id": int(fid), "status": event["status"],
            "message": event.get("message")}
    found[0]["events"].append(made)
    return 201, {"fulfillment_event": made}


def _transactions(m: Marketplace, listed: Listed) -> list[dict[str, Any]]:
    o = listed.order
    out = []
    gateways = o.get("payment_gateway_names") or ["manual"]
    common = {"order_id": int(listed.id), "status": "success", "amount": str(o.get("total_price")),
              "currency": o.get("currency"), "gateway": gateways[0]}
    authorization = int(listed.id) * 10 + 6
    if o.get("financial_status") == "authorized" or listed.captured:
        # Held on the card; what was captured of it later is a capture of that authorization.
        out.append({"id": authorization, "kind": "authorization", **common})
        if listed.captured:
            out.append({"id": int(listed.id) * 10 + 8, "kind": "capture", "parent_id": authorization, **common})
    elif o.get("financial_status") in ("paid", "partially_refunded", "refunded"):
        out.append({"id": int(listed.id) * 10 + 7, "kind": "sale", **common})
    for r in m.refunds.get(listed.id, []):
        out += r["transactions"]
    return out


def _refund(m: Marketplace, listed: Listed, body: Any) -> Answer:
    r = (body or {}).get("refund") if isinstance(body, dict) else None
    if not isinstance(r, dict):
        return 400, {"errors": {"refund": "required"}}
    sales = {t["id"]: t for t in _transactions(m, listed) if t["kind"] in ("sale", "capture")}
    paid = sum((_money(t["amount"]) for t in sales.values()), Decimal(0))
    refunded = sum((_money(t["amount"]) for x in m.refunds.get(listed.id, []) for t in x["transactions"]), Decimal(0))
    transactions = []
    for t in r.get("transactions") or []:
        amount = _money(t.get("amount"))
        if t.get("parent_id") not in sales or t.get("kind") != "refund" or amount <= 0:
            return 422, {"errors": {"transactions": ["parent_id must be a successful sale of this order"]}}
        if refunded + amount > paid:
            return 422, {"errors": {"base": [f"Refund amount must be less than or equal to {paid - refunded}"]}}
        refunded += amount
        transactions.append({"id": m._next_id(), "order_id": int(listed.id), "kind": "refund", "status": "success",
                             "amount": str(amount), "parent_id": t["parent_id"], "gateway": t.get("gateway")})
    lines = {str(li["id"]): li for li in _line_items(listed)}
    taken = _taken(m, listed.id)
    cancelled = []
    for rl in r.get("refund_line_items") or []:
        li = lines.get(str(rl.get("line_item_id")))
        qty = int(rl.get("quantity") or 0)
        if li is None or qty <= 0 or qty > int(li.get("quantity") or 0) - taken.get(str(li["id"]), 0):
            return 422, {"errors": {"refund_line_items": ["quantity is more than the line has left"]}}
        cancelled.append({"line_item_id": li["id"], "quantity": qty, "restock_type": rl.get("restock_type")})
    if not transactions and not cancelled:
        return 422, {"errors": {"base": ["A refund needs transactions or line items"]}}
    made = {"id": m._next_id(), "order_id": int(listed.id), "note": r.get("note"), "transactions": transactions,
            "refund_line_items": cancelled}
    m.refunds.setdefault(listed.id, []).append(made)
    if transactions:
        m._touch(listed, financial_status="refunded" if refunded >= paid else "partially_refunded")
    return 201, {"refund": made}


# -- WooCommerce -------------------------------------------------------------------------------------------------
def woocommerce(m: Marketplace, method: str, path: str, body: Any) -> Answer:
    batch = re.fullmatch(r"/wp-json/wc/v3/products(?:/(\d+)/variations)?/batch", path)
    if batch is not None and method == "POST":
        return _woo_batch(m, body, int(batch.group(1)) if batch.group(1) else None)
    found = re.fullmatch(r"/wp-json/wc/v3/orders/(\d+)(?:/(notes|refunds))?", path)
    listed = m.orders.get(found.group(1)) if found else None
    if found is None or listed is None:
        return 404, {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.",
                     "data": {"status": 404}}
    what = found.group(2)
    if what is None:
        if method == "GET":
            return 200, listed.order
        if method == "PUT":
            status = (body or {}).get("status") if isinstance(body, dict) else None
            if status not in ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"):
                return 400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): status",
                             "data": {"status": 400}}
            m._touch(listed, status=status)
            return 200, listed.order
        return NOT_FOUND
    kept = (m.notes if what == "notes" else m.refunds).setdefault(listed.id, [])
    if method == "GET":
        return 200, kept
    if method != "POST" or not isinstance(body, dict):
        return NOT_FOUND
    if what == "notes":
        note = {"id": m._next_id(), "note": str(body.get("note") or ""),
                "customer_note": bool(body.get("customer_note"))}
        kept.append(note)
        return 201, note
    amount = _money(body.get("amount"))
    left = _money(listed.order.get("total")) - sum((_money(r["amount"]) for r in kept), Decimal(0))
    if amount <= 0 or amount > left:
        return 400, {"code": "woocommerce_rest_cannot_create_order_refund", "message": "Invalid refund amount.",
                     "data": {"status": 400}}
    refund = {"id": m._next_id(), "amount": str(amount), "reason": str(body.get("reason") or ""),
              "refunded_payment": bool(body.get("api_refund"))}
    kept.append(refund)
    m._touch(listed, status="refunded" if amount == left else listed.order.get("status"))
    return 201, refund


def _woo_product(m: Marketplace, r: dict[str, Any]) -> dict[str, Any]:
    variation = r["variant_id"] is not None
    qty = m.inventory.get(r["sku"], 0)
    return {"id": r["variant_id"] if variation else r["product_id"], "name": r["sku"], "sku": r["sku"],
            "type": "variation" if variation else "simple", "parent_id": r["product_id"] if variation else 0,
            "manage_stock": r["tracked"], "stock_quantity": qty if r["tracked"] else None,
            "stock_status": "instock" if qty > 0 or not r["tracked"] else "outofstock"}


def woocommerce_products(m: Marketplace, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """``GET /products``: with ``sku``, products and variations whose SKU is one of the comma-separated list or
    the whole text (as WooCommerce matches), ``per_page`` (at most 100) a ``page``."""
    try:
        per_page, page = int(query.get("per_page", "10")), int(query.get("page", "1"))
        if not 1 <= per_page <= 100 or page < 1:
            raise ValueError
    except ValueError:
        return 400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page, page",
                     "data": {"status": 400}}, {}
    wanted = query.get("sku", "")
    skus = {*wanted.split(","), wanted} if wanted else None
    # Without a SKU the products endpoint lists products only; with one, variations too.
    found = [_woo_product(m, r) for r in m.products
             if (r["sku"] in skus if skus is not None else r["variant_id"] is None)]
    pages = max(1, -(-len(found) // per_page))
    shown = found[(page - 1) * per_page:page * per_page]
    return 200, shown, {"X-WP-Total": str(len(found)), "X-WP-TotalPages": str(pages)}


def _woo_batch(m: Marketplace, body: Any, parent: int | None) -> Answer:
    rows = body.get("update") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        return 400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): update", "data": {"status": 400}}
    if len(rows) > 100:
        return 413, {"code": "woocommerce_rest_request_entity_too_large",
                     "message": "Unable to accept more than 100 items for this request.", "data": {"status": 413}}
    done = []
    for row in rows:
        ident = row.get("id") if isinstance(row, dict) else None
        found = [r for r in m.products if (r["variant_id"] == ident and r["product_id"] == parent if parent
                                           else r["variant_id"] is None and r["product_id"] == ident)]
        qty = row.get("stock_quantity") if isinstance(row, dict) else None
        if not found:
            code = "woocommerce_rest_product_variation_invalid_id" if parent else "woocommerce_rest_product_invalid_id"
            done.append({"id": ident, "error": {"code": code, "message": "Invalid ID.", "data": {"status": 400}}})
            continue
        if qty is not None and (not isinstance(qty, int) or isinstance(qty, bool)):
            done.append({"id": ident, "error": {"code": "rest_invalid_param", "message": "Invalid parameter(s): "
                                                "stock_quantity", "data": {"status": 400}}})
            continue
        record = found[0]
        if "manage_stock" in row:
            record["tracked"] = bool(row["manage_stock"])
        if qty is not None and record["tracked"]:
            m.inventory[record["sku"]] = qty
        done.append(_woo_product(m, record))
    return 200, {"update": done}


# -- Amazon ------------------------------------------------------------------------------------------------------
def amazon(m: Marketplace, method: str, path: str, body: Any) -> Answer:
    if path == "/feeds/2021-06-30/documents" and method == "POST":
        content_type = body.get("contentType") if isinstance(body, dict) else None
        if not content_type:
            return 400, {"errors": [{"code": "InvalidInput", "message": "contentType is required"}]}
        n = str(m._next_id())
        m._uploads[n] = None
        m._upload_types[n] = str(content_type)
        return 201, {"feedDocumentId": f"amzn1.tortuga.4.na.{n}", "url": f"{m.url}/feed-uploads/{n}"}
    if path == "/feeds/2021-06-30/feeds" and method == "POST":
        return _feed(m, body)
    found = re.fullmatch(r"/orders/v0/orders/([^/]+)/shipmentConfirmation", path)
    if found is None or method != "POST":
        return 404, {"errors": [{"code": "NotFound", "message": "Resource not found"}]}
    listed = m.orders.get(found.group(1))
    if listed is None:
        return 404, {"errors": [{"code": "InvalidInput", "message": f"Invalid order id {found.group(1)}"}]}
    detail = (body or {}).get("packageDetail") if isinstance(body, dict) else None
    if body.get("marketplaceId") != m.marketplace_id or not isinstance(detail, dict):
        return 400, {"errors": [{"code": "InvalidInput", "message": "marketplaceId and packageDetail are required"}]}
    items = {i.get("OrderItemId"): i for i in listed.items}
    wanted = detail.get("orderItems") or []
    for w in wanted:
        item = items.get(w.get("orderItemId"))
        left = int(item.get("QuantityOrdered") or 0) - int(item.get("QuantityShipped") or 0) if item else 0
        if item is None or not 0 < int(w.get("quantity") or 0) <= left:
            return 400, {"errors": [{"code": "InvalidInput", "message": f"orderItem {w.get('orderItemId')}: "
                                     "quantity is more than is left to ship"}]}
    for w in wanted:
        item = items[w["orderItemId"]]
        item["QuantityShipped"] = int(item.get("QuantityShipped") or 0) + int(w["quantity"])
    done = all(int(i.get("QuantityShipped") or 0) >= int(i.get("QuantityOrdered") or 0) for i in listed.items)
    m._touch(listed, OrderStatus="Shipped" if done else "PartiallyShipped")
    return 204, None


def amazon_upload(m: Marketplace, method: str, path: str, body: Any, content_type: str) -> Answer:
    n = path.rsplit("/", 1)[-1]
    if method != "PUT" or n not in m._uploads:
        return 403, {"errors": "AccessDenied"}
    if content_type != m._upload_types.get(n):
        return 403, {"errors": "SignatureDoesNotMatch: the content type is not the one the document was made for"}
    m._uploads[n] = body.encode() if isinstance(body, str) else b""
    return 200, None


def _feed(m: Marketplace, body: Any) -> Answer:
    doc = str((body or {}).get("inputFeedDocumentId") or "") if isinstance(body, dict) else ""
    content = m._uploads.get(doc.rsplit(".", 1)[-1])
    if content is None or body.get("marketplaceIds") != [m.marketplace_id]:
        return 400, {"errors": [{"code": "InvalidInput", "message": "inputFeedDocumentId is not an uploaded "
                                 "document, or marketplaceIds is wrong"}]}
    feed_type = body.get("feedType")
    if feed_type == "JSON_LISTINGS_FEED":
        return _listings_feed(m, content, m._upload_types.get(doc.rsplit(".", 1)[-1], ""))
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        return 400, {"errors": [{"code": "InvalidInput", "message": f"the feed is not XML: {exc}"}]}
    feed_id = str(m._next_id())
    m.feeds.append({"feedType": feed_type, "content": content.decode(), "feedId": feed_id, "issues": []})
    # Amazon applies a feed later; the stand-in at once, which is what a test can follow.
    for ack in root.iter("OrderAcknowledgement"):
        listed = m.orders.get(ack.findtext("AmazonOrderID") or "")
        if listed is not None and ack.findtext("StatusCode") == "Failure":
            codes = [i.findtext("AmazonOrderItemCode") for i in ack.iter("Item")]
            if not codes:
                m._touch(listed, OrderStatus="Canceled")
            for item in listed.items:
                if item.get("OrderItemId") in codes:
                    item["QuantityCancelled"] = int(item.get("QuantityOrdered") or 0)
    for adj in root.iter("OrderAdjustment"):
        for row in adj.iter("AdjustedItem"):
            key = row.findtext("MerchantAdjustmentItemID") or f"feed-{feed_id}"
            amount = row.find(".//Amount")
            m.adjustments.setdefault(key, {"order": adj.findtext("AmazonOrderID"),
                                           "item": row.findtext("AmazonOrderItemCode"),
                                           "type": row.findtext(".//Type"),
                                           "amount": amount.text if amount is not None else None,
                                           "currency": amount.get("currency") if amount is not None else None})
    return 202, {"feedId": feed_id}


def _listings_feed(m: Marketplace, content: bytes, content_type: str) -> Answer:
    """A ``JSON_LISTINGS_FEED``: each ``PATCH`` message's ``fulfillment_availability`` (channel ``DEFAULT``) sets
    its SKU's ``inventory``; a SKU not listed, or a message the stand-in does not take, is an issue of the feed's
    processing report and the other messages are applied, as Amazon does."""
    try:
        feed = json.loads(content) if content_type.startswith("application/json") else None
    except ValueError:
        feed = None
    header = feed.get("header") if isinstance(feed, dict) else None
    messages = feed.get("messages") if isinstance(feed, dict) else None
    if not isinstance(header, dict) or not header.get("sellerId") or header.get("version") != "2.0" \
            or not isinstance(messages, list):
        return 400, {"errors": [{"code": "InvalidInput", "message": "a JSON_LISTINGS_FEED is a JSON document with "
                                 "header.sellerId, header.version 2.0 and messages"}]}
    feed_id = str(m._next_id())
    listed = {r["sku"] for r in m.products}
    issues = []
    for message in messages:
        msg = message if isinstance(message, dict) else {}
        sku, quantity = msg.get("sku"), None
        for patch in msg.get("patches") or []:
            if isinstance(patch, dict) and patch.get("op") in ("add", "replace") \
                    and patch.get("path") == "/attributes/fulfillment_availability":
                for value in patch.get("value") or []:
                    if isinstance(value, dict) and value.get("fulfillment_channel_code") == "DEFAULT":
                        quantity = value.get("quantity")
        if sku not in listed:
            problem = f"The SKU {sku} is not a listing of this seller"
        elif msg.get("operationType") != "PATCH" or not isinstance(quantity, int) or isinstance(quantity, bool) \
                or quantity < 0:
            problem = "The stand-in takes a PATCH of fulfillment_availability with a quantity of 0 or more"
        else:
            m.inventory[sku] = quantity
            continue
        issues.append({"messageId": msg.get("messageId"), "severity": "ERROR", "message": problem,
                       "code": "NOT_LISTED" if sku not in listed else "NOT_TAKEN"})
    m.feeds.append({"feedType": "JSON_LISTINGS_FEED", "content": content.decode(), "feedId": feed_id,
                    "issues": issues})
    return 202, {"feedId": feed_id}

"""The documents the OMS sends to a warehouse, as payloads of outbox messages (a connector turns each into
its system's wire format: JSON, XML...).

=====================  ==========================================================================
topic                  payload
=====================  ==========================================================================
wms.create             a sales order: order_number (the document's number), orders (the order
                       numbers in it), warehouse, carrier, service, ship_to, currency,
                       cod_amount, deliver_from, deliver_by (a booked window, UTC, or null),
                       lines [{line_no, order_number, order_line, sku, name, quantity}]; a
                       kit's components each a line, with kit and kit_quantity; a lot-tracked
                       product's line with lots [{lot, expires_on, quantity}]
wms.cancel             order_number (the document), orders, warehouse, reason
wms.intercept          order_number (the order stopped), document (the document it is in),
                       warehouse, reason, lines: the lines to take out
wms.readdress          order_number (the order), document (the document it is in: a merged
                       parcel's group number), warehouse, ship_to (the new address), request
                       (the address request's id, which the answer names), reason
wms.purchase_order     document, warehouse, supplier, expected_at, lines [{line_no, sku, name,
                       quantity}]: goods expected in
wms.return_to_vendor   document, warehouse, supplier, lines: goods to send back to a supplier
wms.customer_return    document, warehouse, order_number, lines, reason: goods expected back
master.item            warehouse, sku, name, barcode, weight_g, length_mm, width_mm, height_mm,
                       attributes, active, version
master.supplier        warehouse, code, name, contact, address, active, version
=====================  ==========================================================================

A document for a warehouse whose WMS wants master data (its connector says
``wants_master_data``) also carries ``master``: ``{"items": [...],
"suppliers": [...]}``, the item and supplier records that WMS has not been
sent at their current version (master_sync.py). The connector sends them
first, in the same call, so they are there before the document that names
them.

A merged parcel (orders/merging.py) is one document: its number is the
group's (``<first order>-M<version>``), ``orders`` lists every order in it and
each line names its order and that order's line number. A single order's
document is numbered as the order, with the order as its only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from ..orders.kits import units
from ..storage.models import Order, Product, StockDocument, Supplier


def _id_of(orders: Sequence[Any], number: str) -> int:
    return next(o.id for o in orders if o.number == number)


def _lot(lot: str | None, expires_on: date | None) -> dict[str, Any]:
    """A line's lot and expiry, for a lot-tracked product (nothing otherwise)."""
    if not lot:
        return {}
    return {"lot": lot, "expires_on": expires_on.isoformat() if expires_on else None}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() + "Z" if at is not None else None


def wms_document(orders: Sequence[Order] | Order, number: str | None = None,
                 names: dict[str, str] | None = None,
                 lots: dict[tuple[int, int, str], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The fulfilment order a WMS receives (topic ``wms.create``) for a routed order or a merged group of them
    (``number``: the group's; ``names``: the catalogue's names of kits' components; ``lots``: the lots each
    line of a lot-tracked product takes, stock/lots.py ``held_lots``)."""
    members = list(orders) if isinstance(orders, list | tuple) else [orders]
    first = members[0]
    froms = [o.delivery_from for o in members if o.delivery_from is not None]
    bys = [o.delivery_by for o in members if o.delivery_by is not None]
    lines: list[dict[str, Any]] = []
    for o in members:
        for ln in o.lines:
            if not ln.components:
                lines.append({"line_no": len(lines) + 1, "order_number": o.number, "order_line": ln.line_no,
                              "sku": ln.sku, "name": ln.name, "quantity": ln.quantity})
            else:
                # A kit is picked as its components; each names the kit it makes up.
                for sku, quantity in units(ln):
                    lines.append({"line_no": len(lines) + 1, "order_number": o.number, "order_line": ln.line_no,
                                  "sku": sku, "name": (names or {}).get(sku, sku), "quantity": quantity,
                                  "kit": ln.sku, "kit_quantity": ln.quantity})
    for line in lines:
        taken = (lots or {}).get((_id_of(members, line["order_number"]), line["order_line"], line["sku"]))
        if taken:
            line["lots"] = taken     # the lots to pick, earliest expiry first
    return {"order_number": number or first.number, "orders": [o.number for o in members],
            "warehouse": first.warehouse, "carrier": first.carrier, "service": first.service,
            "ship_to": first.ship_to, "currency": first.currency, "cod_amount": 0,
            "deliver_from": _iso(max(froms)) if froms else None, "deliver_by": _iso(min(bys)) if bys else None,
            "lines": lines}


def readdress_document(order_number: str, document: str, warehouse: str, ship_to: dict[str, Any], request: int,
                       reason: str) -> dict[str, Any]:
    """A new delivery address asked of the warehouse holding the order (topic ``wms.readdress``,
    fulfilment/address_requests.py); the warehouse's answer names ``request``."""
    return {"order_number": order_number, "document": document, "warehouse": warehouse, "ship_to": dict(ship_to),
            "request": request, "reason": reason}


def stock_document(doc: StockDocument, names: dict[str, str]) -> dict[str, Any]:
    """A purchase order, a return to a vendor or a customer return (topic ``wms.<kind>``)."""
    out: dict[str, Any] = {"document": doc.number, "warehouse": doc.warehouse,
                           "lines": [{"line_no": ln.line_no, "sku": ln.sku, "name": names.get(ln.sku, ln.sku),
                                      "quantity": ln.quantity, **_lot(ln.lot, ln.expires_on)} for ln in doc.lines]}
    if doc.supplier:
        out["supplier"] = doc.supplier
    if doc.order_number:
        out["order_number"] = doc.order_number
    if doc.expected_at:
        out["expected_at"] = doc.expected_at.isoformat() + "Z"
    if doc.note:
        out["note"] = doc.note
    return out


def item(product: Product, warehouse: str) -> dict[str, Any]:
    return {"warehouse": warehouse, "sku": product.sku, "name": product.name, "barcode": product.barcode,
            "weight_g": product.weight_g, "length_mm": product.length_mm, "width_mm": product.width_mm,
            "height_mm": product.height_mm, "attributes": dict(product.attributes or {}), "active": product.active,
            "version": product.version}


def supplier(record: Supplier, warehouse: str) -> dict[str, Any]:
    return {"warehouse": warehouse, "code": record.code, "name": record.name, "contact": dict(record.contact or {}),
            "address": dict(record.address or {}), "active": record.active, "version": record.version}

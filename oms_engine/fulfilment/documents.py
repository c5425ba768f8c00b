"""The documents the OMS sends to a warehouse, as payloads of outbox messages (a connector turns each into
its system's wire format: JSON, XML...).

=====================  ==========================================================================
topic                  payload
=====================  ==========================================================================
wms.create             a sales order: order_number, warehouse, carrier, ship_to, currency,
                       cod_amount, lines [{line_no, sku, name, quantity}]
wms.cancel             order_number, warehouse, reason
wms.intercept          order_number, warehouse, reason
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
"""

from __future__ import annotations

from typing import Any

from ..storage.models import Order, Product, StockDocument, Supplier


def wms_document(order: Order) -> dict[str, Any]:
    """The fulfilment order a WMS receives for a routed order (topic ``wms.create``)."""
    return {"order_number": order.number, "warehouse": order.warehouse, "carrier": order.carrier,
            "ship_to": order.ship_to, "currency": order.currency, "cod_amount": 0,
            "lines": [{"line_no": ln.line_no, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity}
                      for ln in order.lines]}


def stock_document(doc: StockDocument, names: dict[str, str]) -> dict[str, Any]:
    """A purchase order, a return to a vendor or a customer return (topic ``wms.<kind>``)."""
    out: dict[str, Any] = {"document": doc.number, "warehouse": doc.warehouse,
                           "lines": [{"line_no": ln.line_no, "sku": ln.sku, "name": names.get(ln.sku, ln.sku),
                                      "quantity": ln.quantity} for ln in doc.lines]}
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

"""The documents the OMS sends to a warehouse."""

from __future__ import annotations

from typing import Any

from ..storage.models import Order


def wms_document(order: Order) -> dict[str, Any]:
    """The fulfilment order a WMS receives for a routed order (topic ``wms.create``)."""
    return {"order_number": order.number, "warehouse": order.warehouse, "carrier": order.carrier,
            "ship_to": order.ship_to, "currency": order.currency, "cod_amount": 0,
            "lines": [{"line_no": ln.line_no, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity}
                      for ln in order.lines]}

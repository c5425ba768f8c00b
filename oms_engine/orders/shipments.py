"""The parcel an order (or a merged group of orders) makes: what courier matching and the merging rules weigh.

Weight and volume come from the lines (the product's as ordered; the
catalogue's dimensions for a line ordered before lines kept its volume),
value from what the customer pays, and the latest delivery from the window
the customer booked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..plugin.views import Address, Shipment, WarehouseView
from ..storage.models import Order, Product

# How long a warehouse takes from receiving a document to handing the parcel over, when it does not say.
HANDLING_HOURS = 24.0
COD = "cod"


def volumes(s: Session, skus: Iterable[str]) -> dict[str, int]:
    """sku -> cubic centimetres of one unit (0 when the catalogue has no dimensions)."""
    wanted = sorted(set(skus))
    out: dict[str, int] = {}
    for i in range(0, len(wanted), 500):
        for sku, length, width, height in s.execute(
                select(Product.sku, Product.length_mm, Product.width_mm, Product.height_mm)
                .where(Product.sku.in_(wanted[i:i + 500]))):
            out[sku] = (length or 0) * (width or 0) * (height or 0) // 1000
    return out


def order_skus(order: Order) -> list[str]:
    """The SKUs whose volume the catalogue must tell for the order's parcel: those of its lines that do not
    carry their own (a kit's components, the others' own)."""
    return [c["sku"] for ln in order.lines if ln.volume_cm3 is None
            for c in (ln.components or [{"sku": ln.sku}])]


def _volume(order: Order, volume_of: Mapping[str, int]) -> int:
    total = 0
    for ln in order.lines:
        if ln.volume_cm3 is not None:
            total += ln.volume_cm3 * ln.quantity
        elif ln.components:
            total += sum(volume_of.get(c["sku"], 0) * c["quantity"] for c in ln.components) * ln.quantity
        else:
            total += volume_of.get(ln.sku, 0) * ln.quantity
    return total


def shipment(reference: str, orders: Sequence[Order], warehouse: WarehouseView | None, volume_of: Mapping[str, int],
             now: datetime, handling_hours: float = HANDLING_HOURS) -> Shipment:
    first = orders[0]
    # One pass over the orders and their lines: courier matching weighs every parcel.
    weight = volume = value = cod = 0
    cold = oversize = False
    windows_by: list[datetime] = []
    windows_from: list[datetime] = []
    for o in orders:
        value += o.payable
        if o.payment_method == COD:
            cod += max(o.payable - o.paid_amount, 0)
        if o.delivery_by is not None:
            windows_by.append(o.delivery_by)
        if o.delivery_from is not None:
            windows_from.append(o.delivery_from)
        volume += _volume(o, volume_of)
        for ln in o.lines:
            weight += ln.weight_g * ln.quantity
            if ln.attributes:
                cold = cold or bool(ln.attributes.get("cold_chain"))
                oversize = oversize or bool(ln.attributes.get("oversize"))
    origin = (Address(country=warehouse.country, region=warehouse.region, city=warehouse.city)
              if warehouse is not None else Address())
    return Shipment(
        reference=reference, orders=tuple(o.number for o in orders), warehouse=first.warehouse or "",
        origin=origin, destination=Address.of(first.ship_to), weight_g=weight, volume_cm3=volume,
        value=value, currency=first.currency, cod_amount=cod, cold_chain=cold, oversize=oversize,
        ready_at=now + timedelta(hours=handling_hours),
        # The tightest window any of its orders booked.
        deliver_from=max(windows_from) if windows_from else None,
        deliver_by=min(windows_by) if windows_by else None,
        promised_by=min(windows_by) if windows_by else None)


def shipment_facts(sh: Shipment, now: datetime) -> dict[str, Any]:
    """The ``shipment.*`` facts of the merging and courier rules."""
    promise = sh.promised_by
    return {"warehouse": sh.warehouse, "orders": len(sh.orders), "weight_g": sh.weight_g,
            "volume_cm3": sh.volume_cm3, "value": sh.value, "cod": sh.cod_amount > 0,
            "cold_chain": sh.cold_chain, "oversize": sh.oversize,
            "hours_to_promise": max(int((promise - now).total_seconds() // 3600), 0) if promise else -1}

"""The facts a YAML ``when:`` sees about an order, and their declared types.

Facts are built for a whole batch at once (one query for customer
statistics, never one per order), typed exactly as declared in
:data:`CORE_FIELDS` so the rules engine never compares loosely.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..plugin.views import Address
from ..storage.models import ChannelFields, Customer, Order

# Catalogue attributes every line has in its facts (False when the product lacks it).
LINE_FLAGS = ("cold_chain", "oversize", "presale", "fragile")

CORE_FIELDS: dict[str, type] = {
    "order.number": str,
    "order.channel": str,
    "order.currency": str,
    "order.goods": int,
    "order.freight": int,
    "order.payable": int,
    "order.discount": int,          # the promotions (coupon)
    "order.stored_value": int,      # what gift card and points paid
    "order.line_count": int,
    "order.item_count": int,
    "order.merchant_count": int,
    "order.weight_g": int,
    "order.is_child": bool,
    "order.payment_method": str,
    "order.delivery_booked": bool,
    "customer.ref": str,
    "customer.level": str,
    "customer.blacklisted": bool,
    "customer.order_count": int,
    "customer.orders_last_24h": int,
    "customer.email": str,
    "customer.phone": str,
    "customer.language": str,           # as the order gave it ("zh-CN"; "" : not said)
    "customer.preferred_medium": str,   # sms, email, app ("" : no preference)
    "ship_to.country": str,
    "ship_to.region": str,
    "ship_to.city": str,
    "ship_to.postcode": str,
    "ship_to.complete": bool,
    "lines.sku": str,
    "lines.quantity": int,
    "lines.unit_price": int,
    "lines.merchant": str,
    "lines.weight_g": int,
    "lines.attributes.category": str,
    **{f"lines.attributes.{flag}": bool for flag in LINE_FLAGS},
}

# The parcel, for the points that decide about it (merging, carriers): built by orders/shipments.py.
SHIPMENT_FIELDS: dict[str, type] = {
    "shipment.warehouse": str,
    "shipment.orders": int,
    "shipment.weight_g": int,
    "shipment.volume_cm3": int,
    "shipment.value": int,
    "shipment.cod": bool,
    "shipment.cold_chain": bool,
    "shipment.oversize": bool,
    # Hours from now to the latest delivery booked or promised; -1: none.
    "shipment.hours_to_promise": int,
}

# The after-sales case being reviewed (aftersales/service.py), with the order's facts.
CASE_FIELDS: dict[str, type] = {
    "case.kind": str,               # refund_only, return_refund
    "case.amount": int,             # what the customer paid for the units it names, minor units
    "case.units": int,
    "case.line_count": int,
    "case.appeal": bool,            # a person is asked again after a denial
    "case.order_state": str,        # the order's state now: shipped ... delivered, completed
    "case.days_since_delivery": int,   # -1: not delivered yet
    "case.earlier_cases": int,      # cases the customer opened before on any order
}

REFUND_FIELDS: dict[str, type] = {
    "refund.cause": str,            # cancel, returned (a refused parcel back), case (after-sales)
    "refund.case_kind": str,        # refund_only, return_refund, exchange; "" when not a case
    "refund.amount": int,           # what is owed back, minor units
    "refund.whole": bool,           # everything still kept of the order's payments goes back
    "refund.stored_value": bool,    # a gift card or points paid part of the order
    # An after-sales refund: the goods the customer keeps, at their prices before promotions, and the
    # promotions they got on them (-1 and 0 for any other refund).
    "refund.kept_goods": int,
    "refund.kept_discount": int,
}

# What a merchant's commission rate is decided on (settlement/commission.py): these alone, no order's facts.
COMMISSION_FIELDS: dict[str, type] = {
    "commission.merchant": str,
    "commission.category": str,     # the product's catalogue category as the order line keeps it
    "commission.channel": str,
}

# What a warehouse's share of a SKU for a channel is decided on (channels/stock_push.py): these alone.
STOCK_FIELDS: dict[str, type] = {
    "stock.channel": str,           # the channel account
    "stock.adapter": str,           # its adapter: shopify, woocommerce, amazon...
    "stock.warehouse": str,
    "stock.country": str,           # the warehouse's
    "stock.region": str,
    "stock.category": str,          # the product's catalogue category
    "stock.merchant": str,
}

# What the freight of an order is decided on at intake (freight/charges.py), before the order is stored.
FREIGHT_FIELDS: dict[str, type] = {
    "freight.channel": str,
    "freight.currency": str,
    "freight.country": str,         # ISO 3166-1 alpha-2 of the ship-to address
    "freight.region": str,          # its province or state
    "freight.city": str,
    "freight.customer_level": str,
    "freight.payment_method": str,  # as the channel names it ("cod": cash on delivery)
    "freight.weight_g": int,        # of the goods, as the catalogue weighs them
    "freight.goods": int,           # worth of the goods after promotions, minor units
    "freight.sent": bool,           # the channel sent a freight figure of its own
}

# The facts that need a query over the customer's order history.
STATISTICS = ("customer.order_count", "customer.orders_last_24h")

# The channel's own words about the order as it keeps them (orders/canonical.py, ``channel_fields``): a split's
# part has its parent's. Read from the database only while a ruleset reads one of them; the extension fields a
# deployment names in ``channel_facts`` come as channel.extensions.<key>, each as text.
CHANNEL_FIELDS: dict[str, type] = {
    "channel.order_type": str,      # the channel's kind of order: Amazon's Preorder, a presale, a POS sale...
    "channel.status": str,          # its status at the channel as last sent: Unshipped, processing...
}
EXTENSIONS = "channel.extensions."


def channel_fields(extension_keys: Iterable[str]) -> dict[str, type]:
    return {**CHANNEL_FIELDS, **{EXTENSIONS + key: str for key in extension_keys}}


def channel_facts(s: Session, orders: Sequence[Order], extension_keys: Sequence[str]) -> dict[int, dict[str, Any]]:
    """order id -> {"order_type", "status", "extensions": {key: text}}: "" for what the channel did not send."""
    owners = {o.id: o.parent_id if o.parent_id is not None else o.id for o in orders}
    ids = sorted(set(owners.values()))
    kept: dict[int, ChannelFields] = {}
    for i in range(0, len(ids), 500):
        kept.update((row.order_id, row) for row in s.scalars(
            select(ChannelFields).where(ChannelFields.order_id.in_(ids[i:i + 500]))))
    out: dict[int, dict[str, Any]] = {}
    for order_id, owner in owners.items():
        row = kept.get(owner)
        extensions = row.extensions if row is not None and isinstance(row.extensions, dict) else {}
        out[order_id] = {"order_type": row.order_type if row is not None else "",
                         "status": row.channel_status if row is not None else "",
                         "extensions": {key: _as_text(extensions.get(key)) for key in extension_keys}}
    return out


def _as_text(value: Any) -> str:
    # One type per fact, so the rules engine never compares loosely: a flag reads "true"/"false", a number its
    # digits, a list or object its compact JSON.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

TRANSITION_FIELDS: dict[str, type] = {
    "transition.event": str,
    "transition.from_state": str,
    "transition.to_state": str,
    "transition.actor": str,
    # From the status map, for a transition a warehouse's or carrier's callback caused: what the customer
    # may see of it (customer_visible, label); otherwise false and "".
    "transition.customer_visible": bool,
    "transition.label": str,
}


def customer_stats(session: Session, orders: Sequence[Order], now: datetime) -> dict[int, tuple[int, int]]:
    """customer id -> (orders before now, orders in the last 24 hours), parents only."""
    ids = sorted({o.customer_id for o in orders})
    if not ids:
        return {}
    since = now - timedelta(hours=24)
    stats: dict[int, tuple[int, int]] = {}
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Order.customer_id, func.count(), func.sum(case((Order.placed_at >= since, 1), else_=0)))
            .where(Order.customer_id.in_(ids[i:i + 500]), Order.parent_id.is_(None))
            .group_by(Order.customer_id)
        )
        for cid, total, recent in rows:
            stats[cid] = (int(total), int(recent or 0))
    return stats


def order_facts(order: Order, stats: Mapping[int, tuple[int, int]]) -> dict[str, Any]:
    customer: Customer = order.customer
    total, recent = stats.get(order.customer_id, (1, 1))
    ship = Address.of(order.ship_to)
    return {
        "order": {
            "number": order.number, "channel": order.channel, "currency": order.currency,
            "goods": order.goods, "freight": order.freight, "payable": order.payable,
            # Promotions only: gift card and points are means of payment (payments/wallets.py).
            "discount": order.coupon, "stored_value": order.gift_card + order.points,
            "line_count": len(order.lines), "item_count": sum(ln.quantity for ln in order.lines),
            "merchant_count": len({ln.merchant for ln in order.lines}),
            "weight_g": sum(ln.weight_g * ln.quantity for ln in order.lines),
            "is_child": order.parent_id is not None,
            "payment_method": order.payment_method or "",
            "delivery_booked": order.delivery_by is not None,
        },
        "customer": {
            "ref": customer.ref, "level": customer.level, "blacklisted": bool(customer.blacklisted),
            # the order being decided on is counted in the stats; "order_count" means earlier ones
            "order_count": max(total - 1, 0), "orders_last_24h": max(recent - 1, 0),
            # What this order gave: a risk rule looks at the details the buyer used this time.
            "email": (order.contact or {}).get("email") or customer.email,
            "phone": (order.contact or {}).get("phone") or customer.phone,
            "language": (order.contact or {}).get("language", ""),
            "preferred_medium": (order.contact or {}).get("preferred_medium", ""),
        },
        "ship_to": {"country": ship.country, "region": ship.region, "city": ship.city,
                    "postcode": ship.postcode, "complete": ship.is_complete()},
        "lines": [
            {"sku": ln.sku, "quantity": ln.quantity, "unit_price": ln.unit_price, "merchant": ln.merchant,
             "weight_g": ln.weight_g,
             "attributes": {
                 "category": str((ln.attributes or {}).get("category", "")),
                 **{flag: bool((ln.attributes or {}).get(flag, False)) for flag in LINE_FLAGS},
             }}
            for ln in order.lines
        ],
    }

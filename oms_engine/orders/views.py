"""An order as plugins see it: the stored order turned into a plain :class:`~oms_engine.OrderView`."""

from __future__ import annotations

from collections.abc import Mapping

from ..plugin.views import Address, LineView, OrderView
from ..storage.models import Order


def parent_number(order: Order) -> str | None:
    """A child's number is its parent's plus "-n", so no query is needed to name the parent."""
    return order.number.rsplit("-", 1)[0] if order.parent_id is not None else None


def order_view(order: Order, reserved: Mapping[str, Mapping[int, int]] | None = None) -> OrderView:
    lines = tuple(
        LineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, unit_price=ln.unit_price, goods=ln.goods,
                 discount=ln.discount, merchant=ln.merchant, weight_g=ln.weight_g,
                 attributes=dict(ln.attributes or {}))
        for ln in order.lines
    )
    return OrderView(
        number=order.number, channel=order.channel, currency=order.currency,
        customer_ref=order.customer.ref, customer_level=order.customer.level,
        ship_to=Address.of(order.ship_to), lines=lines, payable=order.payable, freight=order.freight,
        parent_number=parent_number(order),
        reserved=reserved or {},
    )

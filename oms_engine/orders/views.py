"""An order as plugins see it: the stored order turned into a plain :class:`~oms_engine.OrderView`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..plugin.views import Address, LineView, OrderView
from ..storage.models import Order
from .kits import kits_held


def parent_number(order: Order) -> str | None:
    """A child's number is its parent's plus "-n", so no query is needed to name the parent."""
    return order.number.rsplit("-", 1)[0] if order.parent_id is not None else None


def order_view(order: Order, held: Sequence[Any] | None = None) -> OrderView:
    """``held``: the order's reservation rows (stock/reservations.py ``Held``), for what it already holds."""
    lines = tuple(
        LineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, unit_price=ln.unit_price, goods=ln.goods,
                 discount=ln.discount, merchant=ln.merchant, weight_g=ln.weight_g,
                 attributes=dict(ln.attributes or {}),
                 components=tuple((c["sku"], c["quantity"]) for c in ln.components) if ln.components else ())
        for ln in order.lines
    )
    reserved, units = _held(order, held or ())
    return OrderView(
        number=order.number, channel=order.channel, currency=order.currency,
        customer_ref=order.customer.ref, customer_level=order.customer.level,
        ship_to=Address.of(order.ship_to), lines=lines, payable=order.payable, freight=order.freight,
        parent_number=parent_number(order),
        reserved=reserved, reserved_units=units,
    )


def _held(order: Order, held: Sequence[Any]) -> tuple[dict[str, dict[int, int]], dict[str, dict[str, int]]]:
    """What the order holds: warehouse -> {line_no: units (whole kits for a kit line)}, and warehouse ->
    {sku: units}."""
    if not held:
        return {}, {}
    units: dict[str, dict[str, int]] = {}
    per_line: dict[str, dict[int, dict[str, int]]] = {}
    for r in held:
        units.setdefault(r.warehouse, {})[r.sku] = units.get(r.warehouse, {}).get(r.sku, 0) + r.quantity
        line = per_line.setdefault(r.warehouse, {}).setdefault(r.line_no, {})
        line[r.sku] = line.get(r.sku, 0) + r.quantity
    lines = {ln.line_no: ln for ln in order.lines}
    reserved = {w: {n: kits_held(lines[n], skus) if n in lines else sum(skus.values()) for n, skus in by_line.items()}
                for w, by_line in per_line.items()}
    return reserved, units

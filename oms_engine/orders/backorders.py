"""Backorders: an order held for an unmapped SKU or missing stock goes on by itself once it can.

Algorithm. An order held at intake or routing for nothing a person has to
judge waits for things (orders/waits.py): a channel SKU to be mapped, a SKU
to come into stock. A mapping made, goods received, adjusted up, returned or
transferred in, or stock released by another order, marks those waits ready.
The backorders stage (pipeline/backorders.py) then takes the orders with a
ready wait, **oldest paid first** (paid before unpaid, then by payment time,
then by id), so stock that comes in serves the orders that waited longest:

1. an intake hold is checked again as a person's release would check it
   (:func:`recheck_intake`): each unmapped line is mapped (the channel's
   mappings, then the plugins) to an active product, then what is still
   unreserved is reserved, greedily over the warehouses; what is reserved
   stays reserved even when the order still falls short, so an order keeps
   its place in the queue for the units it already has;
2. a routing hold is checked for a warehouse that can now ship the whole
   order (:func:`routable`): what it holds there plus what is available there
   covers every line, and the warehouse is equipped for every line;
3. covered: the order is released (``actor oms:backorders``), and goes on
   from where its hold resumes (screening for an intake hold, routing for a
   routing hold); not covered: its reason and its waits are brought up to
   date, and it waits for the next change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..masterdata.skus import mapped_skus
from ..plugin.faults import PluginFault
from ..plugin.registry import PluginRegistry
from ..plugin.views import StockView, WarehouseView
from ..stock.batch import stock_batch
from ..stock.reservations import held_per_unit, reservations_of, reserve_lines
from ..storage.models import Order, Product
from .kits import LOT_TRACKED, requirements, snapshot, stock_skus
from .views import order_view
from .waits import Wait

Problem = tuple[Wait | None, str, str]   # (what it waits for or None: a person must judge, key, reason)


def recheck_intake(s: Session, order: Order, plugins: PluginRegistry, warehouses: Sequence[WarehouseView],
                   now: datetime) -> list[Problem]:
    """Map what is unmapped and reserve what is short; the problems left (none: it can go on)."""
    problems: list[Problem] = []
    unmapped = [ln for ln in order.lines if not ln.mapped]
    table = mapped_skus(s, order.channel, [ln.channel_sku for ln in unmapped])
    for ln in unmapped:
        try:
            sku = table.get(ln.channel_sku) or plugins.resolve_sku(order.channel, ln.channel_sku)
        except PluginFault as fault:
            problems.append((Wait.SKU, ln.channel_sku, f"SKU '{ln.channel_sku}' could not be mapped: {fault}"))
            continue
        p = s.get(Product, sku)
        if p is None:
            problems.append((Wait.SKU, ln.channel_sku, f"SKU '{ln.channel_sku}' is still not in the catalogue"))
            continue
        if not p.active:
            problems.append((None, sku, f"SKU '{sku}' is deactivated in the catalogue"))
            continue
        ln.sku, ln.mapped, ln.merchant, ln.weight_g = p.sku, True, p.merchant, p.weight_g
        ln.attributes = dict(p.attributes or {}) | ({LOT_TRACKED: True} if p.lot_tracked else {})
        if p.components:
            problem = _kit(s, ln, p)
            if problem:
                problems.append((None, p.sku, problem))
    if problems:
        return problems
    # Totals that disagreed need no fix: releasing means a person accepts the OMS's arithmetic.
    held = held_per_unit(reservations_of(s, [order.id]).get(order.id, []))
    missing = [(n, sku, q - held.get((n, sku), 0)) for n, sku, q in requirements(order.lines)
               if q > held.get((n, sku), 0)]
    if missing:
        short = reserve_lines(s, order.id, f"order:{order.number}", missing, warehouses, now)
        problems += [(Wait.STOCK, sku, f"insufficient stock for SKU '{sku}'") for sku in dict.fromkeys(short)]
    return problems


def _kit(s: Session, line: Any, kit: Product) -> str | None:
    """A line mapped to a kit now carries its components as they are today (orders/kits.py)."""
    parts = {p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_([c["sku"] for c in kit.components])))}
    line.components = snapshot(kit.components)
    missing = [c["sku"] for c in kit.components if c["sku"] not in parts or not parts[c["sku"]].active]
    if missing:
        return f"kit '{kit.sku}' has components missing from the catalogue or deactivated: {', '.join(missing)}"
    if not line.weight_g:
        line.weight_g = sum(parts[c["sku"]].weight_g * c["quantity"] for c in kit.components)
    if any(parts[c["sku"]].lot_tracked for c in kit.components):
        line.attributes = {**line.attributes, LOT_TRACKED: True}
    return None


def routable(s: Session, order: Order, warehouses: Sequence[WarehouseView]) -> str | None:
    """A warehouse equipped for every line that can ship the whole order now (what the order holds there
    and what is available there), by priority; or None."""
    held = reservations_of(s, [order.id]).get(order.id, [])
    batch = stock_batch(s)
    batch.load((w.code, sku) for w in warehouses for sku in stock_skus(order.lines))
    view = order_view(order, held)
    shippers = StockView(tuple(warehouses), batch.available).for_order(view).shippers()
    return min(shippers, key=lambda w: (w.priority, w.code)).code if shippers else None


def stock_waits(order: Order) -> list[tuple[Wait, str]]:
    """A routing hold waits for stock of any of the order's SKUs."""
    return [(Wait.STOCK, sku) for sku in sorted(stock_skus(order.lines))]

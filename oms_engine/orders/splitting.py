"""Dividing a parent order into child orders: checking the plan, refining it by stock, making the children.

Business rules decide why goods travel apart (merchant, cold chain...); stock
decides whether a group can travel at all. A group that no single warehouse
can ship is divided further by :func:`~oms_engine.stock.cover.plan_by_stock`,
so every child order can be routed. Each child takes its lines, the parent's
reservations for them (the hinted warehouse first) and its share of every
discount, freight and tax, apportioned to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..errors import OmsError
from ..money import apportion
from ..plugin.views import OrderView, SplitGroup, StockView
from ..stock.batch import stock_batch
from ..stock.cover import plan_by_stock
from ..stock.reservations import Held
from ..storage.db import append
from ..storage.models import Order, Reservation
from .flow import CHILD_FIRST
from .kits import units
from .machine import OrderMachine, State
from .records import OrderRec, insert_orders


class PlanError(OmsError):
    """A split plan that does not place every unit exactly once (a strategy's bug)."""


def refine_by_stock(view: OrderView, stock: StockView, groups: Sequence[SplitGroup]) -> tuple[SplitGroup, ...]:
    """Every group that no single warehouse can ship, divided until each one can be."""
    out: list[SplitGroup] = []
    order_stock = stock.for_order(view)
    for g in groups:
        if order_stock.shippers(g.lines):
            out.append(g)
            continue
        part = replace(view, lines=tuple(replace(ln, quantity=g.lines[ln.line_no]) for ln in view.lines
                                        if ln.line_no in g.lines))
        for sub in plan_by_stock(part, stock).groups:
            out.append(SplitGroup(sub.lines, reason="; ".join(r for r in (g.reason, sub.reason) if r),
                                  warehouse_hint=sub.warehouse_hint))
    return tuple(out)


def check_plan(order: Order, groups: Sequence[SplitGroup]) -> None:
    """A plan must place every unit of every line exactly once."""
    want = {ln.line_no: ln.quantity for ln in order.lines}
    got: dict[int, int] = defaultdict(int)
    for g in groups:
        for line_no, q in g.lines.items():
            if not isinstance(q, int) or isinstance(q, bool) or q <= 0:
                raise PlanError(f"order {order.number}: split plan has quantity {q!r} for line {line_no}")
            got[line_no] += q
    if dict(got) != want:
        raise PlanError(f"order {order.number}: split plan {dict(got)} does not match lines {want}")


def describe(groups: Sequence[SplitGroup]) -> list[dict[str, Any]]:
    return [{"lines": {str(k): v for k, v in g.lines.items()}, "reason": g.reason,
             "warehouse_hint": g.warehouse_hint} for g in groups]


@dataclass
class ChildPlan:
    """A parent's children worked out in memory: their rows, lines and the reservations each takes over."""

    parent: OrderRec
    rows: list[dict[str, Any]]
    lines: list[list[dict[str, Any]]]
    held: list[list[tuple[int, str, str, int]]]   # per child: (its line_no, warehouse, sku, quantity)
    handed: Sequence[Held]                        # the parent's reservations they take over


def plan_children(parent: OrderRec, groups: Sequence[SplitGroup], reservations: Sequence[Held], now: datetime
                  ) -> ChildPlan:
    """The children of ``parent`` for these groups, nothing written; PlanError when they would not add up."""
    lines = {ln.line_no: ln for ln in parent.lines}
    # Each line's discount follows its units into the children, to the cent.
    shares: dict[int, list[int]] = {
        n: apportion(ln.discount, [g.lines.get(n, 0) for g in groups]) for n, ln in lines.items()}
    child_lines: list[list[dict[str, Any]]] = []
    for gi, g in enumerate(groups):
        cl = []
        for new_no, (n, q) in enumerate(sorted(g.lines.items()), start=1):
            src = lines[n]
            cl.append({"line_no": new_no, "sku": src.sku, "channel_sku": src.channel_sku, "name": src.name,
                       "quantity": q, "unit_price": src.unit_price, "goods": src.unit_price * q,
                       "discount": shares[n][gi], "merchant": src.merchant, "weight_g": src.weight_g,
                       "volume_cm3": src.volume_cm3,
                       "attributes": dict(src.attributes or {}), "mapped": src.mapped,
                       "components": list(src.components) if src.components else None,
                       # The channel's promotion details stay on the parent's line, as it sent them; the
                       # child's line carries its share of their money in ``discount``.
                       "promotions": None})
        child_lines.append(cl)
    goods = [sum(ln["goods"] for ln in cl) for cl in child_lines]
    disc_w = [sum(ln["discount"] for ln in cl) for cl in child_lines]
    freight, tax = apportion(parent.freight, goods), apportion(parent.tax, goods)
    # The coupon: each child's lines' discounts, and what the coupon had beyond the goods (it came off the
    # freight and tax) by each child's freight and tax, so no child is discounted beyond what it costs.
    excess = apportion(max(parent.coupon - sum(disc_w), 0), [f + t for f, t in zip(freight, tax, strict=True)])
    coupon = [d + e for d, e in zip(disc_w, excess, strict=True)]
    # Gift card and points pay for the children in proportion to what each is worth, the points out of what
    # the gift card left, so no child is paid beyond its worth.
    worth = [max(goods[i] + freight[i] + tax[i] - coupon[i], 0) for i in range(len(child_lines))]
    gift = apportion(parent.gift_card, worth)
    points = apportion(parent.points, [w - g for w, g in zip(worth, gift, strict=True)])
    rows = []
    for i in range(len(child_lines)):
        payable = goods[i] + freight[i] + tax[i] - coupon[i] - gift[i] - points[i]
        rows.append({
            "number": f"{parent.number}-{i + 1}", "shard": parent.shard, "parent_id": parent.id,
            "channel": parent.channel, "external_id": None, "status": State.PAID.value,
            "customer_id": parent.customer_id, "currency": parent.currency, "ship_to": dict(parent.ship_to),
            "goods": goods[i], "freight": freight[i], "tax": tax[i], "coupon": coupon[i], "gift_card": gift[i],
            "points": points[i], "payable": payable, "paid_amount": 0, "refund_amount": 0,
            "payment_txn": parent.payment_txn, "paid_at": parent.paid_at, "placed_at": parent.placed_at,
            "created_at": now, "updated_at": now, "stage": CHILD_FIRST.value, "note": "",
            "warehouse": groups[i].warehouse_hint, "contact": dict(parent.contact) if parent.contact else None,
            "payment_method": parent.payment_method, "delivery_from": parent.delivery_from,
            "delivery_by": parent.delivery_by})
    if sum(r["payable"] for r in rows) != parent.payable:
        raise PlanError(f"order {parent.number}: children payable does not add up to the parent's")
    return ChildPlan(parent, rows, child_lines, _hand_reservations(parent, groups, reservations), reservations)


def make_children(s: Session, machine: OrderMachine, plans: Sequence[ChildPlan]) -> list[list[OrderRec]]:
    """Write the children of these plans (one INSERT per table for them all), each created in its
    history and holding its share of its parent's reservations; per plan its children."""
    rows = [r for p in plans for r in p.rows]
    lines = [ln for p in plans for ln in p.lines]
    customers = [p.parent.customer for p in plans for _ in p.rows]
    made = iter(insert_orders(s, rows, lines, customers))
    out: list[list[OrderRec]] = []
    batch = stock_batch(s)
    for p in plans:
        children = [next(made) for _ in p.rows]
        for child, held in zip(children, p.held, strict=True):
            machine.create(s, child, actor="rules:split", cause=f"split from {p.parent.number}")
            for line_no, warehouse, sku, quantity in held:
                append(s, Reservation, order_id=child.id, line_no=line_no, warehouse=warehouse, sku=sku,
                       quantity=quantity)
        batch.hand_over(p.handed)
        out.append(children)
    return out


def _hand_reservations(parent: OrderRec, groups: Sequence[SplitGroup], reservations: Sequence[Held]
                       ) -> list[list[tuple[int, str, str, int]]]:
    """Which of the parent's reserved units each child takes, the hinted warehouse first."""
    pool: dict[tuple[int, str], list[list[Any]]] = defaultdict(list)
    for r in reservations:
        pool[(r.line_no, r.sku)].append([r.warehouse, r.quantity])
    lines = {ln.line_no: ln for ln in parent.lines}
    out: list[list[tuple[int, str, str, int]]] = []
    for g in groups:
        held: list[tuple[int, str, str, int]] = []
        for new_no, (n, q) in enumerate(sorted(g.lines.items()), start=1):
            for sku, units_needed in units(lines[n], q):   # a kit's units are its components'
                chunks = sorted(pool[(n, sku)], key=lambda c: c[0] != g.warehouse_hint)
                left = units_needed
                for chunk in chunks:
                    take = min(left, chunk[1])
                    if take:
                        held.append((new_no, chunk[0], sku, take))
                        chunk[1] -= take
                        left -= take
                if left:
                    raise PlanError(f"order {parent.number}: line {n} is not fully reserved")
        out.append(held)
    return out

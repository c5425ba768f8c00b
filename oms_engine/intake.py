"""Intake: payload -> raw row -> canonical orders -> stored orders.

The raw payload is committed on its own before anything parses it, so no
payload is ever lost to a parsing bug. Each order then gets its own savepoint:
a bad order is reported and the rest of the payload goes on. An order that
arrives again (same channel and external id) is the same order; the second
arrival reports the existing number and changes nothing.

A well-formed order the OMS cannot process yet (an unmapped SKU, totals
that disagree, no stock, a short payment) is stored and held with the
reason, never dropped.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import inventory
from .db import append, savepoint
from .domain import CanonicalOrder, StockView
from .models import Customer, History, Order, OrderLine, Product, RawPayload
from .money import apportion, format_minor
from .states import Event, State

if TYPE_CHECKING:
    from .app import OMS

from .app import Batch

MAX_PAYLOAD_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class IngestResult:
    channel: str
    external_id: str | None
    number: str | None = None
    status: str | None = None
    error: str | None = None
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class PayloadTooLarge(ValueError):
    pass


def store_raw(oms: OMS, channel: str, body: bytes, source: str) -> int:
    with oms.db.session() as s:
        row = RawPayload(channel=channel, source=source, body=body, sha256=hashlib.sha256(body).hexdigest(),
                         received_at=oms.clock.now())
        s.add(row)
        s.flush()
        return row.id


@dataclass
class _Prefetched:
    """What a payload's orders need, read in a few queries for the whole payload."""

    seen: dict[str, tuple[str, str]]          # external id -> (number, status)
    customers: dict[str, Customer]
    products: dict[str, Product]
    stock: StockView
    taken: dict[tuple[str, str], int]         # reserved so far by this payload's orders
    batch: Batch


def _prefetch(oms: OMS, s: Session, channel: str, orders: list[CanonicalOrder]) -> _Prefetched:
    ids = [o.external_id for o in orders]
    seen = {ext: (num, st) for ext, num, st in s.execute(
        select(Order.external_id, Order.number, Order.status)
        .where(Order.channel == channel, Order.external_id.in_(ids)))} if ids else {}
    refs = sorted({o.customer.ref for o in orders})
    customers = {c.ref: c for c in s.scalars(select(Customer).where(Customer.ref.in_(refs)))} if refs else {}
    skus = sorted({oms.ext.resolve_sku(channel, ln.sku) for o in orders for ln in o.lines})
    products = {p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_(skus)))} if skus else {}
    stock = inventory.stock_view(s, skus, oms.warehouses(s))
    return _Prefetched(seen, customers, products, stock, defaultdict(int), Batch())


def ingest(oms: OMS, channel: str, body: bytes, *, source: str = "") -> list[IngestResult]:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload of {len(body):,} bytes exceeds the limit of {MAX_PAYLOAD_BYTES:,}")
    adapter = oms.ext.channels.get(channel)
    payload_id = store_raw(oms, channel, body, source)
    parsed = adapter.parse(body)
    good = [item.order for item in parsed if item.order is not None]
    oms.numbers.prefetch(len(good))
    results: list[IngestResult] = []
    with oms.db.session() as s:
        pre = _prefetch(oms, s, channel, good)
        for item in parsed:
            if item.order is None:
                results.append(IngestResult(channel, item.external_id, error=item.error or "unreadable order"))
                continue
            results.append(_ingest_one(oms, s, item.order, payload_id, pre))
        raw = s.get(RawPayload, payload_id)
        assert raw is not None
        raw.outcome = "; ".join(
            f"{r.external_id}: {r.error or ('duplicate of ' if r.duplicate else '') + str(r.number)}" for r in results
        )[:4000] or "no orders in payload"
    return results


def _ingest_one(oms: OMS, s: Session, canon: CanonicalOrder, payload_id: int, pre: _Prefetched) -> IngestResult:
    if canon.external_id in pre.seen:
        number, status = pre.seen[canon.external_id]
        return IngestResult(canon.channel, canon.external_id, number, status, duplicate=True)
    try:
        with savepoint(s):
            order = create_order(oms, s, canon, payload_id, pre)
    except IntegrityError:
        # Another process stored the same channel order between our check and insert.
        existing = s.scalar(select(Order).where(Order.channel == canon.channel,
                                                Order.external_id == canon.external_id))
        if existing is None:
            raise
        return IngestResult(canon.channel, canon.external_id, existing.number, existing.status, duplicate=True)
    pre.seen[canon.external_id] = (order.number, order.status)
    return IngestResult(canon.channel, canon.external_id, order.number, order.status)


def _customer(s: Session, canon: CanonicalOrder, now: datetime, known: dict[str, Customer]) -> Customer:
    c = canon.customer
    row = known.get(c.ref)
    if row is None:
        row = Customer(ref=c.ref, name=c.name, email=c.email, phone=c.phone, level=c.level, created_at=now)
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:
            # A concurrent intake created this customer first: use theirs.
            row = s.scalars(select(Customer).where(Customer.ref == c.ref)).one()
        known[c.ref] = row
    else:
        # Contact details follow the latest order; level and blacklist are ours.
        row.name = c.name or row.name
        row.email = c.email or row.email
        row.phone = c.phone or row.phone
    return row


def create_order(oms: OMS, s: Session, canon: CanonicalOrder, payload_id: int | None,
                 pre: _Prefetched | None = None) -> Order:
    pre = pre or _prefetch(oms, s, canon.channel, [canon])
    now = oms.clock.now()
    customer = _customer(s, canon, now, pre.customers)
    number, shard = oms.numbers.new_number(customer.ref, now)
    holds: list[str] = []

    skus = {ln.sku: oms.ext.resolve_sku(canon.channel, ln.sku) for ln in canon.lines}
    products = pre.products
    lines: list[OrderLine] = []
    for i, ln in enumerate(canon.lines, start=1):
        sku = skus[ln.sku]
        p = products.get(sku)
        if p is None:
            holds.append(f"unmapped SKU '{ln.sku}'")
        elif p.currency != canon.currency and ln.unit_price is None:
            holds.append(f"SKU '{sku}' is priced in {p.currency}, order is in {canon.currency}")
        price = ln.unit_price if ln.unit_price is not None else (p.price if p else 0)
        lines.append(OrderLine(
            line_no=i, sku=sku, channel_sku=ln.sku, name=ln.name or (p.name if p else ln.sku),
            quantity=ln.quantity, unit_price=price, goods=price * ln.quantity,
            merchant=p.merchant if p else "", weight_g=p.weight_g if p else 0,
            attributes=dict(p.attributes or {}) if p else {}, mapped=p is not None))

    goods = sum(ln.goods for ln in lines)
    discounts = canon.coupon + canon.gift_card + canon.points
    gross = goods + canon.freight + canon.tax
    if discounts > gross:
        holds.append(f"discounts {format_minor(discounts, canon.currency)} exceed the order total "
                     f"{format_minor(gross, canon.currency)}")
    payable = max(gross - discounts, 0)
    # Discounts reduce the goods first; what is left over reduces freight and tax.
    for ln, share in zip(lines, apportion(min(discounts, goods), [ln.goods for ln in lines]), strict=True):
        ln.discount = share
    if canon.declared_total is not None and canon.declared_total != payable:
        holds.append(f"totals disagree: channel says {format_minor(canon.declared_total, canon.currency)}, "
                     f"lines add up to {format_minor(payable, canon.currency)}")

    order = Order(
        number=number, shard=shard, channel=canon.channel, external_id=canon.external_id,
        status=State.PENDING_PAYMENT.value, customer=customer, customer_id=customer.id, currency=canon.currency,
        ship_to=canon.ship_to.model_dump(), goods=goods, freight=canon.freight, tax=canon.tax,
        coupon=canon.coupon, gift_card=canon.gift_card, points=canon.points, payable=payable,
        declared_total=canon.declared_total, placed_at=canon.placed_at.replace(tzinfo=None)
        if canon.placed_at else now, created_at=now, updated_at=now, payload_id=payload_id, note=canon.note,
        stage="screen", lines=lines)
    order.due_at = oms._due(order, State.PENDING_PAYMENT, now)
    s.add(order)
    s.flush()
    append(s, History, order_id=order.id, from_state=None, to_state=order.status, event="create",
           actor=f"channel:{canon.channel}", cause=f"payload {payload_id}", at=now)

    if not holds:
        short = inventory.reserve_lines(s, order.id, f"order:{number}",
                                        [(ln.line_no, ln.sku, ln.quantity) for ln in lines], pre.stock, now,
                                        taken=pre.taken)
        holds.extend(f"insufficient stock for SKU '{sku}'" for sku in short)

    if canon.payment is not None:
        order.paid_amount = canon.payment.amount
        order.payment_txn = canon.payment.transaction_id
        order.paid_at = (canon.payment.paid_at.replace(tzinfo=None) if canon.payment.paid_at else now)
        if canon.payment.amount != payable and not holds:
            holds.append(f"payment {format_minor(canon.payment.amount, canon.currency)} differs from payable "
                         f"{format_minor(payable, canon.currency)}")
    if holds:
        order.hold_reason = "; ".join(dict.fromkeys(holds))
        order.hold_stage = "intake"
        oms.fire(s, order, Event.HOLD, actor="oms", cause=order.hold_reason, batch=pre.batch)
    elif canon.payment is not None:
        oms.fire(s, order, Event.PAY, actor=f"channel:{canon.channel}",
                 cause=f"payment {canon.payment.transaction_id}", batch=pre.batch)
    return order

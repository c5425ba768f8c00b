"""Creating an order from a canonical one: product snapshot, amounts, number, stock, first state.

A well-formed order the OMS cannot process yet (an unmapped SKU, totals
that disagree, no stock, a short payment) is stored and held with the
reason, never dropped. The buyer's contact details are kept on the order
(``Order.contact``); the customer record is the OMS's (orders/customers.py).
Instants are stored as naive UTC, the payload's offset applied.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..errors import OmsError
from ..money import apportion, format_minor
from ..payments.status import record_payment
from ..plugin.registry import PluginRegistry
from ..plugin.views import StockView
from ..stock.reservations import reserve_lines
from ..stock.warehouses import WarehouseCache, stock_view
from ..storage.models import Customer, Order, OrderLine, Product
from .canonical import MAX_AMOUNT, CanonicalOrder, naive_utc
from .customers import customer_for_order
from .incidents import record_incident
from .machine import Event, OrderMachine, State
from .numbering import NumberGenerator
from .steps import HoldStage, Step


class OrderRefused(OmsError, ValueError):
    """A well-formed order that cannot be stored at all (not merely held): the message names the field."""


@dataclass(frozen=True)
class Seen:
    """A channel order already stored: what a re-send of it is answered with."""

    number: str
    status: str
    content_hash: str | None   # None: stored before content hashes were kept


@dataclass
class Prefetched:
    """What a payload's orders need, read in a few queries for the whole payload."""

    seen: dict[str, Seen]                     # by external id
    customers: dict[str, Customer]
    products: dict[str, Product]
    skus: dict[str, str]                      # channel SKU -> catalogue SKU
    stock: StockView
    taken: dict[tuple[str, str], int]         # reserved so far by this payload's orders
    cache: FactCache
    sku_faults: dict[str, Exception] = field(default_factory=dict)   # channel SKU -> why its mapping failed


class OrderCreator:
    def __init__(self, *, clock: Clock, plugins: PluginRegistry, numbers: NumberGenerator, machine: OrderMachine,
                 warehouses: WarehouseCache) -> None:
        self.clock, self.plugins, self.numbers = clock, plugins, numbers
        self.machine, self.warehouses = machine, warehouses

    def prefetch(self, s: Session, channel: str, orders: list[CanonicalOrder],
                 skus: dict[str, str], sku_faults: dict[str, Exception] | None = None) -> Prefetched:
        """``skus``: the SKU mapping of every line, resolved before the transaction (plugins may be slow)."""
        ids = [o.external_id for o in orders]
        seen = {ext: Seen(num, st, h) for ext, num, st, h in s.execute(
            select(Order.external_id, Order.number, Order.status, Order.content_hash)
            .where(Order.channel == channel, Order.external_id.in_(ids)))} if ids else {}
        refs = sorted({o.customer.ref for o in orders})
        customers = {c.ref: c for c in s.scalars(select(Customer).where(Customer.ref.in_(refs)))} if refs else {}
        wanted = sorted(set(skus.values()))
        products = {p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_(wanted)))} if wanted else {}
        stock = stock_view(s, wanted, self.warehouses.get(s))
        return Prefetched(seen, customers, products, skus, stock, defaultdict(int), FactCache(), dict(sku_faults or {}))

    def create(self, s: Session, canon: CanonicalOrder, payload_id: int | None, pre: Prefetched,
               content_hash: str | None = None) -> Order:
        """``content_hash``: ``canon.content_hash()`` when the caller has it already."""
        now = self.clock.now()
        customer = customer_for_order(s, canon.customer, now, pre.customers)
        number, shard = self.numbers.new_number(customer.ref, now)
        holds: list[str] = []

        lines: list[OrderLine] = []
        for i, ln in enumerate(canon.lines, start=1):
            sku = pre.skus.get(ln.sku, ln.sku)
            p = pre.products.get(sku)
            fault = pre.sku_faults.get(ln.sku)
            if fault is not None:
                # Stored and held, never dropped: releasing the order asks the mappers again.
                p = None
                holds.append(f"SKU '{ln.sku}' could not be mapped: {fault}")
            elif p is None:
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
        if gross > MAX_AMOUNT:
            # The canonical model bounds the prices a channel sends; catalogue prices times quantities
            # can still add up past what the amount columns and their sums are sized for.
            raise OrderRefused(f"lines: goods + freight + tax come to {format_minor(gross, canon.currency)}, over "
                               f"the limit of {format_minor(MAX_AMOUNT, canon.currency)}")
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
            declared_total=canon.declared_total, placed_at=naive_utc(canon.placed_at) if canon.placed_at else now,
            created_at=now, updated_at=now, payload_id=payload_id, note=canon.note, stage=Step.SCREEN.value,
            lines=lines, contact=canon.contact(), content_hash=content_hash or canon.content_hash())
        order.due_at = self.machine.deadline(order)
        s.add(order)
        s.flush()
        self.machine.create(s, order, actor=f"channel:{canon.channel}", cause=f"payload {payload_id}")
        for sku in dict.fromkeys(ln.sku for ln in canon.lines if ln.sku in pre.sku_faults):
            record_incident(s, order_id=order.id, stage="intake", error=pre.sku_faults[sku],
                            action=f"order held: SKU '{sku}' not mapped", at=now)

        if not holds:
            short = reserve_lines(s, order.id, f"order:{number}", [(ln.line_no, ln.sku, ln.quantity) for ln in lines],
                                  pre.stock, now, taken=pre.taken)
            holds.extend(f"insufficient stock for SKU '{sku}'" for sku in short)

        if canon.payment is not None:
            record_payment(order, canon.payment.amount, canon.payment.transaction_id,
                           naive_utc(canon.payment.paid_at) if canon.payment.paid_at else now)
            if canon.payment.amount != payable and not holds:
                holds.append(f"payment {format_minor(canon.payment.amount, canon.currency)} differs from payable "
                             f"{format_minor(payable, canon.currency)}")
        if holds:
            order.hold_reason = "; ".join(dict.fromkeys(holds))
            order.hold_stage = HoldStage.INTAKE.value
            self.machine.fire(s, order, Event.HOLD, actor="oms", cause=order.hold_reason, cache=pre.cache)
        elif canon.payment is not None:
            self.machine.fire(s, order, Event.PAY, actor=f"channel:{canon.channel}",
                              cause=f"payment {canon.payment.transaction_id}", cache=pre.cache)
        return order

"""Creating an order from a canonical one: product snapshot, amounts, number, stock, first state.

A well-formed order the OMS cannot process yet (an unmapped SKU, totals
that disagree, no stock, a short payment) is stored and held with the
reason, never dropped. The buyer's contact details are kept on the order
(``Order.contact``); the customer record is the OMS's (orders/customers.py).
Instants are stored as naive UTC, the payload's offset applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..errors import OmsError
from ..freight.charges import FreightCharger, Outcome, Shipment
from ..freight.templates import Template
from ..money import MAX_AMOUNT, format_minor
from ..payments.ledger import record_intake_payments
from ..payments.methods import REPLACEMENT, Method, method_of
from ..payments.status import COD
from ..plugin.registry import PluginRegistry
from ..plugin.views import WarehouseView
from ..stock.reservations import load_for_reserving, reserve_lines
from ..stock.warehouses import WarehouseCache
from ..storage.db import append
from ..storage.driver import fetch
from ..storage.models import ChannelFields, Order, Product
from .canonical import CanonicalOrder, naive_utc
from .customers import customers_for_orders, known_customers
from .discounts import line_discounts
from .flow import FIRST, HoldStage
from .incidents import record_incident
from .kits import LOT_TRACKED, requirements, snapshot
from .machine import Event, OrderMachine, State
from .numbering import NumberGenerator
from .records import CustomerRec, OrderRec, insert_orders
from .updates import queue_update
from .waits import Wait, record_waits

if TYPE_CHECKING:
    from ..decisions.records import DecisionRecorder


class OrderRefused(OmsError, ValueError):
    """A well-formed order that cannot be stored at all (not merely held): the message names the field."""


class ProductRow(NamedTuple):
    sku: str
    name: str
    price: int
    currency: str
    merchant: str
    weight_g: int
    attributes: dict[str, Any] | None
    active: bool
    components: list[Any] | None
    lot_tracked: bool
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None

    @property
    def volume_cm3(self) -> int:
        return (self.length_mm or 0) * (self.width_mm or 0) * (self.height_mm or 0) // 1000


_CHUNK = 500
_O, _P = Order.__table__.c, Product.__table__.c
_SEEN = (select(_O.external_id, _O.number, _O.status, _O.content_hash, _O.id)
         .where(_O.channel == bindparam("channel"), _O.external_id.in_(bindparam("ids", expanding=True))))
_PRODUCTS = (select(*(_P[f] for f in ProductRow._fields)).where(_P.sku.in_(bindparam("skus", expanding=True))))


def _products(conn: Any, skus: set[str]) -> dict[str, ProductRow]:
    wanted = sorted(skus)
    out: dict[str, ProductRow] = {}
    for i in range(0, len(wanted), _CHUNK):
        out.update((r[0], ProductRow(*r)) for r in fetch(conn, _PRODUCTS, {"skus": wanted[i:i + _CHUNK]}))
    return out


def _method(canon: CanonicalOrder) -> str:
    """The payment method as the order keeps it: the channel's word, but "cod" for cash on delivery, which the
    OMS acts on (it ships unpaid, collected at the door)."""
    name = canon.payment.method if canon.payment else ""
    return COD if name and method_of(name) is Method.COD else name[:32]


def _parts(p: ProductRow) -> list[tuple[str, int]]:
    """(sku, units per unit sold) a product takes from stock: a kit's components, else itself."""
    return [(c["sku"], int(c["quantity"])) for c in p.components] if p.components else [(p.sku, 1)]


def kit_line(line: dict[str, Any], kit: ProductRow, products: dict[str, ProductRow]) -> str | None:
    """Make ``line`` (a kit sold) carry its components as they are today; why it cannot be sold, if so."""
    parts = [products.get(c["sku"]) for c in kit.components or ()]
    missing = [c["sku"] for c, part in zip(kit.components or (), parts, strict=True) if part is None or not part.active]
    line["components"] = snapshot(kit.components or ())
    if missing:
        return f"kit '{kit.sku}' has components missing from the catalogue or deactivated: {', '.join(missing)}"
    per = {c["sku"]: int(c["quantity"]) for c in kit.components or ()}
    if not line["weight_g"]:
        line["weight_g"] = sum(part.weight_g * per[part.sku] for part in parts if part is not None)
    line["volume_cm3"] = sum(part.volume_cm3 * per[part.sku] for part in parts if part is not None)
    # What a component needs (cold chain, oversize...) the kit needs: routing and couriers read the line.
    attrs = line["attributes"]
    for part in parts:
        for flag, value in (part.attributes or {}).items() if part is not None else ():
            if value is True:
                attrs[flag] = True
        if part is not None and part.lot_tracked:
            attrs[LOT_TRACKED] = True
    return None


@dataclass(frozen=True)
class Seen:
    """A channel order already stored: what a re-send of it is answered with."""

    number: str
    status: str
    content_hash: str | None   # None: stored before content hashes were kept
    id: int | None = None
    update: int | None = None  # the update its changed content was taken as (orders/updates.py)


@dataclass
class Prefetched:
    """What a payload's orders need, read in a few queries for the whole payload."""

    seen: dict[str, Seen]                     # by external id
    customers: dict[str, CustomerRec]
    products: dict[str, ProductRow]           # by sku
    skus: dict[str, str]                      # channel SKU -> catalogue SKU
    warehouses: tuple[WarehouseView, ...]
    cache: FactCache
    sku_faults: dict[str, Exception] = field(default_factory=dict)   # channel SKU -> why its mapping failed
    freight_templates: dict[str, Template] = field(default_factory=dict)   # by code, when the rules ask


@dataclass
class _Draft:
    """An order worked out in memory, before anything is written."""

    canon: CanonicalOrder
    digest: str
    row: dict[str, Any]
    lines: list[dict[str, Any]]
    holds: list[str]
    payload_id: int | None
    # What the order waits for when held (orders/waits.py); a reason a person must judge (totals that
    # disagree, a price in another currency...) means it waits for that person instead.
    waits: list[tuple[Wait, str]] = field(default_factory=list)
    person: bool = False
    freight: Outcome | None = None
    # What the order keeps of the channel's own words (canonical.py: channel_fields), or None.
    channel: dict[str, Any] | None = None


class OrderCreator:
    def __init__(self, *, clock: Clock, plugins: PluginRegistry, numbers: NumberGenerator, machine: OrderMachine,
                 warehouses: WarehouseCache, freight: FreightCharger | None = None,
                 decisions: DecisionRecorder | None = None) -> None:
        """``freight``: charges the freight a channel does not send and checks the freight it does (none: the
        channel's figure, unchecked); ``decisions``: records those freight decisions."""
        self.clock, self.plugins, self.numbers = clock, plugins, numbers
        self.machine, self.warehouses = machine, warehouses
        self.freight, self.decisions = freight, decisions

    def prefetch(self, s: Session, channel: str, orders: list[CanonicalOrder],
                 skus: dict[str, str], sku_faults: dict[str, Exception] | None = None) -> Prefetched:
        """``skus``: the SKU mapping of every line, resolved before the transaction (plugins may be slow).

        Reads the stock rows the payload's reservations will take before its first order is created
        (on PostgreSQL every row they may take, locked in the global order: load_for_reserving).
        """
        conn = s.connection()
        ids = sorted({o.external_id for o in orders})
        seen: dict[str, Seen] = {}
        for i in range(0, len(ids), _CHUNK):
            seen.update((ext, Seen(num, st, h, oid)) for ext, num, st, h, oid in fetch(
                conn, _SEEN, {"channel": channel, "ids": ids[i:i + _CHUNK]}))
        customers = known_customers(s, {o.customer.ref for o in orders})
        products = _products(conn, set(skus.values()))
        # A kit's components are read too: its line is reserved as them.
        parts = {c["sku"] for p in products.values() for c in (p.components or ())} - set(products)
        if parts:
            products.update(_products(conn, parts))
        whs = self.warehouses.get(s)
        mapped = ((skus.get(ln.sku, ln.sku), ln.quantity) for o in orders for ln in o.lines)
        load_for_reserving(s, [(sku, qty * per) for sku, qty in mapped if sku in products
                               for sku, per in _parts(products[sku])], whs)
        templates = FreightCharger.templates(s) if self.freight is not None and self.freight.needed() else {}
        return Prefetched(seen, customers, products, skus, whs, FactCache(), dict(sku_faults or {}), templates)

    def _draft(self, canon: CanonicalOrder, digest: str, payload_id: int | None, pre: Prefetched,
               now: datetime) -> _Draft:
        """The order's lines, amounts and reasons to hold, in memory; OrderRefused when it cannot be stored."""
        holds: list[str] = []
        waits: list[tuple[Wait, str]] = []
        person = False
        lines: list[dict[str, Any]] = []
        for i, ln in enumerate(canon.lines, start=1):
            sku = pre.skus.get(ln.sku, ln.sku)
            p = pre.products.get(sku)
            fault = pre.sku_faults.get(ln.sku)
            if fault is not None:
                # Stored and held, never dropped: releasing the order asks the mappers again.
                p = None
                holds.append(f"SKU '{ln.sku}' could not be mapped: {fault}")
                waits.append((Wait.SKU, ln.sku))
            elif p is None:
                holds.append(f"unmapped SKU '{ln.sku}'")
                waits.append((Wait.SKU, ln.sku))
            elif not p.active:
                holds.append(f"SKU '{sku}' is deactivated in the catalogue")
                person = True
            elif p.currency != canon.currency and ln.unit_price is None:
                holds.append(f"SKU '{sku}' is priced in {p.currency}, order is in {canon.currency}")
                person = True
            price = ln.unit_price if ln.unit_price is not None else (p.price if p else 0)
            line = {"line_no": i, "sku": sku, "channel_sku": ln.sku, "name": ln.name or (p.name if p else ln.sku),
                    "quantity": ln.quantity, "unit_price": price, "goods": price * ln.quantity, "discount": 0,
                    "merchant": p.merchant if p else "", "weight_g": p.weight_g if p else 0,
                    "volume_cm3": p.volume_cm3 if p else 0,
                    "attributes": dict(p.attributes or {}) if p else {}, "mapped": p is not None, "components": None,
                    "promotions": [pr.model_dump() for pr in ln.promotions] or None}
            if p is not None and p.lot_tracked:
                line["attributes"][LOT_TRACKED] = True
            if p is not None and p.components:
                problem = kit_line(line, p, pre.products)
                if problem:
                    holds.append(problem)
                    person = True
            lines.append(line)
        goods = sum(ln["goods"] for ln in lines)
        coupon, promoted = canon.coupon, [ln.promoted() for ln in canon.lines]
        if sum(promoted) and not coupon:
            coupon = sum(promoted)     # the order's promotions are those its lines got
        for line, amount in zip(lines, promoted, strict=True):
            if amount > line["goods"]:
                person = True
                holds.append(f"line {line['line_no']}: promotions {format_minor(amount, canon.currency)} exceed its "
                             f"goods {format_minor(line['goods'], canon.currency)}")
        if sum(promoted) > coupon:
            person = True
            holds.append(f"line promotions add up to {format_minor(sum(promoted), canon.currency)}, more than the "
                         f"order's coupon {format_minor(coupon, canon.currency)}")
        freight = self._freight(canon, lines, goods - min(coupon, goods), pre)
        if freight.hold:
            person = True
            holds.append(freight.hold)
        discounts = coupon + canon.gift_card + canon.points
        gross = goods + freight.amount + canon.tax
        if gross > MAX_AMOUNT:
            # The canonical model bounds the prices a channel sends; catalogue prices times quantities
            # can still add up past what the amount columns and their sums are sized for.
            raise OrderRefused(f"lines: goods + freight + tax come to {format_minor(gross, canon.currency)}, over "
                               f"the limit of {format_minor(MAX_AMOUNT, canon.currency)}")
        if discounts > gross:
            person = True
            holds.append(f"discounts {format_minor(discounts, canon.currency)} exceed the order total "
                         f"{format_minor(gross, canon.currency)}")
        payable = max(gross - discounts, 0)
        # A line's discount is its share of the promotions (the coupon): what the channel allotted to it, and
        # of the rest a share by what is left of its goods. Gift card and points are means of payment
        # (payments/wallets.py). Promotions reduce the goods first; what is left over reduces freight.
        for ln, share in zip(lines, line_discounts([ln["goods"] for ln in lines], promoted, coupon), strict=True):
            ln["discount"] = share
        if canon.declared_total is not None and canon.declared_total != payable:
            person = True
            holds.append(f"totals disagree: channel says {format_minor(canon.declared_total, canon.currency)}, "
                         f"lines add up to {format_minor(payable, canon.currency)}")
        placed_at = naive_utc(canon.placed_at) if canon.placed_at else now
        row = {"channel": canon.channel, "external_id": canon.external_id, "status": State.PENDING_PAYMENT.value,
               "currency": canon.currency, "ship_to": canon.ship_to.model_dump(), "goods": goods,
               "freight": freight.amount, "tax": canon.tax, "coupon": coupon, "gift_card": canon.gift_card,
               "points": canon.points, "payable": payable, "declared_total": canon.declared_total,
               "paid_amount": 0, "refund_amount": 0, "placed_at": placed_at, "created_at": now, "updated_at": now,
               "payload_id": payload_id, "note": canon.note, "stage": FIRST.value,
               "payment_method": _method(canon),
               "delivery_from": naive_utc(canon.deliver_from) if canon.deliver_from else None,
               "delivery_by": naive_utc(canon.deliver_by) if canon.deliver_by else None,
               "contact": canon.contact(), "content_hash": digest,
               "due_at": self.machine.first_deadline(State.PENDING_PAYMENT, placed_at)}
        return _Draft(canon, digest, row, lines, holds, payload_id, waits, person, freight, canon.channel_fields())

    def _freight(self, canon: CanonicalOrder, lines: list[dict[str, Any]], goods: int, pre: Prefetched) -> Outcome:
        """The order's freight: the channel's, checked, or the templates' (freight/charges.py)."""
        if self.freight is None or (canon.payment is not None and canon.payment.method == REPLACEMENT) \
                or not self.freight.needed():
            # A replacement an exchange sends travels at the shop's cost.
            return Outcome(canon.freight or 0)
        known = pre.customers.get(canon.customer.ref)
        to = canon.ship_to
        return self.freight.charge(Shipment(
            channel=canon.channel, currency=canon.currency, country=to.country, region=to.region, city=to.city,
            customer_level=known.level if known is not None else canon.customer.level,
            payment_method=canon.payment.method if canon.payment is not None else "",
            weight_g=sum(ln["weight_g"] * ln["quantity"] for ln in lines), goods=goods, sent=canon.freight),
            pre.freight_templates)

    def create_many(self, s: Session, items: list[tuple[CanonicalOrder, str, int | None]], pre: Prefetched
                    ) -> list[OrderRec | Seen | OmsError]:
        """Create these (canonical order, content hash, raw payload id) in bulk, from one payload or
        several; per item its record, the stored order it repeats, or why it is refused. Raises when
        the database refuses a row (the caller then creates the orders one at a time to find which)."""
        now = self.clock.now()
        out: list[OrderRec | Seen | OmsError | None] = [None] * len(items)
        drafts: list[tuple[int, _Draft]] = []
        first: dict[str, int] = {}
        for i, (canon, digest, payload_id) in enumerate(items):
            if canon.external_id in pre.seen or canon.external_id in first:
                continue  # answered below, once the first of them has a number (and taken as an update)
            try:
                drafts.append((i, self._draft(canon, digest, payload_id, pre, now)))
                first[canon.external_id] = i
            except OmsError as exc:
                out[i] = exc
        customers = customers_for_orders(s, [d.canon.customer for _, d in drafts], now, pre.customers)
        for (_, d), customer in zip(drafts, customers, strict=True):
            d.row["number"], d.row["shard"] = self.numbers.new_number(customer.ref, now)
            d.row["customer_id"] = customer.id
        records = insert_orders(s, [d.row for _, d in drafts], [d.lines for _, d in drafts], customers)
        self.machine.prepare(s, records, pre.cache)
        for (i, d), rec in zip(drafts, records, strict=True):
            if d.channel is not None:
                append(s, ChannelFields, order_id=rec.id, updated_at=now, refunded=0, **d.channel)
            self._finish(s, d, rec, pre, now)
            out[i] = rec
            pre.seen[d.canon.external_id] = Seen(rec.number, rec.status, d.digest, rec.id)
            if d.canon.cancelled or d.canon.refunded:
                # Cancelled or paid back at the channel before the OMS first heard of it: stored all the same,
                # then stopped as an update of it would be (orders/updates.py).
                queue_update(s, rec.id, d.canon, d.digest, d.payload_id, now)
        for i, (canon, digest, payload_id) in enumerate(items):
            if out[i] is None:
                seen = out[i] = pre.seen[canon.external_id]
                if seen.content_hash is not None and seen.content_hash != digest and seen.id is not None:
                    out[i] = replace(seen, update=queue_update(s, seen.id, canon, digest, payload_id, now))
                    # The same changed content again (in this payload) is a re-send of the update.
                    pre.seen[canon.external_id] = Seen(seen.number, seen.status, digest, seen.id)
        return [o for o in out if o is not None]

    def _finish(self, s: Session, d: _Draft, order: OrderRec, pre: Prefetched, now: datetime) -> None:
        """The created order's history, stock, payment and first transition."""
        canon, holds = d.canon, d.holds
        self.machine.create(s, order, actor=f"channel:{canon.channel}", cause=f"payload {d.payload_id}")
        if d.freight is not None and d.freight.record is not None and self.decisions is not None:
            self.decisions.record(s, order, "freight", d.freight.decision, d.freight.record)  # type: ignore[arg-type]
        for sku in dict.fromkeys(ln.sku for ln in canon.lines if ln.sku in pre.sku_faults):
            record_incident(s, order_id=order.id, stage="intake", error=pre.sku_faults[sku],
                            action=f"order held: SKU '{sku}' not mapped", at=now)
        if not holds:
            short = reserve_lines(s, order.id, f"order:{order.number}", requirements(order.lines), pre.warehouses,
                                  now)
            holds.extend(f"insufficient stock for SKU '{sku}'" for sku in short)
            d.waits.extend((Wait.STOCK, sku) for sku in short)
        pay = canon.payment
        # Cash on delivery is paid at the door, not now: the carrier collects it and the delivery records it
        # (orders/machine.py); ``amount`` is what the channel says to collect.
        cod = pay is not None and order.payment_method == COD
        if pay is not None or canon.gift_card or canon.points:
            short = record_intake_payments(
                s, order, naive_utc(pay.paid_at) if pay is not None and pay.paid_at else now,
                actor=f"channel:{canon.channel}",
                cash=(pay.amount, pay.transaction_id, pay.method) if pay is not None and not cod else None,
                authorized=pay is not None and pay.authorized, gift_card=canon.gift_card,
                gift_card_code=canon.gift_card_code, points=canon.points,
                customer_ref=canon.customer.ref)
            if short:
                d.person = True
                holds.extend(short)
        if pay is not None and pay.amount != order.payable and not holds and not (cod and not pay.amount):
            d.person = True
            what = "cash to collect" if cod else "payment"
            holds.append(f"{what} {format_minor(pay.amount, canon.currency)} differs from payable "
                         f"{format_minor(order.payable, canon.currency)}")
        if holds:
            order.hold_reason = "; ".join(dict.fromkeys(holds))
            order.hold_stage = HoldStage.INTAKE.value
            self.machine.fire(s, order, Event.HOLD, actor="oms", cause=order.hold_reason, cache=pre.cache)
            if d.waits and not d.person:
                record_waits(s, order.id, d.waits, now)
        elif canon.payment is not None:
            self.machine.fire(s, order, Event.PAY, actor=f"channel:{canon.channel}",
                              cause=f"cash on delivery {canon.payment.transaction_id}: "
                                    f"{format_minor(order.payable, canon.currency)} to collect" if cod else
                              f"payment {canon.payment.transaction_id}", cache=pre.cache)

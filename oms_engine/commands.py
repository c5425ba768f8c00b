"""What a person (or a payment system) does to an order: pay, release, reject, cancel, intercept.

Each is one transaction. An illegal request raises
:class:`~oms_engine.states.IllegalTransition` (or a subclass) before anything
is written, so the database is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from . import inventory
from .models import Order, Product
from .money import format_minor
from .states import AT_WAREHOUSE, Event, IllegalTransition, State

if TYPE_CHECKING:
    from .app import OMS


class CommandError(ValueError):
    pass


def pay(oms: OMS, number: str, amount: int, transaction_id: str, *, actor: str = "payment") -> str:
    if amount < 0:
        raise CommandError(f"payment amount must not be negative, got {amount}")
    if not transaction_id:
        raise CommandError("a payment needs its transaction serial number")
    with oms.db.session() as s:
        order = oms.get_order(s, number, lock=True)
        if order.payment_txn and order.payment_txn == transaction_id:
            return order.status  # the same payment notice twice changes nothing
        if order.payment_txn:
            raise CommandError(f"order {number} is already paid by transaction {order.payment_txn}")
        if amount != order.payable:
            raise CommandError(f"order {number}: payment {format_minor(amount, order.currency)} differs from "
                               f"payable {format_minor(order.payable, order.currency)}")
        # Any refusal below raises and the transaction rolls back: nothing is kept.
        order.paid_amount, order.payment_txn, order.paid_at = amount, transaction_id, oms.clock.now()
        oms.fire(s, order, Event.PAY, actor=actor, cause=f"transaction {transaction_id}")
        return order.status


def release(oms: OMS, number: str, *, actor: str, note: str = "") -> str:
    with oms.db.session() as s:
        order = oms.get_order(s, number, lock=True)
        if order.status != State.ON_HOLD.value:
            raise IllegalTransition(number, order.status, Event.RELEASE.value)
        paid = bool(order.payment_txn) and order.paid_amount >= order.payable
        if order.hold_stage == "intake":
            problem = _recheck_intake(oms, s, order)
            if problem:
                raise CommandError(f"order {number} cannot be released yet: {problem}")
            order.stage = "screen"
        elif order.hold_stage == "routing":
            order.stage = "route"
        else:
            order.stage = "split"  # screening passed by a person
        event = Event.RELEASE if paid or order.parent_id else Event.RELEASE_UNPAID
        oms.fire(s, order, event, actor=actor, cause=note or f"released (was: {order.hold_reason})")
        return order.status


def _recheck_intake(oms: OMS, s: Session, order: Order) -> str | None:
    """An intake hold is lifted only when what held it is fixed: SKUs mapped, stock reserved."""
    for ln in order.lines:
        if not ln.mapped:
            sku = oms.ext.resolve_sku(order.channel, ln.channel_sku)
            p = s.get(Product, sku)
            if p is None:
                return f"SKU '{ln.channel_sku}' is still not in the catalogue"
            ln.sku, ln.mapped, ln.merchant, ln.weight_g = p.sku, True, p.merchant, p.weight_g
            ln.attributes = dict(p.attributes or {})
    # Totals that disagreed need no fix: releasing means a person accepts the OMS's arithmetic.
    # A line may be held in several warehouses: add its reservations up.
    held: dict[int, int] = {}
    for r in inventory.reservations_of(s, [order.id]).get(order.id, []):
        held[r.line_no] = held.get(r.line_no, 0) + r.quantity
    missing = [(ln.line_no, ln.sku, ln.quantity - held.get(ln.line_no, 0)) for ln in order.lines
               if ln.quantity > held.get(ln.line_no, 0)]
    if missing:
        stock = inventory.stock_view(s, {m[1] for m in missing}, oms.warehouses(s))
        short = inventory.reserve_lines(s, order.id, f"order:{order.number}", missing, stock, oms.clock.now())
        if short:
            return "insufficient stock for " + ", ".join(f"SKU '{k}'" for k in short)
    return None


def reject(oms: OMS, number: str, *, actor: str, note: str = "") -> str:
    with oms.db.session() as s:
        order = oms.get_order(s, number, lock=True)
        oms.fire(s, order, Event.REJECT, actor=actor, cause=note or "rejected in review")
        return order.status


def cancel(oms: OMS, number: str, *, actor: str, reason: str = "") -> str:
    """Cancel before picking; once picking has started, ask the warehouse to intercept."""
    with oms.db.session() as s:
        order = oms.get_order(s, number, lock=True)
        if order.status == State.SPLIT.value:
            # Cancel every child that still can be; the parent follows its children.
            for child in order.children:
                if State(child.status) in (State.PAID, State.ROUTED, *AT_WAREHOUSE):
                    oms.fire(s, child, Event.CANCEL, actor=actor, cause=reason or f"parent {number} cancelled")
                elif child.status in (State.PICKING.value, State.PACKED.value):
                    oms.fire(s, child, Event.INTERCEPT, actor=actor, cause=reason or f"parent {number} cancelled")
            return order.status
        if order.status in (State.PICKING.value, State.PACKED.value):
            oms.fire(s, order, Event.INTERCEPT, actor=actor, cause=reason or "cancel requested after picking")
        else:
            oms.fire(s, order, Event.CANCEL, actor=actor, cause=reason or "cancelled")
        return order.status


def intercept(oms: OMS, number: str, *, actor: str, reason: str = "") -> str:
    with oms.db.session() as s:
        order = oms.get_order(s, number, lock=True)
        oms.fire(s, order, Event.INTERCEPT, actor=actor, cause=reason or "interception requested")
        return order.status

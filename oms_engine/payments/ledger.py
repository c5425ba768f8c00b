"""The payments ledger: every payment an order receives and every refund owed back, each a row with its serial
number, its method and the log of its states (storage/models/payments.py).

Rules of the ledger:

* Payments belong to the order the customer paid, a parent order; a child
  of a split is paid by its parent's payments.
* A payment is recorded once per provider transaction: the same notice
  again changes nothing. Several payments (several methods) may pay one
  order; the order's ``paid_amount`` is their sum, kept on the order for
  the guards and facts that read it.
* Money nobody may keep is recorded and owed back, never refused or lost:
  a payment for an order that was cancelled or has expired, a second
  payment of an order already paid in full, the part of a payment above
  what is owed. Each becomes a refund ``due`` against that payment.
* Refunds for a cancelled or returned order go back to the payments of the
  order that received them, the latest first, each up to what is left of
  it; the order's ``refund_amount`` is what was owed back for it.
* A payment the channel only authorized (it captures the money later, at
  fulfilment or by hand) secures the order as a captured one does. Should
  the order be cancelled while nothing of it has shipped, what it owes back
  of an authorization is ``voided``: settled without sending anything, as
  the channel releases the authorization with the order. Once a part has
  shipped, the channel may have captured it, so a refund is a refund.

Serial numbers are the owning order's number with ``-P`` and the payment's
place (``2612071234567890123-P01``), ``-R`` for refunds: unique, and telling
whose money it is at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..events.sink import sink_of
from ..invoices.issuing import credit_note, invoice_order
from ..money import format_minor
from ..storage.db import append, drain
from ..storage.models import Order, Payment, PaymentEvent
from . import wallets
from .methods import Method, method_of
from .refund_rules import RefundPlan
from .refunds import Owed, Refunds


class Kind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class Status(StrEnum):
    CAPTURED = "captured"     # a payment: the money is with the merchant
    AUTHORIZED = "authorized"  # a payment: held at the channel, to be captured by it
    VOIDED = "voided"         # a refund of an authorization nothing was captured of: nothing to send
    DUE = "due"               # a refund: owed to the customer, not sent yet
    SENT = "sent"             # a refund: asked of the payment provider
    REFUNDED = "refunded"     # a refund: the provider paid it back
    FAILED = "failed"         # a refund: the provider refused it; it is owed still


@dataclass(frozen=True)
class Recorded:
    """What recording a payment did: the payment's serial, and whether it was new."""

    serial: str
    new: bool


def owner_id(order: Any) -> int:
    """The order whose payments pay ``order``: itself, or its parent."""
    return order.parent_id if order.parent_id is not None else order.id


def _serial(number: str, kind: Kind, place: int) -> str:
    return f"{number}-{'P' if kind is Kind.PAYMENT else 'R'}{place:02d}"


def _count(s: Session, order_id: int, kind: Kind) -> int:
    return s.scalar(select(func.count()).where(Payment.order_id == order_id, Payment.kind == kind.value)) or 0


def _add(s: Session, *, serial: str, order_id: int, number: str, kind: Kind, method: str, detail: str, amount: int,
         currency: str, provider_ref: str | None, status: Status, at: datetime, actor: str, reason: str = "",
         refund_of: str | None = None, for_order_id: int | None = None, for_number: str | None = None,
         case_number: str | None = None, note: str = "") -> None:
    """One payment or refund row of the order ``order_id`` (``number``), with its first state; ``for_number``: the
    order a refund is for, when not that one (a child of a split)."""
    append(s, Payment, serial=serial, order_id=order_id, kind=kind.value, method=method, method_detail=detail[:64],
           amount=amount, currency=currency, provider_ref=provider_ref, status=status.value, refund_of=refund_of,
           for_order_id=for_order_id, reason=reason[:300], case_number=case_number, created_at=at, updated_at=at)
    append(s, PaymentEvent, payment=serial, at=at, from_status=None, to_status=status.value, actor=actor[:100],
           note=(note or reason)[:300])
    events = sink_of(s)
    if events is not None:    # an OMS that publishes events tells downstream systems of the money
        events.money(s, order_id, number, serial=serial, kind=kind.value, method=method, amount=amount,
                     currency=currency, status=status.value, at=at, provider_ref=provider_ref, refund_of=refund_of,
                     for_order=for_number, reason=reason[:300])


def record_intake_payments(s: Session, order: Any, at: datetime, *, actor: str, cash: tuple[int, str, str] | None,
                           authorized: bool = False, gift_card: int = 0, gift_card_code: str | None = None,
                           points: int = 0, customer_ref: str = "") -> list[str]:
    """The payments a new order arrives with: ``cash`` (amount, the provider's transaction, method) first, then
    the gift card and the points it redeems (wallets.py); ``authorized``: the cash is an authorization the
    channel captures later. Reasons the order waits for a person (an account redeemed beyond its balance).
    Nothing to look up for a cash payment, so nothing is read."""
    place, holds = 0, []
    if cash is not None:
        amount, reference, method = cash
        if amount > 0:      # an order the gift card or points paid entirely comes with a payment of nothing
            place += 1
            _add(s, serial=_serial(order.number, Kind.PAYMENT, place), order_id=order.id, number=order.number,
                 kind=Kind.PAYMENT, method=method_of(method).value, detail=method, amount=amount,
                 currency=order.currency, provider_ref=reference,
                 status=Status.AUTHORIZED if authorized else Status.CAPTURED, at=at, actor=actor)
        order.paid_amount, order.payment_txn, order.paid_at = amount, reference, at
    for kind, holder, amount in ((Method.GIFT_CARD, gift_card_code, gift_card), (Method.POINTS, customer_ref, points)):
        if amount <= 0:
            continue
        place += 1
        serial = _serial(order.number, Kind.PAYMENT, place)
        _add(s, serial=serial, order_id=order.id, number=order.number, kind=Kind.PAYMENT, method=kind.value,
             detail=f"{kind.value.replace('_', ' ')} {holder}" if holder else f"the channel's {kind.value}",
             amount=amount, currency=order.currency,
             provider_ref=wallets.provider_ref(kind.value, holder or order.channel), status=Status.CAPTURED, at=at,
             actor=actor)
        redeemed = wallets.redeem(s, kind.value, holder, order.currency, amount, serial, at, actor=actor,
                                  order_number=order.number) if holder else None
        if redeemed is not None and redeemed.short:
            holds.append(redeemed.short)
    if cash is not None and cash[0] == order.payable and order.parent_id is None and paid_total(order):
        # Paid in full (a payment that differs holds the order for a person); an order of nothing (an
        # exchange's replacement, a free gift) has nothing to invoice.
        invoice_order(s, order, at)
    return holds


def capture(s: Session, order_id: int, provider_ref: str, at: datetime, *, actor: str) -> str | None:
    """The channel captured the authorization ``provider_ref`` of order ``order_id``: its payment says so. The
    payment's serial, or None when no such authorization waits (captured already, or never one)."""
    drain(s, Payment)
    serial = s.scalar(select(Payment.serial).where(
        Payment.order_id == order_id, Payment.kind == Kind.PAYMENT.value, Payment.provider_ref == provider_ref,
        Payment.status == Status.AUTHORIZED.value).with_for_update())
    if serial is None:
        return None
    s.execute(update(Payment).where(Payment.serial == serial).values(status=Status.CAPTURED.value, updated_at=at),
              execution_options={"synchronize_session": False})
    append(s, PaymentEvent, payment=serial, at=at, from_status=Status.AUTHORIZED.value,
           to_status=Status.CAPTURED.value, actor=actor[:100], note="captured at the channel")
    return serial


def open_payments(s: Session, order: Any) -> dict[str, int]:
    """Of the payments of ``order``'s paying order, method -> what is left of them to pay back."""
    drain(s, Payment)
    left: dict[str, int] = {}
    refunded: dict[str, int] = {}
    rows = s.execute(select(Payment.serial, Payment.kind, Payment.amount, Payment.refund_of, Payment.method)
                     .where(Payment.order_id == owner_id(order))).all()
    for r in rows:
        if r.kind == Kind.REFUND.value and r.refund_of:
            refunded[r.refund_of] = refunded.get(r.refund_of, 0) + r.amount
    for r in rows:
        if r.kind == Kind.PAYMENT.value and r.amount > refunded.get(r.serial, 0):
            left[r.method] = left.get(r.method, 0) + r.amount - refunded.get(r.serial, 0)
    return left


def paid_total(order: Any) -> int:
    """What the customer paid for ``order`` by every means, as far as it is paid: the payments kept (a child of
    a split: its share, its payable) and the gift card and points it redeemed."""
    cash = order.payable if order.parent_id is not None else order.paid_amount
    return cash + order.gift_card + order.points


def record_payment(s: Session, order: Order, amount: int, provider_ref: str, method: str, at: datetime, *,
                   actor: str, keep: bool, refunds: Refunds | None = None) -> Recorded:
    """A payment of ``order`` (a parent order) by the provider's transaction ``provider_ref``.

    ``keep``: whether the order may keep money now (it is waiting for payment, or on hold); when not, the
    whole payment is owed back; when it may, only what goes beyond what is still owed. The same transaction
    again changes nothing.
    """
    if amount <= 0:
        raise ValueError(f"a payment is more than 0, got {amount}")
    drain(s, Payment)
    known = s.scalar(select(Payment.serial).where(Payment.order_id == order.id, Payment.kind == Kind.PAYMENT.value,
                                                  Payment.provider_ref == provider_ref))
    if known is not None:
        return Recorded(known, False)
    serial = _serial(order.number, Kind.PAYMENT, _count(s, order.id, Kind.PAYMENT) + 1)
    kind = method_of(method)
    _add(s, serial=serial, order_id=order.id, number=order.number, kind=Kind.PAYMENT, method=kind.value,
         detail=method, amount=amount, currency=order.currency, provider_ref=provider_ref, status=Status.CAPTURED,
         at=at, actor=actor)
    owed = max(order.payable - order.paid_amount, 0) if keep else 0
    kept = min(amount, owed)
    if kept:
        if not order.paid_amount:
            order.payment_txn, order.paid_at = provider_ref, at
        order.paid_amount += kept
        if order.paid_amount >= order.payable:
            invoice_order(s, order, at)     # this payment completed it
    back = amount - kept
    if not back:
        return Recorded(serial, True)
    why = (f"paid {format_minor(amount, order.currency)} where {format_minor(owed, order.currency)} was owed"
           if keep else f"paid when the order was already {order.status.replace('_', ' ')}: nothing is owed")
    refund = _serial(order.number, Kind.REFUND, _count(s, order.id, Kind.REFUND) + 1)
    _add(s, serial=refund, order_id=order.id, number=order.number, kind=Kind.REFUND, method=kind.value,
         detail=method, amount=back, currency=order.currency, provider_ref=None, status=Status.DUE, at=at,
         actor=actor, reason=why, refund_of=serial, for_order_id=order.id)
    if refunds is not None:
        refunds.queue(s, order, [Owed(refund, serial, provider_ref, kind.value, back, order.currency, order.number,
                                      order.number, why)])
    return Recorded(serial, True)


def refund_order(s: Session, order: Any, amount: int, reason: str, at: datetime, *, actor: str, cause: str,
                 refunds: Refunds | None = None, case_number: str | None = None, case_kind: str = "",
                 plan: RefundPlan | None = None) -> list[Owed]:
    """``amount`` owed back for ``order`` (``cause``: cancel, returned, case): refunds against the payments of
    the order that received them, each up to what is left of it, to the means of payment the refund rules
    name first (when there is a choice: refunds.rules), then the latest payment first. A refund to a gift
    card or points the OMS holds is credited back at once; the others go to the payment provider. The refunds
    made."""
    if amount <= 0:
        return []
    owner = owner_id(order)
    drain(s, Payment)
    rows = s.execute(select(Payment.serial, Payment.kind, Payment.amount, Payment.refund_of, Payment.method,
                            Payment.method_detail, Payment.currency, Payment.provider_ref, Payment.status)
                     .where(Payment.order_id == owner).order_by(Payment.id)).all()
    void = cause == "cancel" and any(r.status == Status.AUTHORIZED.value for r in rows) and \
        not _any_shipped(s, owner)
    refunded: dict[str, int] = {}
    for r in rows:
        if r.kind == Kind.REFUND.value and r.refund_of:
            refunded[r.refund_of] = refunded.get(r.refund_of, 0) + r.amount
    left_of = {r.serial: r.amount - refunded.get(r.serial, 0) for r in rows if r.kind == Kind.PAYMENT.value}
    open_methods = sorted({r.method for r in rows if r.kind == Kind.PAYMENT.value and left_of[r.serial] > 0})
    methods: Sequence[str] = plan.methods if plan is not None else ()
    if plan is None and len(open_methods) > 1 and refunds is not None and refunds.rules is not None:
        methods = refunds.rules.decide(s, order, cause=cause, case_kind=case_kind, amount=amount,
                                       whole=amount >= sum(left_of.values()), paid_with=open_methods).methods
    rank = {m: i for i, m in enumerate(methods)}
    # sorted() is stable: within a method, the latest payment first.
    payments = sorted(reversed([r for r in rows if r.kind == Kind.PAYMENT.value]),
                      key=lambda r: rank.get(r.method, len(rank)))
    stored = wallets.redeemed_from(s, [p.serial for p in payments if p.method in wallets.KINDS])
    number = order.number if order.parent_id is None else _number_of(s, owner)
    place = sum(1 for r in rows if r.kind == Kind.REFUND.value)
    out: list[str] = []
    owed: list[Owed] = []
    left = amount
    for p in payments:
        take = min(left, p.amount - refunded.get(p.serial, 0))
        if take <= 0:
            continue
        place += 1
        serial = _serial(number, Kind.REFUND, place)
        back = p.serial in stored
        voided = void and p.status == Status.AUTHORIZED.value
        status = Status.REFUNDED if back else Status.VOIDED if voided else Status.DUE
        note = (f"credited back to {p.method_detail}" if back else
                "nothing was captured: the channel releases the authorization with the order" if voided else "")
        _add(s, serial=serial, order_id=owner, number=number, kind=Kind.REFUND, method=p.method,
             detail=p.method_detail, amount=take, currency=p.currency, provider_ref=None, status=status, at=at,
             actor=actor, reason=reason, refund_of=p.serial, for_order_id=order.id, for_number=order.number,
             case_number=case_number, note=note)
        if back:
            wallets.credit_back(s, stored[p.serial], p.serial, serial, take, at, actor=actor)
        out.append(serial)
        owed.append(Owed(serial, p.serial, p.provider_ref, p.method, take, p.currency, number, order.number, reason,
                         settled=back or voided))
        left -= take
        if not left:
            break
    if refunds is not None and owed:
        refunds.queue(s, _Owner(owner, number), [r for r in owed if not r.settled])
    credit_note(s, owner, order, sum(r.amount for r in owed), out, reason, at)
    return owed


@dataclass(frozen=True)
class _Owner:
    """The order the payments belong to, as the outbox names a message's order."""

    id: int
    number: str


# The states of an order that has left its warehouse (orders/machine.py), and of one that may have.
_LEFT = ("shipped", "in_transit", "out_for_delivery", "delivered", "completed", "refused", "closed")


def _any_shipped(s: Session, owner: int) -> bool:
    """Has the paying order, or a part of it, left a warehouse (so the channel may have captured its money)?"""
    return s.scalar(select(func.count()).select_from(Order).where(
        (Order.id == owner) | (Order.parent_id == owner), Order.status.in_(_LEFT))) != 0


def _number_of(s: Session, order_id: int) -> str:
    return s.scalar(select(Order.number).where(Order.id == order_id)) or ""


def payments_of(s: Session, order: Any) -> list[dict[str, Any]]:
    """The payments and refunds of ``order`` (a child: those of its parent that concern it), each with its
    log, oldest first."""
    owner = owner_id(order)
    where = [Payment.order_id == owner]
    if order.parent_id is not None:
        where.append(Payment.for_order_id == order.id)
    rows = s.scalars(select(Payment).where(*where).order_by(Payment.id)).all()
    log: dict[str, list[dict[str, Any]]] = {r.serial: [] for r in rows}
    if rows:
        for e in s.scalars(select(PaymentEvent).where(PaymentEvent.payment.in_(list(log)))
                           .order_by(PaymentEvent.id)):
            log[e.payment].append({"at": e.at.isoformat() + "Z", "from": e.from_status, "to": e.to_status,
                                   "actor": e.actor, "note": e.note})
    return [{"serial": r.serial, "kind": r.kind, "method": r.method, "method_detail": r.method_detail,
             "amount": r.amount, "amount_text": format_minor(r.amount, r.currency), "currency": r.currency,
             "provider_ref": r.provider_ref, "status": r.status, "refund_of": r.refund_of,
             "reason": r.reason, "at": r.created_at.isoformat() + "Z", "log": log[r.serial]} for r in rows]

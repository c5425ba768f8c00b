"""Refunds on their way: a refund owed (payments/ledger.py) goes to the payment provider through the outbox, and
the provider's answer settles it.

A refund's life: ``due`` (owed, queued for the payment connector, config
``payment_connector``) -> ``sent`` (the connector handed it over) ->
``refunded`` (the provider paid it back, with its reference) or ``failed``
(the provider refused; the money is owed still, and a person sees why in
``oms order show``). Every step is a row in the refund's log.

Why it cannot pay twice: the message carries the refund's serial, which the
connector gives the provider as the idempotency key of the request. The
outbox sends again a message whose sending failed or was not recorded (a
worker killed after the provider paid and before the commit); the provider
answers the same key with the refund it already made. An answer for a refund
that is already settled changes nothing.

A connector answers through a callback event of kind ``refund``:
``order_number`` the order the payments belong to, ``status`` ``refunded``
or ``refused``, ``data`` ``{"refund": serial, "provider_ref": ..., "reason":
...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import CommandError
from ..events.sink import sink_of
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..storage.db import append
from ..storage.models import Order, Payment, PaymentEvent

if TYPE_CHECKING:
    from ..channels.reports import ChannelReports
    from .refund_rules import RefundRules

REFUNDED, REFUSED = "refunded", "refused"


@dataclass(frozen=True)
class Owed:
    """A refund just recorded, as the provider is told of it."""

    serial: str
    payment: str                 # the serial of the payment it goes back to
    provider_ref: str | None     # that payment's reference at the provider
    method: str
    amount: int
    currency: str
    order_number: str            # the order the payments belong to
    for_order: str               # the order it refunds (the same, or a child of a split)
    reason: str
    settled: bool = False        # credited back to a gift card or points the OMS holds: nothing to send


class Refunds:
    def __init__(self, outbox: OutboxWriter, connector: str) -> None:
        """``connector``: the payment connector refunds go to ("" : none; refunds stay owed until one is set)."""
        self.outbox, self.connector = outbox, connector
        # Told when a refund an after-sales case owes is paid back: (session, case number, when).
        self.on_case_refund: Callable[[Session, str, datetime], None] | None = None
        # Which means of payment a refund goes back to first (refund_rules.py; none: the latest payment first).
        self.rules: RefundRules | None = None
        # Where the refunds of orders whose channel took the money go instead (channels/reports.py).
        self.channels: ChannelReports | None = None

    def queue(self, s: Session, order: Any, owed: Sequence[Owed]) -> None:
        """Send each refund to the provider (through the outbox, in this transaction). ``order``: the order the
        payments belong to. The channel that took the money makes them when it can (channels/reports.py)."""
        paid_at = self.channels.refunding(s, order) if self.channels is not None else None
        if paid_at is not None:
            for r in owed:
                paid_at.queue_refund(s, order, r)
            return
        if not self.connector:
            return
        for r in owed:
            self.outbox.enqueue(s, order, Kind.CONNECTOR, self.connector, Topic.PAYMENT_REFUND, {
                "refund": r.serial, "payment": r.payment, "provider_ref": r.provider_ref, "method": r.method,
                "amount": r.amount, "currency": r.currency, "order_number": r.order_number,
                "for_order": r.for_order, "reason": r.reason})

    def retry(self, s: Session, serial: str, at: datetime, actor: str) -> str:
        """Send a refund the provider refused once more (a person fixed what it refused over); its status."""
        row = s.execute(select(Payment).where(Payment.serial == serial).with_for_update()).scalar_one_or_none()
        if row is None or row.kind != "refund":
            raise CommandError(f"no refund '{serial}'")
        if row.status != "failed":
            raise CommandError(f"refund {serial} is {row.status}: only a refund the provider refused is sent again")
        paid = s.execute(select(Payment.provider_ref).where(Payment.serial == row.refund_of)).scalar()
        owner = s.execute(select(Order.id, Order.number).where(Order.id == row.order_id)).one()
        if not self.connector and (self.channels is None or self.channels.refunding(s, owner) is None):
            raise CommandError("no payment connector is set (config payment_connector): refunds are paid by hand")
        about = s.execute(select(Order.number).where(Order.id == row.for_order_id)).scalar() or owner.number
        _move(s, serial, ("failed",), "due", at, actor, "sent to the provider again")
        self.queue(s, owner, [Owed(serial, row.refund_of or "", paid, row.method, row.amount, row.currency,
                                   owner.number, about, row.reason)])
        return "due"

    @staticmethod
    def sent(s: Session, payload: Any, at: datetime, actor: str) -> None:
        """The connector handed the refund over: ``due`` -> ``sent`` (a refund already answered stays)."""
        serial = payload.get("refund") if isinstance(payload, dict) else None
        if isinstance(serial, str):
            _move(s, serial, ("due", "failed"), "sent", at, actor, "handed to the payment provider")

    def settle(self, s: Session, order_number: str, status: str, data: Any, at: datetime, actor: str) -> str:
        """The provider's answer about a refund; the callback's outcome, in words."""
        serial = str((data or {}).get("refund") or "")
        row = s.execute(select(Payment.serial, Payment.status, Payment.kind, Payment.order_id, Payment.case_number)
                        .where(Payment.serial == serial)).first()
        if row is None or row.kind != "refund" or not serial.startswith(f"{order_number}-"):
            return f"rejected: order {order_number} has no refund {serial or '(none named)'}"
        if row.status == REFUNDED:
            return f"ignored: refund {serial} was refunded already"
        reference = str((data or {}).get("provider_ref") or "")[:128] or None
        reason = str((data or {}).get("reason") or "")[:300]
        if status == REFUNDED:
            _move(s, serial, ("due", "sent", "failed"), REFUNDED, at, actor,
                  f"refunded by the provider as {reference}" if reference else "refunded by the provider",
                  provider_ref=reference)
            if row.case_number and self.on_case_refund is not None:
                self.on_case_refund(s, row.case_number, at)
            return f"{order_number} refund {serial} refunded"
        if status == REFUSED:
            _move(s, serial, ("due", "sent"), "failed", at, actor, f"refused by the provider: {reason or 'no reason'}")
            return f"{order_number} refund {serial} refused: {reason or 'no reason given'}"
        return f"rejected: unknown refund status '{status}' (known: {REFUNDED}, {REFUSED})"


def _move(s: Session, serial: str, from_: tuple[str, ...], to: str, at: datetime, actor: str, note: str, *,
          provider_ref: str | None = None) -> None:
    current = s.scalar(select(Payment.status).where(Payment.serial == serial))
    if current not in from_:
        return
    values: dict[str, Any] = {"status": to, "updated_at": at}
    if provider_ref:
        values["provider_ref"] = provider_ref
    s.execute(update(Payment).where(Payment.serial == serial).values(**values),
              execution_options={"synchronize_session": False})
    append(s, PaymentEvent, payment=serial, at=at, from_status=current, to_status=to, actor=actor[:100],
           note=note[:300])
    events = sink_of(s)
    if events is not None:   # a finance system learns that the refund was paid (or refused), not only that it is owed
        paid = s.execute(select(Payment.order_id, Payment.provider_ref, Order.number)
                         .join(Order, Order.id == Payment.order_id).where(Payment.serial == serial)).one()
        events.refund_status(s, paid.order_id, paid.number, serial=serial, before=current, after=to,
                             provider_ref=paid.provider_ref, actor=actor[:100], note=note[:300], at=at)

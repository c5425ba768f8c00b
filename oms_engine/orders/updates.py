"""A channel's changed word about an order it sent before: taken as an update, never dropped.

Intake stores a re-sent order whose content differs from what it stored as an update of that order
(:func:`queue_update`, in the transaction that answers the re-send), and so an order that arrives cancelled
or paid back at the channel. :class:`ChannelUpdates` then compares the order as the channel sends it now with
the stored one and answers each change, through the state machine and the commands a person would use:

* cancelled at the channel: the order is cancelled (before picking), or its interception is asked of the
  warehouse (after), or, once shipped, refused with the reason (after-sales, not a cancellation);
* paid at the channel (an order that waited for its payment): the payment is recorded, and a paid order goes on;
* captured at the channel (an authorization the channel held is money taken now): the payment says so;
* a new delivery address: the order's at once while the warehouse does not have it yet; once the warehouse
  holds it (dispatched to packed), a request to that warehouse, applied when the warehouse accepts; once
  shipped, refused with the reason, for a person to take up with the carrier. A split order's parent follows
  the new address and each part is answered by its own state (fulfilment/address_requests.py). The address
  is answered in the transaction that records the update's outcome, so a request is asked once however
  often the update is applied;
* lines changed (a line cancelled, a quantity lowered): refused with the reason, for a person: the OMS does not
  reshape an order it has reserved stock for behind anyone's back;
* paid back at the channel: recorded, with an incident for a person (the money moved at the channel);
* the channel's own words (status, order type, extension fields, line properties): kept;
* anything else (a note): recorded.

Each update ends ``done`` with one outcome per change (``oms order show``: "updates from the channel"), and a
refused change leaves an incident on the order. The order's content hash becomes the new content's, so the
same content sent again is a plain duplicate. Applying is idempotent: an update applied again (after a crash
between its command and its record) finds the order as it left it and changes nothing more.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import CommandError, OmsError
from ..fulfilment.address_requests import AddressRequests, pending_address
from ..payments.ledger import Status as PaymentStatus
from ..payments.ledger import capture
from ..storage.db import Database
from ..storage.models import ChannelFields, Order, OrderUpdate, Payment
from .canonical import CanonicalOrder
from .incidents import record_incident
from .machine import IllegalTransition, State

log = logging.getLogger("oms.updates")

PENDING, DONE = "pending", "done"
STAGE = "channel update"
STOPPED = frozenset({State.CANCELLED, State.CLOSED, State.REFUSED})
AUTHORIZED = PaymentStatus.AUTHORIZED.value
# Waiting for its money: a payment the channel reports is recorded (a binned order keeps it, restorable).
UNPAID = frozenset({State.PENDING_PAYMENT, State.ON_HOLD, State.BINNED})


def queue_update(s: Session, order_id: int, canon: CanonicalOrder, digest: str, payload_id: int | None,
                 now: datetime) -> int:
    """Keep the order as the channel sends it now, to be applied to order ``order_id``; the update's id."""
    row = OrderUpdate(order_id=order_id, payload_id=payload_id, received_at=now,
                      order=canon.model_dump(mode="json"), content_hash=digest, status=PENDING, outcome="")
    s.add(row)
    s.flush()
    return int(row.id)


@dataclass(frozen=True)
class Change:
    kind: str
    before: Any
    after: Any
    outcome: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "before": self.before, "after": self.after, "outcome": self.outcome}


class ChannelUpdates:
    def __init__(self, *, db: Database, clock: Clock, commands: Any) -> None:
        """``commands``: orders/commands.py's Commands (cancel, pay), each one transaction of its own; a new
        address is asked of the warehouse through its machine's outbox."""
        self.db, self.clock, self.commands = db, clock, commands
        machine = commands.machine
        self.addresses = AddressRequests(clock=clock, outbox=machine.outbox, wms_for=machine.wms_for)

    def pending(self, limit: int = 500) -> list[int]:
        with self.db.read() as s:
            return list(s.scalars(select(OrderUpdate.id).where(OrderUpdate.status == PENDING)
                                  .order_by(OrderUpdate.id).limit(limit)))

    def apply_pending(self, ids: Sequence[int] | None = None) -> dict[int, str]:
        """Apply these updates (None: every pending one), oldest first; update id -> its outcome in words."""
        done: dict[int, str] = {}
        for uid in sorted(ids) if ids is not None else self.pending():
            try:
                done[uid] = self.apply(uid)
            except OmsError as exc:     # the order cannot be read as it is: a person looks at it
                log.warning("channel update %s could not be applied: %s", uid, exc)
                done[uid] = self._finish(uid, [], failed=f"not applied: {exc}")
        return done

    def apply(self, uid: int) -> str:
        with self.db.read() as s:
            row = s.get(OrderUpdate, uid)
            if row is None or row.status != PENDING:
                return row.outcome if row is not None else f"no update {uid}"
            order = s.get(Order, row.order_id)
            assert order is not None
            new = CanonicalOrder.model_validate(row.order)
            number, status = order.number, State(order.status)
            found = _changes(s, order, new)
        changes: list[Change] = []
        for change in found:
            if change.kind == "ship_to":    # answered with the outcome's record, in its transaction (_finish)
                changes.append(change)
                continue
            changes.append(Change(change.kind, change.before, change.after, self._answer(number, status, change, new)))
            with self.db.read() as s:
                status = State(s.scalar(select(Order.status).where(Order.number == number)) or status.value)
        return self._finish(uid, changes, new=new)

    def _answer(self, number: str, status: State, change: Change, new: CanonicalOrder) -> str:
        actor = f"channel:{new.channel}"
        try:
            if change.kind == "cancelled":
                if status in STOPPED:
                    return f"the order is {status.value} already"
                after = self.commands.cancel(number, actor=actor, reason="cancelled at the channel")
                return ("interception asked of the warehouse" if after == State.INTERCEPT_REQUESTED.value
                        else f"order {after}")
            if change.kind == "paid":
                if status not in UNPAID:
                    return f"recorded: the order is {status.value}, not waiting for its payment"
                pay = new.payment
                assert pay is not None
                after = self.commands.pay(number, pay.amount, pay.transaction_id, method=pay.method, actor=actor)
                return f"payment {pay.transaction_id} recorded; order {after}"
            if change.kind == "captured":
                pay = new.payment
                assert pay is not None
                with self.db.session() as s:
                    order_id = s.scalar(select(Order.id).where(Order.number == number))
                    serial = capture(s, order_id, pay.transaction_id, self.clock.now(), actor=actor)
                return f"payment {serial} captured" if serial else "recorded: no authorization waits to be captured"
            if change.kind == "lines":
                return ("refused: the channel changed the lines; the OMS does not reshape an order it has taken "
                        "stock for: a person cancels it or a part of it")
            if change.kind == "refunded":
                return "recorded: the channel paid the customer back; a person matches it in after-sales"
        except (IllegalTransition, CommandError) as exc:
            return f"refused: {exc}"
        return "recorded"

    def _finish(self, uid: int, changes: list[Change], *, new: CanonicalOrder | None = None, failed: str = "") -> str:
        now = self.clock.now()
        with self.db.session() as s:
            row = s.get(OrderUpdate, uid, with_for_update=True)
            if row is None or row.status != PENDING:
                return row.outcome if row is not None else failed
            changes = [self._readdress(s, row, c, new) if c.kind == "ship_to" and new is not None else c
                       for c in changes]
            outcome = failed or "; ".join(f"{c.kind}: {c.outcome}" for c in changes) or "nothing the OMS keeps changed"
            row.status, row.outcome, row.applied_at = DONE, outcome[:4000], now
            row.changes = [c.to_dict() for c in changes]
            s.execute(update(Order).where(Order.id == row.order_id).values(content_hash=row.content_hash),
                      execution_options={"synchronize_session": False})
            if new is not None:
                _keep_channel_fields(s, row.order_id, new, now)
            for c in changes:
                # A refused address leaves its incident on the order (or part) refused, when it is answered.
                if c.kind != "ship_to" and c.outcome.startswith(("refused", "recorded: the channel paid")):
                    record_incident(s, order_id=row.order_id, stage=STAGE, error=f"{c.kind}: {c.outcome}",
                                    action="a person decides what the order does about it", at=now)
        return outcome

    def _readdress(self, s: Session, row: OrderUpdate, change: Change, new: CanonicalOrder) -> Change:
        """The new address answered for the order and its parts, in the transaction of the update's outcome."""
        reason = f"the channel {new.channel} sent a new delivery address (update {row.id})"
        return replace(change, outcome=self.addresses.change(s, row.order_id, change.after, update_id=row.id,
                                                             reason=reason, stage=STAGE))


def _changes(s: Session, order: Order, new: CanonicalOrder) -> list[Change]:
    out: list[Change] = []
    if new.cancelled:
        out.append(Change("cancelled", order.status, "cancelled at the channel"))
    if new.payment is not None and order.paid_amount < order.payable and State(order.status) in UNPAID:
        out.append(Change("paid", order.paid_amount, new.payment.amount))
    elif new.payment is not None and not new.payment.authorized and s.scalar(select(Payment.serial).where(
            Payment.order_id == order.id, Payment.provider_ref == new.payment.transaction_id,
            Payment.status == AUTHORIZED)) is not None:
        out.append(Change("captured", AUTHORIZED, "captured"))
    address = new.ship_to.model_dump()
    # While its warehouse is asked for a new address, that is where the order is meant to go: the same address
    # again is no change, its old one is (the request is then superseded).
    asked = pending_address(s, order.id)
    if address != (asked if asked is not None else order.ship_to or {}):
        out.append(Change("ship_to", order.ship_to, address))
    stored = Counter((ln.channel_sku, ln.quantity) for ln in order.lines)
    sent = Counter((ln.sku, ln.quantity) for ln in new.lines)
    if stored != sent:
        out.append(Change("lines", sorted(stored.elements()), sorted(sent.elements())))
    kept = s.get(ChannelFields, order.id)
    refunded_before = kept.refunded if kept is not None else 0
    if new.refunded > refunded_before:
        out.append(Change("refunded", refunded_before, new.refunded))
    if new.note != (order.note or ""):
        out.append(Change("note", order.note, new.note))
    before = (kept.order_type, kept.channel_status) if kept is not None else ("", "")
    if (new.order_type, new.channel_status) != before:
        out.append(Change("channel_status", "/".join(before), f"{new.order_type}/{new.channel_status}"))
    return out


def _keep_channel_fields(s: Session, order_id: int, new: CanonicalOrder, now: datetime) -> None:
    """The channel's words as it sends them now; what it says it paid back is kept with them."""
    fields = new.channel_fields() or {"order_type": "", "channel_status": "", "extensions": {}, "lines": {}}
    kept = s.get(ChannelFields, order_id)
    if kept is None:
        s.add(ChannelFields(order_id=order_id, updated_at=now, refunded=new.refunded, **fields))
    else:
        kept.order_type, kept.channel_status = fields["order_type"], fields["channel_status"]
        kept.extensions, kept.lines, kept.updated_at = fields["extensions"], fields["lines"], now
        kept.refunded = max(kept.refunded, new.refunded)

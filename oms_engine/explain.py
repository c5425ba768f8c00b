"""An order's whole story: what it is, what happened to it, and why.

Used by ``oms order show`` and the admin API. Each decision carries the
ruleset name and content hash in force when it was taken and the rules that
fired, so "why was this order held / sent there?" has an exact answer even
after the rules have changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .facts import parent_number
from .models import Decision, History, Inbox, Order, Outbox, Reservation
from .money import format_minor

if TYPE_CHECKING:
    from .app import OMS


def _iso(dt: Any) -> str | None:
    return dt.isoformat(timespec="seconds") if dt is not None else None


def order_summary(o: Order) -> dict[str, Any]:
    return {"number": o.number, "status": o.status, "channel": o.channel, "external_id": o.external_id,
            "customer": o.customer.ref if o.customer else None, "currency": o.currency, "payable": o.payable,
            "warehouse": o.warehouse, "hold_reason": o.hold_reason, "placed_at": _iso(o.placed_at),
            "parent": parent_number(o)}


def explain(oms: OMS, s: Session, number: str) -> dict[str, Any]:
    o = oms.get_order(s, number)
    money = {k: getattr(o, k) for k in ("goods", "freight", "tax", "coupon", "gift_card", "points", "payable",
                                        "paid_amount", "refund_amount")}
    history = s.scalars(select(History).where(History.order_id == o.id).order_by(History.id))
    decisions = s.scalars(select(Decision).where(Decision.order_id == o.id).order_by(Decision.id))
    outbox = s.scalars(select(Outbox).where(Outbox.order_id == o.id).order_by(Outbox.id))
    # Outcomes read "<number> <STATUS> -> <state>" or "rejected: no order <number>", joined by "; ".
    callbacks = s.scalars(select(Inbox).where(or_(
        Inbox.outcome.like(f"{o.number} %"), Inbox.outcome.like(f"%; {o.number} %"),
        Inbox.outcome.like(f"%no order {o.number}"), Inbox.outcome.like(f"%no order {o.number};%"),
        Inbox.outcome.like(f"%order {o.number}: %"))).order_by(Inbox.id))
    reservations = s.scalars(select(Reservation).where(Reservation.order_id == o.id).order_by(Reservation.id))
    return {
        **order_summary(o),
        "shard": o.shard,
        "hold_stage": o.hold_stage,
        "amounts": money,
        "amounts_text": {k: format_minor(v, o.currency) for k, v in money.items()},
        "payment": {"transaction_id": o.payment_txn, "paid_at": _iso(o.paid_at)},
        "customer_detail": {"ref": o.customer.ref, "name": o.customer.name, "level": o.customer.level,
                            "blacklisted": o.customer.blacklisted},
        "ship_to": o.ship_to,
        "carrier": o.carrier, "tracking_no": o.tracking_no, "due_at": _iso(o.due_at),
        "lines": [{"line_no": ln.line_no, "sku": ln.sku, "channel_sku": ln.channel_sku, "name": ln.name,
                   "quantity": ln.quantity, "unit_price": ln.unit_price, "goods": ln.goods, "discount": ln.discount,
                   "merchant": ln.merchant, "attributes": ln.attributes} for ln in o.lines],
        "children": [order_summary(c) for c in o.children],
        "reservations": [{"warehouse": r.warehouse, "sku": r.sku, "line_no": r.line_no, "quantity": r.quantity}
                         for r in reservations],
        "history": [{"at": _iso(h.at), "from": h.from_state, "to": h.to_state, "event": h.event, "actor": h.actor,
                     "cause": h.cause} for h in history],
        "decisions": [{"at": _iso(d.at), "point": d.point, "ruleset": d.ruleset, "version": d.version,
                       "fired": d.fired, "outcome": d.outcome} for d in decisions],
        "messages": [{"id": m.id, "kind": m.kind, "target": m.target, "topic": m.topic, "status": m.status,
                      "attempts": m.attempts, "created_at": _iso(m.created_at), "sent_at": _iso(m.sent_at)}
                     for m in outbox],
        "callbacks": [{"id": c.id, "source": c.source, "payload": c.payload, "status": c.status,
                       "outcome": c.outcome} for c in callbacks],
    }

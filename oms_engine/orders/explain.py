"""An order's whole story: what it is, what happened to it, and why.

Used by ``oms order show`` and the admin API. Each decision carries the
ruleset name and content hash in force when it was taken and the rules that
fired, so "why was this order held / sent there?" has an exact answer even
after the rules have changed.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..aftersales.service import cases_of
from ..fulfilment.address_requests import requests_of
from ..invoices.issuing import invoices_of
from ..money import format_minor
from ..payments.ledger import payments_of
from ..storage.models import (
    ChannelFields,
    DecisionRecord,
    Exchange,
    History,
    InboxMessage,
    Incident,
    OrderUpdate,
    OrderWait,
    OutboxMessage,
    Reservation,
    TrackingEvent,
)
from .late_steps import of_order as late_steps_of
from .queries import get_order, iso, order_summary


def explain(s: Session, number: str) -> dict[str, Any]:
    o = get_order(s, number)
    money = {k: getattr(o, k) for k in ("goods", "freight", "tax", "coupon", "gift_card", "points", "payable",
                                        "paid_amount", "refund_amount")}
    history = s.scalars(select(History).where(History.order_id == o.id).order_by(History.id))
    decisions = s.scalars(select(DecisionRecord).where(DecisionRecord.order_id == o.id).order_by(DecisionRecord.id))
    outbox = s.scalars(select(OutboxMessage).where(OutboxMessage.order_id == o.id).order_by(OutboxMessage.id))
    incidents = s.scalars(select(Incident).where(Incident.order_id == o.id).order_by(Incident.id))
    # Outcomes read "<number> <STATUS> -> <state>" or "rejected: no order <number>", joined by "; ".
    callbacks = s.scalars(select(InboxMessage).where(or_(
        InboxMessage.outcome.like(f"{o.number} %"), InboxMessage.outcome.like(f"%; {o.number} %"),
        InboxMessage.outcome.like(f"%no order {o.number}"), InboxMessage.outcome.like(f"%no order {o.number};%"),
        InboxMessage.outcome.like(f"%order {o.number}: %"))).order_by(InboxMessage.id))
    reservations = s.scalars(select(Reservation).where(Reservation.order_id == o.id).order_by(Reservation.id))
    tracking = s.scalars(select(TrackingEvent).where(TrackingEvent.order_id == o.id)
                         .order_by(TrackingEvent.at, TrackingEvent.id))
    exchanges = s.scalars(select(Exchange).where(Exchange.order_number == o.number).order_by(Exchange.id))
    waits = s.scalars(select(OrderWait).where(OrderWait.order_id == o.id).order_by(OrderWait.kind, OrderWait.key))
    # A child of a split shows its parent's: the channel sent one order. Its lines are numbered afresh, so
    # the channel's words about each line are shown on the parent's.
    kept = s.get(ChannelFields, o.parent_id if o.parent_id is not None else o.id)
    by_line = kept.lines if kept is not None and o.parent_id is None else {}
    return {
        **order_summary(o),
        "shard": o.shard,
        "hold_stage": o.hold_stage,
        "amounts": money,
        "amounts_text": {k: format_minor(v, o.currency) for k, v in money.items()},
        "payment": {"transaction_id": o.payment_txn, "paid_at": iso(o.paid_at)},
        # Every payment and refund with its serial number and its log (payments/ledger.py).
        "payments": payments_of(s, o),
        # Its after-sales cases, each with its lines, worth, decision, refunds and history (aftersales/).
        "aftersales": cases_of(s, o),
        # Its invoice and credit notes, each with its e-invoice (invoices/).
        "invoices": invoices_of(s, o),
        "customer_detail": {"ref": o.customer.ref, "name": o.customer.name, "level": o.customer.level,
                            "blacklisted": o.customer.blacklisted},
        # The buyer's details as this order gave them; customer_detail is the OMS's own record.
        "contact": o.contact or {},
        "ship_to": o.ship_to,
        "carrier": o.carrier, "tracking_no": o.tracking_no, "due_at": iso(o.due_at),
        # The channel's own words: its order type and status there, and what the OMS has no place for.
        "channel_fields": {"order_type": kept.order_type if kept else "",
                           "channel_status": kept.channel_status if kept else "",
                           "extensions": kept.extensions if kept else {}},
        "lines": [{"line_no": ln.line_no, "sku": ln.sku, "channel_sku": ln.channel_sku, "name": ln.name,
                   "quantity": ln.quantity, "unit_price": ln.unit_price, "goods": ln.goods, "discount": ln.discount,
                   "merchant": ln.merchant, "attributes": ln.attributes,
                   # The promotions the channel allotted to the line, as it sent them (part of ``discount``).
                   "promotions": ln.promotions or [],
                   # What the customer asked of the line, and the channel's fields of it, as it sent them.
                   **_channel_line(by_line, ln.line_no)} for ln in o.lines],
        "children": [order_summary(c) for c in o.children],
        "reservations": [{"warehouse": r.warehouse, "sku": r.sku, "line_no": r.line_no, "quantity": r.quantity}
                         for r in reservations],
        "history": [{"at": iso(h.at), "from": h.from_state, "to": h.to_state, "event": h.event, "actor": h.actor,
                     "cause": h.cause} for h in history],
        "decisions": [{"at": iso(d.at), "point": d.point, "ruleset": d.ruleset, "version": d.version,
                       "fired": d.fired, "outcome": d.outcome, "facts": d.facts} for d in decisions],
        "messages": [{"id": m.id, "kind": m.kind, "target": m.target, "topic": m.topic, "status": m.status,
                      "attempts": m.attempts, "last_error": m.last_error, "created_at": iso(m.created_at),
                      "sent_at": iso(m.sent_at)} for m in outbox],
        "incidents": [{"at": iso(i.at), "stage": i.stage, "plugin": i.plugin, "hook": i.hook, "error": i.error,
                       "action": i.action} for i in incidents],
        "callbacks": [{"id": c.id, "source": c.source, "payload": c.payload, "status": c.status,
                       "outcome": c.outcome} for c in callbacks],
        # What the customer and the channel may see: the carrier's scans and the warehouse's visible steps.
        "tracking": [{"at": iso(t.at), "source": t.source, "kind": t.source_kind, "status": t.status,
                      "label": t.label, "customer_visible": t.customer_visible, "tracking_no": t.tracking_no,
                      "place": t.place, "outcome": t.outcome} for t in tracking],
        # Every message on the wire about the order, as it went and came (the body as text when it is).
        "exchanges": [{"id": x.id, "at": iso(x.at), "direction": x.direction, "kind": x.kind, "connector": x.connector,
                       "warehouse": x.warehouse, "topic": x.topic, "correlation_id": x.correlation_id,
                       "message_id": x.message_id, "status": x.status, "content_type": x.content_type,
                       "bytes": len(x.body), "body": _text(x.body), "note": x.note} for x in exchanges],
        "waiting_for": [{"kind": w.kind, "key": w.key, "since": iso(w.since), "ready": w.ready} for w in waits],
        # Steps it did not reach within their limit (config late_steps), each alerted once.
        "late_steps": late_steps_of(s, o.id),
        # What the channel said of it after sending it, and what came of each change (orders/updates.py).
        "updates": [{"id": u.id, "received_at": iso(u.received_at), "status": u.status, "outcome": u.outcome,
                     "changes": u.changes or [], "applied_at": iso(u.applied_at)}
                    for u in s.scalars(select(OrderUpdate).where(OrderUpdate.order_id == o.id)
                                       .order_by(OrderUpdate.id))],
        # New addresses asked of the warehouse holding it (a split order: of its parts'), and the answers
        # (fulfilment/address_requests.py).
        "address_requests": requests_of(s, [o.id, *(c.id for c in o.children)]),
    }


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode("ascii")


def _channel_line(by_line: dict[str, Any], line_no: int) -> dict[str, Any]:
    kept = by_line.get(str(line_no)) or {}
    return {"properties": kept.get("properties") or [], "extensions": kept.get("extensions") or {}}

"""Telling the customer what happened: the notification rules, the outbox, templates rendered on delivery.

On every transition the ``notifications`` ruleset is asked what to send, with
the order's facts plus the transition. Each ``notify`` action queues a message
in the outbox, in the transition's transaction: the template's name and the
render context (the order, the customer and the transition as they are now),
not the text. The outbox stage renders it when it delivers it
(:func:`render_notification`) and keeps the rendered subject and body on the
row once sent. So a template that fails on this order's data fails that one
message, retried with backoff and dead after the retry limit with its error on
the message, never the transition, the order or the batch it came with; and a
template fixed in the meantime is used for the messages still waiting. A fact
provider that failed on the order costs its notifications (an incident says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..config import QuietHours
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..orders.incidents import record_incident
from ..plugin.contracts import Template
from ..plugin.registry import PluginRegistry
from ..storage.models import Order
from .outbox import Kind, OutboxWriter, Topic
from .templates import render

if TYPE_CHECKING:
    from ..orders.machine import Event, State

POINT = DecisionPoint.NOTIFICATIONS.value


class Notifier:
    def __init__(self, rulebook: Rulebook, plugins: PluginRegistry, facts: FactBuilder, outbox: OutboxWriter,
                 decisions: DecisionRecorder, quiet: QuietHours | None = None) -> None:
        """``quiet``: hours a message of its media waits out (config quiet_hours)."""
        self.rulebook, self.plugins, self.facts = rulebook, plugins, facts
        self.outbox, self.decisions, self.quiet = outbox, decisions, quiet

    def prepare(self, s: Session, orders: list[Any], cache: FactCache) -> None:
        """Build the facts of a batch of orders about to move, in one go (one fact provider call, not one each)."""
        if POINT in self.rulebook.rulesets and orders:
            self.facts.facts(s, orders, cache, point=POINT)

    def on_transition(self, s: Session, order: Order, before: State, event: Event, target: State, actor: str,
                      cache: FactCache | None, seen: tuple[bool, str] = (False, "")) -> None:
        """``seen``: what the customer may see of it (customer_visible and label, from the status map)."""
        if POINT not in self.rulebook.rulesets:
            return
        cache = cache if cache is not None else FactCache()
        facts = dict(self.facts.facts(s, [order], cache, point=POINT)[order.id])
        transition = {"event": event.value, "from_state": before.value, "to_state": target.value, "actor": actor,
                      "customer_visible": seen[0], "label": seen[1]}
        fault = cache.faults.get(order.id)
        if fault is not None:
            record_incident(s, order_id=order.id, stage=POINT, error=fault,
                            action=f"no notification for {event.value}", at=self.facts.clock.now())
            return
        facts["transition"] = transition
        decision = self.rulebook.decide(POINT, facts)
        if decision is None or not decision.fired:
            return
        sent = []
        for action in decision.actions:
            if action.name != "notify":
                continue
            sent.append(self._queue(s, order, target, transition, action.params))
        self.decisions.record(s, order, POINT, decision, {"event": event.value, "sent": sent})

    def _queue(self, s: Session, order: Order, target: State, transition: dict[str, Any],
               params: dict[str, Any]) -> dict[str, Any]:
        customer = order.customer
        # The order's own contact snapshot first (orders/customers.py: a payload never changes the
        # customer record, so each order's messages go where that order said); then the record.
        contact = order.contact or {}
        template = pick_template(self.plugins, params["template"], contact.get("language", ""))
        medium = params.get("medium", template.medium)
        if medium == "email":
            recipient = contact.get("email") or customer.email
        elif medium == "sms":
            recipient = contact.get("phone") or customer.phone
        elif medium == "app":
            recipient = contact.get("app_user") or customer.ref
        else:
            recipient = customer.ref
        # Plain JSON, taken now: the message tells what this transition did, whenever it is delivered.
        context = notification_context(order, target.value, transition)
        wait = None
        if self.quiet is not None and medium in self.quiet.media:
            wait = quiet_until(self.facts.clock.now(), self.quiet)
        self.outbox.enqueue(s, order, Kind.NOTIFICATION, medium, Topic.notify(template.name),
                            {"recipient": recipient, "template": template.key, "context": context}, not_before=wait)
        sent = {"template": template.key, "medium": medium, "recipient": recipient}
        if wait is not None:
            sent["not_before"] = wait.isoformat() + "Z"
        return sent


def quiet_until(now: datetime, quiet: QuietHours) -> datetime | None:
    """When the quiet hours ``now`` (UTC, naive) falls in end (UTC, naive); None outside them."""
    zone = ZoneInfo(quiet.timezone)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    start, end = (time.fromisoformat(t) for t in (quiet.start, quiet.end))
    at = local.time()
    inside = start <= at < end if start < end else (at >= start or at < end) if start != end else False
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(UTC).replace(tzinfo=None)


def pick_template(plugins: PluginRegistry, name: str, language: str) -> Template:
    """Template ``name`` in ``language`` ("zh-CN": ``name@zh-CN``, else ``name@zh``), else the one for any."""
    if language:
        for key in (f"{name}@{language}", f"{name}@{language.split('-')[0]}"):
            if key in plugins.templates:
                return plugins.templates.get(key)
    return plugins.templates.get(name)


def notification_context(order: Any, status: str, transition: Mapping[str, Any]) -> dict[str, Any]:
    """What a notification's template is rendered with: plain JSON, taken when it is queued, so the message
    tells what this transition did whenever it is delivered (messaging/templates.py: SAMPLE_CONTEXT)."""
    contact = order.contact or {}
    customer = order.customer
    return {"order": {"number": order.number, "status": status, "payable": order.payable,
                      "currency": order.currency, "tracking_no": order.tracking_no or "",
                      "carrier": order.carrier or "", "warehouse": order.warehouse or "",
                      "refund": order.refund_amount, "hold_reason": order.hold_reason or ""},
            "customer": {"name": contact.get("name") or customer.name, "level": customer.level},
            "transition": dict(transition)}


def render_notification(plugins: PluginRegistry, payload: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) of a queued notification, rendered now from its template and context.

    Raises :class:`~oms_engine.messaging.templates.TemplateProblem` when the
    template fails on this context, and RegistryError when no template has
    that name any more: the outbox retries the message either way. A message
    queued before templates were rendered on delivery carries its text already.
    """
    if "context" not in payload:
        return payload.get("subject", ""), payload["body"]
    template = plugins.templates.get(payload["template"])
    context = payload["context"]
    body = render(template.body, context, name=template.key, origin=template.origin)
    subject = render(template.subject, context, name=template.key, origin=template.origin) if template.subject else ""
    return subject, body

"""Telling the customer what happened: the notification rules, rendered templates, the outbox.

On every transition the ``notifications`` ruleset is asked what to send, with
the order's facts plus the transition. Each ``notify`` action renders its
template in the sandbox and queues the message in the outbox, in the
transition's transaction; the outbox stage delivers it. A template that fails
on this order's data, or a fact provider that failed on it, costs that one
notification (recorded with the decision), never the transition or the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..orders.incidents import record_incident
from ..plugin.registry import PluginRegistry
from ..storage.models import Order
from .outbox import Kind, OutboxWriter, Topic
from .templates import TemplateProblem, render

if TYPE_CHECKING:
    from ..orders.machine import Event, State

POINT = DecisionPoint.NOTIFICATIONS.value


class Notifier:
    def __init__(self, rulebook: Rulebook, plugins: PluginRegistry, facts: FactBuilder, outbox: OutboxWriter,
                 decisions: DecisionRecorder) -> None:
        self.rulebook, self.plugins, self.facts = rulebook, plugins, facts
        self.outbox, self.decisions = outbox, decisions

    def on_transition(self, s: Session, order: Order, before: State, event: Event, target: State, actor: str,
                      cache: FactCache | None) -> None:
        if POINT not in self.rulebook.rulesets:
            return
        cache = cache if cache is not None else FactCache()
        facts = dict(self.facts.facts(s, [order], cache, point=POINT)[order.id])
        transition = {"event": event.value, "from_state": before.value, "to_state": target.value, "actor": actor}
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
            sent.append(self._send(s, order, target, transition, action.params))
        self.decisions.record(s, order, POINT, decision, {"event": event.value, "sent": sent})

    def _send(self, s: Session, order: Order, target: State, transition: dict[str, str],
              params: dict[str, Any]) -> dict[str, Any]:
        template = self.plugins.templates.get(params["template"])
        medium = params.get("medium", template.medium)
        customer = order.customer
        recipient = customer.email if medium == "email" else customer.phone if medium == "sms" else customer.ref
        context = {"order": {"number": order.number, "status": target.value, "payable": order.payable,
                             "currency": order.currency, "tracking_no": order.tracking_no or "",
                             "carrier": order.carrier or "", "warehouse": order.warehouse or "",
                             "refund": order.refund_amount, "hold_reason": order.hold_reason or ""},
                   "customer": {"name": customer.name, "level": customer.level},
                   "transition": transition}
        try:
            body = render(template.body, context, name=template.name)
            subject = render(template.subject, context, name=template.name) if template.subject else ""
        except TemplateProblem as exc:
            # Templates are checked at start; should one still fail on real data, the
            # order's transition stands and the failure is on record, not the order lost.
            return {"template": template.name, "medium": medium, "error": str(exc)}
        self.outbox.enqueue(s, order, Kind.NOTIFICATION, medium, Topic.notify(template.name),
                            {"recipient": recipient, "template": template.name, "subject": subject, "body": body})
        return {"template": template.name, "medium": medium, "recipient": recipient}

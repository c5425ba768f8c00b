"""Putting an order on hold from a pipeline stage, for a rule's reason or a fault."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..orders.flow import HoldStage, Step, fault_hold
from ..orders.incidents import record_incident
from ..orders.machine import Event, OrderMachine
from ..storage.models import Order


def hold(s: Session, machine: OrderMachine, order: Order, stage: HoldStage, reason: str, *, actor: str,
         cache: FactCache | None) -> None:
    order.hold_reason, order.hold_stage = reason, stage.value
    machine.fire(s, order, Event.HOLD, actor=actor, cause=reason, cache=cache)


def hold_on_fault(s: Session, machine: OrderMachine, order: Order, step: Step, error: BaseException,
                  cache: FactCache | None) -> None:
    """The order waits in the review queue with the fault as its reason; releasing it runs ``step`` again."""
    record_incident(s, order_id=order.id, stage=step.value, error=error, action="order held for review",
                    at=machine.clock.now())
    order.stage = None
    hold(s, machine, order, fault_hold(step), str(error)[:2000], actor="oms", cache=cache)

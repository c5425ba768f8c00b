"""Screening: the blocking rules may put a paid order on hold for review."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..orders.machine import OrderMachine, State
from ..orders.records import load_records
from ..orders.steps import HoldStage, Step
from ..rules import FactError, RuleEngineError
from ..storage.claims import claim
from ..storage.models import Order
from .holding import hold, hold_on_fault
from .stage import RulesInForce, StageName, Unit, UnitKind, rules_as_loaded

POINT = DecisionPoint.BLOCKING.value


class ScreenStage:
    name = StageName.SCREEN

    def __init__(self, *, batch_size: int, facts: FactBuilder, rulebook: Rulebook, decisions: DecisionRecorder,
                 machine: OrderMachine,
                 rules_in_force: RulesInForce = rules_as_loaded) -> None:
        self.batch_size, self.facts, self.rulebook = batch_size, facts, rulebook
        self.decisions, self.machine = decisions, machine
        self.rules_in_force = rules_in_force
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim(s, select(Order.id).where(Order.status == State.PAID.value, Order.stage == Step.SCREEN.value)
                    .order_by(Order.id), self.batch_size)
        if ids:
            self.rules_in_force(s)
        orders = load_records(s, ids)
        facts = self.facts.facts(s, orders, cache)
        for order in orders:
            self.current = Unit(UnitKind.ORDER, order.id)
            fault = cache.faults.get(order.id)
            if fault is not None:
                hold_on_fault(s, self.machine, order, Step.SCREEN, fault, cache)
                continue
            try:
                decision = self.rulebook.decide(POINT, facts[order.id])
            except (FactError, RuleEngineError) as exc:
                hold_on_fault(s, self.machine, order, Step.SCREEN, exc, cache)
                continue
            reasons = [a.params["reason"] for a in (decision.actions if decision else []) if a.name == "hold"]
            self.decisions.record(s, order, POINT, decision, {"hold": bool(reasons), "reasons": reasons})
            if reasons:
                hold(s, self.machine, order, HoldStage.SCREENING, "; ".join(reasons), actor="rules:blocking",
                     cache=cache)
            else:
                order.stage = Step.SPLIT.value
        self.current = None
        return len(orders)

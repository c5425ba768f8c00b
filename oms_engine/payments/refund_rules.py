"""Which means of payment a refund goes back to first: the rules of the ``refunds`` point (rules/refunds.yaml).

Asked only when there is a choice (the order was paid by more than one means
and not everything goes back). The first rule that matches names the means in
the order they are paid back (``refund_to: {methods: [...]}``); those it does
not name follow, the latest payment first, as they do when no rule matches.
The decision is recorded on the order like every other, with its facts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from .methods import Method

POINT = DecisionPoint.REFUNDS.value
STORED_VALUE = frozenset({Method.GIFT_CARD.value, Method.POINTS.value})


class RefundRules:
    def __init__(self, *, rulebook: Rulebook, facts: FactBuilder, decisions: DecisionRecorder,
                 rules_in_force: Callable[[Session], object] = lambda _s: None) -> None:
        self.rulebook, self.facts, self.decisions, self.rules_in_force = rulebook, facts, decisions, rules_in_force

    def methods(self, s: Session, order: Any, *, cause: str, case_kind: str, amount: int, whole: bool,
                paid_with: Sequence[str]) -> list[str]:
        """The means of payment ``amount`` owed back for ``order`` goes to first, in order."""
        self.rules_in_force(s)
        facts = dict(self.facts.facts(s, [order], FactCache(), point=POINT)[order.id])
        facts["refund"] = {"cause": cause, "case_kind": case_kind, "amount": amount, "whole": whole,
                           "stored_value": bool(STORED_VALUE & set(paid_with))}
        decision = self.rulebook.decide(POINT, facts)
        action = next((a for a in decision.actions if a.name == "refund_to"), None) \
            if decision is not None else None
        methods = [str(m) for m in action.params["methods"]] if action is not None else []
        rule = decision.fired[0].name if decision is not None and decision.fired else None
        self.decisions.record(s, order, POINT, decision, {
            "methods": methods,
            "why": (f"refund of {amount} back to {', '.join(methods)} first (rule {rule})" if methods
                    else "no rule orders the refund: the latest payment first")})
        return methods

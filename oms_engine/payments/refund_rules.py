"""Which means of payment a refund goes back to first: the rules of the ``refunds`` point (rules/refunds.yaml).

Asked for every after-sales refund, and for another refund when there is a
choice (the order was paid by more than one means and not everything goes
back). The first rule that matches names the means in the order they are paid
back (``refund_to: {methods: [...]}``); those it does not name follow, the
latest payment first, as they do when no rule matches. On an after-sales
refund a rule may also take back the promotion on the goods the customer
keeps (``claw_back``: a coupon whose threshold the kept goods no longer
reach). A parcel refused at the door and back in the warehouse asks them too:
``keep_freight`` keeps the freight the customer paid out of its refund.
The decision is recorded on the order like every other, with its facts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from .methods import Method

POINT = DecisionPoint.REFUNDS.value
STORED_VALUE = frozenset({Method.GIFT_CARD.value, Method.POINTS.value})


@dataclass(frozen=True)
class RefundPlan:
    """What the refund rules decided: the means of payment to pay back first, and whether the promotion the
    customer keeps without qualifying for it any more is taken off the refund."""

    methods: tuple[str, ...] = ()
    claw_back: bool = False
    keep_freight: str = ""       # why the freight of a refused parcel stays with the shop ("": it goes back)


class RefundRules:
    def __init__(self, *, rulebook: Rulebook, facts: FactBuilder, decisions: DecisionRecorder,
                 rules_in_force: Callable[[Session], object] = lambda _s: None) -> None:
        self.rulebook, self.facts, self.decisions, self.rules_in_force = rulebook, facts, decisions, rules_in_force

    def decide(self, s: Session, order: Any, *, cause: str, case_kind: str = "", amount: int, whole: bool,
               paid_with: Sequence[str], kept_goods: int = -1, kept_discount: int = 0) -> RefundPlan:
        """How ``amount`` owed back for ``order`` is paid back. ``kept_goods``, ``kept_discount``: an after-sales
        case's, the goods the customer keeps (at their prices) and the promotions they got on them (-1: not a
        case)."""
        self.rules_in_force(s)
        facts = dict(self.facts.facts(s, [order], FactCache(), point=POINT)[order.id])
        facts["refund"] = {"cause": cause, "case_kind": case_kind, "amount": amount, "whole": whole,
                           "stored_value": bool(STORED_VALUE & set(paid_with)), "kept_goods": kept_goods,
                           "kept_discount": kept_discount}
        decision = self.rulebook.decide(POINT, facts)
        actions = decision.actions if decision is not None else ()
        to = next((a for a in actions if a.name == "refund_to"), None)
        keep = next((a for a in actions if a.name == "keep_freight"), None) if cause == "returned" else None
        plan = RefundPlan(tuple(str(m) for m in to.params["methods"]) if to is not None else (),
                          any(a.name == "claw_back" for a in actions) and kept_discount > 0,
                          str(keep.params.get("reason") or "the refused parcel's freight") if keep is not None else "")
        rule = decision.fired[0].name if decision is not None and decision.fired else None
        why = [f"back to {', '.join(plan.methods)} first" if plan.methods else "the latest payment first"]
        if plan.claw_back:
            why.append(f"{kept_discount} of promotions on the goods kept taken back")
        if plan.keep_freight:
            why.append(f"the freight kept ({plan.keep_freight})")
        self.decisions.record(s, order, POINT, decision, {
            "methods": list(plan.methods), "claw_back": kept_discount if plan.claw_back else 0,
            "keep_freight": bool(plan.keep_freight),
            "why": f"refund of {amount}: " + "; ".join(why) + (f" (rule {rule})" if rule else " (no rule)")})
        return plan

"""A merchant's commission rate: the first rule of rules/commission.yaml that matches the merchant, the product's
category and the channel names it in basis points (500 = 5 %). No rule: no commission, said so."""

from __future__ import annotations

from dataclasses import dataclass

from ..decisions.points import DecisionPoint
from ..decisions.rulebook import Rulebook

POINT = DecisionPoint.COMMISSION.value


@dataclass(frozen=True)
class Rate:
    basis_points: int
    rule: str | None       # None: no rule matched
    reason: str


class CommissionRates:
    """The rates for one statement: each merchant, category and channel decided once."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self._known: dict[tuple[str, str, str], Rate] = {}

    def rate(self, merchant: str, category: str, channel: str) -> Rate:
        key = (merchant, category, channel)
        if key not in self._known:
            decision = self.rulebook.decide(POINT, {"commission": {"merchant": merchant, "category": category,
                                                                   "channel": channel}})
            action = next((a for a in decision.actions if a.name == "commission"), None) \
                if decision is not None else None
            if action is None:
                self._known[key] = Rate(0, None, "no rule charges a commission")
            else:
                rule = decision.fired[0].name if decision is not None and decision.fired else None
                self._known[key] = Rate(int(action.params["rate_bp"]), rule, str(action.params.get("reason", "")))
        return self._known[key]

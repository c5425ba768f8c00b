"""Screening: the blocking rules may put a paid order on hold for review."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..decisions.points import DecisionPoint
from ..orders import flow
from ..orders.flow import HoldStage
from ..orders.records import OrderRec
from ..rules import Decision
from .deciding import DecisionStage
from .holding import hold
from .stage import StageName


class ScreenStage(DecisionStage):
    name = StageName.SCREEN
    step = flow.Step.SCREEN
    point = DecisionPoint.BLOCKING.value

    def decide(self, s: Session, order: OrderRec, decision: Decision | None, batch: Any, cache: FactCache) -> None:
        reasons = [a.params["reason"] for a in (decision.actions if decision else []) if a.name == "hold"]
        self.decisions.record(s, order, self.point, decision, {"hold": bool(reasons), "reasons": reasons})
        if reasons:
            order.stage = None
            hold(s, self.machine, order, HoldStage.SCREENING, "; ".join(reasons), actor="rules:blocking",
                 cache=cache)
        else:
            flow.advance(order, self.step)

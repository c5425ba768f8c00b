"""Screening: the blocking rules may put a paid order on hold for review, bin it, or refuse it outright."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..decisions.points import DecisionPoint
from ..orders import flow
from ..orders.flow import HoldStage
from ..orders.records import OrderRec
from ..orders.states import Event
from ..rules import Decision
from .deciding import DecisionStage
from .holding import hold
from .stage import StageName


class ScreenStage(DecisionStage):
    name = StageName.SCREEN
    step = flow.Step.SCREEN
    point = DecisionPoint.BLOCKING.value

    def decide(self, s: Session, order: OrderRec, decision: Decision | None, batch: Any, cache: FactCache) -> None:
        actions = decision.actions if decision else []
        refusals = [a.params["reason"] for a in actions if a.name == "refuse"]
        binned = [a.params["reason"] for a in actions if a.name == "bin"]
        reasons = [a.params["reason"] for a in actions if a.name == "hold"]
        if refusals:
            # Refused outright: no person would ship it, so it does not wait in the review queue. Its channel is
            # told why (channels/reports.py), and the reason stays on the order.
            self.decisions.record(s, order, self.point, decision, {"refuse": True, "reasons": refusals})
            order.stage = None
            order.hold_reason = "; ".join(refusals)[:2000]
            self.machine.fire(s, order, Event.CANCEL, actor="rules:blocking",
                              cause=f"refused at placement: {order.hold_reason}", cache=cache)
            return
        if binned:
            # Into the recycle bin: out of the flow with its stock freed, but restorable until its period ends, so
            # nothing is refunded or told to the channel yet (a bin wins over a hold: no one need review it).
            self.decisions.record(s, order, self.point, decision, {"bin": True, "reasons": binned})
            order.stage = None
            order.hold_reason = "; ".join(binned)[:2000]
            self.machine.fire(s, order, Event.BIN, actor="rules:blocking", cause=f"binned: {order.hold_reason}",
                              cache=cache)
            return
        self.decisions.record(s, order, self.point, decision, {"hold": bool(reasons), "reasons": reasons})
        if reasons:
            order.stage = None
            hold(s, self.machine, order, HoldStage.SCREENING, "; ".join(reasons), actor="rules:blocking",
                 cache=cache)
        else:
            flow.advance(order, self.step)

"""Where a paid order is in the pipeline, and where a held one resumes.

``orders.stage`` holds the next :class:`Step` of an order in state ``paid``
(and ``check`` for a split parent whose children moved). ``orders.hold_stage``
says which stage put an order on hold; releasing it resumes at
:data:`RESUME` of that stage.
"""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    SCREEN = "screen"
    SPLIT = "split"
    ROUTE = "route"
    CHECK = "check"      # a split parent: look at its children again


class HoldStage(StrEnum):
    INTAKE = "intake"                # the order could not be taken as it is (SKU, totals, stock, payment)
    SCREENING = "screening"          # the blocking rules held it
    ROUTING = "routing"              # no warehouse can ship it
    SCREEN_FAULT = "screen-fault"    # a plugin failed while it was screened
    SPLIT_FAULT = "split-fault"      # ... split
    ROUTE_FAULT = "route-fault"      # ... routed


# An intake hold resumes at screening once what held it is fixed; a person who
# releases a screening hold has done the screening, so the order goes on to
# split; a fault hold runs the stage that failed again.
RESUME: dict[HoldStage, Step] = {
    HoldStage.INTAKE: Step.SCREEN,
    HoldStage.SCREENING: Step.SPLIT,
    HoldStage.ROUTING: Step.ROUTE,
    HoldStage.SCREEN_FAULT: Step.SCREEN,
    HoldStage.SPLIT_FAULT: Step.SPLIT,
    HoldStage.ROUTE_FAULT: Step.ROUTE,
}
FAULT_HOLD: dict[Step, HoldStage] = {
    Step.SCREEN: HoldStage.SCREEN_FAULT,
    Step.SPLIT: HoldStage.SPLIT_FAULT,
    Step.ROUTE: HoldStage.ROUTE_FAULT,
}

"""The order flow: which pipeline step an order takes next, where a held order resumes, how a fault holds it.

The state machine (machine.py) says which states an order may be in; this
table says what the pipeline does with an order while it is in one. An order
waiting for a step carries it in ``orders.stage``; the stage that owns the
step claims ``status = row.state AND stage = row.step``, does its work, and
moves the order on with :func:`advance` (the next row's step, or none: the
order leaves the flow, usually by a transition the stage fired). No stage
names its successor, so a new step (merging, courier choice...) is one row
here, one stage module, and one line in engine.py that puts the stage in the
pass (stages run in the pass's order, see pipeline/runner.py).

==========  =========  =========  ================================================
state       step       next       what the stage does
==========  =========  =========  ================================================
paid        screen     split      the blocking rules may hold the order
paid        split      route      the split rules may divide it into children
paid        route      merge      the routing rules choose a warehouse (-> routed)
routed      merge      carrier    the merging rules may put it in one parcel with
                                  other orders of its customer (and wait for more)
routed      carrier    document   the courier rules choose carrier and service
routed      document   (none)     the warehouse document is queued in the outbox
split       check      (none)     a child ended: the parent may end too
on_hold     recheck    (none)     what the hold waits for may be there: release
                                  the order if it is covered now (backorders)
==========  =========  =========  ================================================

The recheck step is the one step not carried in ``orders.stage``: an order
waits for it through its ready waits (orders/waits.py), which goods coming in
mark without taking the order's row lock.

A held order remembers why in ``orders.hold_stage``; releasing it resumes at
:data:`RESUME` of that hold: a hold at intake goes through screening; a
person who releases a screening hold has done the screening, so the order
goes on after it; a routing hold, or a plugin's fault, runs the step again.
A routed order held for its courier (or a fault while merging or choosing
one) is paid again once released, so it goes through routing again: its
units are reserved where it was routed, and a warehouse whose carriers can
take it now may be chosen instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .states import State


class Step(StrEnum):
    SCREEN = "screen"
    SPLIT = "split"
    ROUTE = "route"
    MERGE = "merge"
    CARRIER = "carrier"
    DOCUMENT = "document"
    CHECK = "check"        # a split parent: look at its children again
    RECHECK = "recheck"    # a held order: what it waits for may be there now


class HoldStage(StrEnum):
    INTAKE = "intake"                # the order could not be taken as it is (SKU, totals, stock, payment)
    SCREENING = "screening"          # the blocking rules held it
    ROUTING = "routing"              # no warehouse can ship it
    SCREEN_FAULT = "screen-fault"    # a plugin failed while it was screened
    SPLIT_FAULT = "split-fault"      # ... split
    ROUTE_FAULT = "route-fault"      # ... routed
    COURIER = "courier"              # no carrier takes the parcel
    MERGE_FAULT = "merge-fault"      # a plugin failed while it was merged
    CARRIER_FAULT = "carrier-fault"  # ... while its courier was chosen
    EXCHANGE = "exchange"            # a replacement waits for the goods it replaces to come back
    RESTORED = "restored"            # out of the recycle bin: a person looks at it again


@dataclass(frozen=True)
class Row:
    state: State
    step: Step
    next: Step | None
    # The hold a plugin's fault at this step puts the order in (None: the step calls no plugin that may hold).
    fault: HoldStage | None = None


FLOW: tuple[Row, ...] = (
    Row(State.PAID, Step.SCREEN, Step.SPLIT, HoldStage.SCREEN_FAULT),
    Row(State.PAID, Step.SPLIT, Step.ROUTE, HoldStage.SPLIT_FAULT),
    Row(State.PAID, Step.ROUTE, Step.MERGE, HoldStage.ROUTE_FAULT),
    Row(State.ROUTED, Step.MERGE, Step.CARRIER, HoldStage.MERGE_FAULT),
    Row(State.ROUTED, Step.CARRIER, Step.DOCUMENT, HoldStage.CARRIER_FAULT),
    Row(State.ROUTED, Step.DOCUMENT, None),
    Row(State.SPLIT, Step.CHECK, None),
    Row(State.ON_HOLD, Step.RECHECK, None),
)
_BY_STEP = {row.step: row for row in FLOW}

# Where a paid order starts, and where a child order made by a split starts.
FIRST: Step = Step.SCREEN
CHILD_FIRST: Step = _BY_STEP[Step.SPLIT].next  # type: ignore[assignment]
# The step a finished child puts its parent at, in the transaction that finished it.
PARENT_CHECK = Step.CHECK

RESUME: dict[HoldStage, Step] = {
    HoldStage.INTAKE: FIRST,
    HoldStage.SCREENING: _BY_STEP[Step.SCREEN].next,  # type: ignore[dict-item]
    HoldStage.ROUTING: Step.ROUTE,
    HoldStage.SCREEN_FAULT: Step.SCREEN,
    HoldStage.SPLIT_FAULT: Step.SPLIT,
    HoldStage.ROUTE_FAULT: Step.ROUTE,
    HoldStage.COURIER: Step.ROUTE,
    HoldStage.MERGE_FAULT: Step.ROUTE,
    HoldStage.CARRIER_FAULT: Step.ROUTE,
    # A replacement is not screened: nothing was paid, and the case it belongs to was decided.
    HoldStage.EXCHANGE: _BY_STEP[Step.SCREEN].next,  # type: ignore[dict-item]
    # Restoring an order is a person's judgement of it, as releasing a screening hold is; its stock is
    # reserved again (on restore, and what is still short on release) as at intake.
    HoldStage.RESTORED: _BY_STEP[Step.SCREEN].next,  # type: ignore[dict-item]
}


def row(step: Step) -> Row:
    return _BY_STEP[step]


def state_of(step: Step) -> State:
    """The state an order waiting for ``step`` is in (what the step's stage claims)."""
    return _BY_STEP[step].state


def after(step: Step) -> Step | None:
    return _BY_STEP[step].next


def next_step(step: Step) -> str | None:
    """The ``stage`` of an order that has passed ``step``: the next step's, or none."""
    nxt = _BY_STEP[step].next
    return nxt.value if nxt is not None else None


def advance(order: object, step: Step) -> None:
    """The order has passed ``step``: it waits for the next one (or for none)."""
    order.stage = next_step(step)  # type: ignore[attr-defined]


def fault_hold(step: Step) -> HoldStage:
    hold = _BY_STEP[step].fault
    if hold is None:
        raise LookupError(f"step '{step}' has no fault hold")
    return hold


def resume(hold_stage: str | None) -> Step:
    """The step an order released from this hold goes on at (an unknown hold: as after screening)."""
    try:
        return RESUME[HoldStage(hold_stage)] if hold_stage else RESUME[HoldStage.SCREENING]
    except ValueError:
        return RESUME[HoldStage.SCREENING]

"""The order flow table: every step has one stage that owns it, every hold resumes at a step that exists."""

from __future__ import annotations

from collections import Counter

from oms_engine.engine import OMS
from oms_engine.orders import flow
from oms_engine.orders.flow import FLOW, HoldStage, Step
from oms_engine.orders.states import State


def test_every_step_of_the_flow_is_worked_by_exactly_one_stage_and_in_flow_order(sqlite_oms: OMS) -> None:
    owners = Counter(st.step for st in sqlite_oms.pipeline.stages if getattr(st, "step", None) is not None)
    assert set(owners) == {row.step for row in FLOW}
    assert all(n == 1 for n in owners.values()), owners
    # A step's stage runs before the stage of the step after it, so an order moves through in one pass.
    position = {st.step: i for i, st in enumerate(sqlite_oms.pipeline.stages) if getattr(st, "step", None)}
    for row in FLOW:
        if row.next is not None:
            assert position[row.step] < position[row.next], row


def test_holds_resume_at_steps_of_the_flow_and_faults_run_their_step_again() -> None:
    assert set(flow.RESUME) == set(HoldStage)
    for hold, step in flow.RESUME.items():
        assert step in {row.step for row in FLOW}, hold
    for row in FLOW:
        if row.fault is not None and row.state is State.PAID:
            assert flow.resume(row.fault.value) is row.step
        elif row.fault is not None:
            # A routed order released is paid again: it goes through routing again, then this step.
            assert flow.resume(row.fault.value) is Step.ROUTE
    # A person who releases a screening hold has done the screening.
    assert flow.resume(HoldStage.SCREENING.value) is flow.after(Step.SCREEN)
    assert flow.resume(HoldStage.INTAKE.value) is flow.FIRST
    assert flow.CHILD_FIRST is flow.after(Step.SPLIT)

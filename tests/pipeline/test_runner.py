"""The runner contains what it cannot foresee: a stage that fails on one unit of work sets that unit aside and
the pass goes on; a stage that loses a race with another transaction runs again; nothing else is swallowed.
Each stage commits on its own, so what one stage did stands whatever a later one meets."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg.errors
import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from oms_engine.decisions.fact_builder import FactCache
from oms_engine.engine import OMS
from oms_engine.orders.explain import explain
from oms_engine.orders.flow import Step
from oms_engine.pipeline.runner import Pipeline, is_retryable
from oms_engine.pipeline.stage import StageName, Unit, UnitKind
from oms_engine.storage.models import Order
from tests.support import NO_REFUSALS, build_oms, order_json, payload
from tests.support.pipeline import status


class Trips:
    """A stage that fails, the way a bug would, on the orders it is told to."""

    name = StageName.SCREEN
    step = Step.SCREEN   # it works the screening step: an order it fails on can wait for review

    def __init__(self, inner: object, bad: set[str], *, before_any: bool = False) -> None:
        self.inner, self.bad, self.before_any = inner, bad, before_any
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        if self.before_any:
            raise ZeroDivisionError("nothing to pin it on")
        for order in s.scalars(select(Order).where(Order.stage == "screen", Order.status == "paid")):
            self.current = Unit(UnitKind.ORDER, order.id)
            if order.external_id in self.bad:
                raise KeyError(f"a bug met order {order.number}")
        self.current = None
        return self.inner.run(s, cache)  # type: ignore[attr-defined]


def _pipeline(oms: OMS, stage: Trips) -> Pipeline:
    stages = [stage if st.name == StageName.SCREEN else st for st in oms.pipeline.stages]
    return Pipeline(db=oms.db, clock=oms.clock, machine=oms.machine, stages=stages, retry_seconds=60)


def test_an_unexpected_failure_sets_its_order_aside_and_the_rest_go_on(oms: OMS) -> None:
    results = oms.intake.ingest("json", payload(order_json("A"), order_json("B"), order_json("C")))
    numbers = {r.external_id: r.number for r in results}
    pipeline = _pipeline(oms, Trips(oms.pipeline.stage(StageName.SCREEN), {"B"}))
    pipeline.run_until_idle()
    assert status(oms, numbers["A"]) == status(oms, numbers["C"]) == "dispatched"
    with oms.db.read() as s:
        story = explain(s, numbers["B"])
    assert story["status"] == "on_hold" and story["hold_stage"] == "screen-fault"
    assert "internal error" in story["hold_reason"] and "a bug met order" in story["hold_reason"]
    [incident] = story["incidents"]
    assert incident["plugin"] == "" and incident["hook"] == "core" and incident["action"] == "order held for review"
    assert pipeline.faults == 1


def test_a_failure_that_names_no_unit_is_raised(sqlite_oms: OMS) -> None:
    sqlite_oms.intake.ingest("json", payload(order_json("A")))
    pipeline = _pipeline(sqlite_oms, Trips(sqlite_oms.pipeline.stage(StageName.SCREEN), set(), before_any=True))
    with pytest.raises(ZeroDivisionError):
        pipeline.run_pass()


def test_lost_races_are_recognised() -> None:
    locked = OperationalError("UPDATE stock", {}, sqlite3.OperationalError("database is locked"))
    assert is_retryable(locked)

    class Deadlock(Exception):
        sqlstate = "40P01"

    assert is_retryable(OperationalError("UPDATE stock", {}, Deadlock("deadlock detected")))
    assert not is_retryable(OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x")))
    assert not is_retryable(KeyError("x"))


class Explodes:
    """A stage that fails before it takes any unit of work: nothing to pin it on."""

    def __init__(self, name: StageName) -> None:
        self.name = name
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        raise ZeroDivisionError("the outbox is broken")


def test_each_stage_commits_on_its_own(sqlite_oms: OMS) -> None:
    [r] = sqlite_oms.intake.ingest("json", payload(order_json("A")))
    stages = [Explodes(StageName.OUTBOX) if st.name == StageName.OUTBOX else st for st in sqlite_oms.pipeline.stages]
    pipeline = Pipeline(db=sqlite_oms.db, clock=sqlite_oms.clock, machine=sqlite_oms.machine, stages=stages,
                        retry_seconds=60)
    with pytest.raises(ZeroDivisionError):
        pipeline.run_pass()
    # screened, split and routed before the outbox failed: that work was committed stage by stage
    assert status(sqlite_oms, r.number) == "routed"


def test_a_stage_that_loses_a_race_runs_again(oms: OMS, caplog: pytest.LogCaptureFixture) -> None:
    [r] = oms.intake.ingest("json", payload(order_json("A", [("TEA-1", 1), ("MUG-1", 1)])))
    oms.pipeline.run_pass(only=["screen", "split"])
    lost: list[str] = []
    sqlite = oms.db.engine.dialect.name == "sqlite"

    def lose_once(conn: object, cursor: object, statement: str, params: object, context: object,
                  many: bool) -> None:
        # The routing stage's claim fails as the loser of a race would.
        if not lost and "orders.stage" in statement:
            lost.append(statement)
            if sqlite:
                raise sqlite3.OperationalError("database is locked")
            raise psycopg.errors.DeadlockDetected("deadlock detected")

    event.listen(oms.db.engine, "before_cursor_execute", lose_once)
    try:
        with caplog.at_level(logging.INFO, logger="oms.pipeline"):
            done = oms.pipeline.run_pass(only=["route"])
    finally:
        event.remove(oms.db.engine, "before_cursor_execute", lose_once)
    assert lost and done == {"route": 1}
    assert "stage route lost a race" in caplog.text
    assert oms.pipeline.faults == 0
    assert status(oms, r.number) == "routed"


def test_children_the_database_refuses_set_their_parent_aside_and_the_other_splits_go_on(
        oms: OMS, caplog: pytest.LogCaptureFixture) -> None:
    """A batch's children are written together; when the database refuses one of them (here a stray
    order already has the number a child would take), they are written order by order, the parent whose
    children are refused is set aside, and the other parents of the batch split as if nothing happened."""
    results = oms.intake.ingest("json", payload(*(order_json(ext, [("ICE-1", 1), ("TEA-1", 1)])
                                                  for ext in ("S-1", "S-2", "S-3"))))
    numbers = {r.external_id: r.number for r in results}
    with oms.db.session() as s:
        blocked = s.scalars(select(Order).where(Order.number == numbers["S-2"])).one()
        columns = {c.key: getattr(blocked, c.key) for c in Order.__table__.columns if c.key != "id"}
        s.execute(insert(Order).values({**columns, "number": f"{numbers['S-2']}-1", "external_id": "STRAY",
                                        "status": "cancelled", "stage": None}))
    with caplog.at_level(logging.INFO, logger="oms.pipeline"):
        oms.pipeline.run_until_idle()
    assert "writing them order by order" in caplog.text
    for ext in ("S-1", "S-3"):
        assert status(oms, numbers[ext]) == "split"
        assert status(oms, f"{numbers[ext]}-1") == status(oms, f"{numbers[ext]}-2") == "dispatched"
    with oms.db.read() as s:
        story = explain(s, numbers["S-2"])
    assert story["status"] == "on_hold" and story["hold_stage"] == "split-fault"
    assert "unique" in story["hold_reason"].lower()   # the number the stray order holds
    assert oms.pipeline.faults == 1


def test_a_document_that_fails_in_the_merge_stages_transaction_is_set_aside_as_the_documents_stages(
        oms: OMS) -> None:
    """Merging, courier matching and the document work in one transaction: an order the documents stage
    fails on there is parked as that stage's unit, and the rest of the batch is dispatched."""
    results = oms.intake.ingest("json", payload(order_json("A"), order_json("B"), order_json("C")))
    numbers = {r.external_id: r.number for r in results}
    documents = oms.pipeline.stage(StageName.DOCUMENTS)
    send = documents._send  # type: ignore[attr-defined]

    def send_or_trip(s: Session, orders: list[object], number: str) -> None:
        if number == numbers["B"]:
            documents.current = Unit(UnitKind.ORDER, orders[0].id)  # type: ignore[attr-defined]
            raise KeyError(f"a bug met order {number}")
        send(s, orders, number)

    documents._send = send_or_trip  # type: ignore[attr-defined]
    done = oms.pipeline.run_pass()
    assert "documents" not in done or done["documents"] == 0   # nothing was left for its own transaction
    oms.pipeline.run_until_idle()
    assert status(oms, numbers["A"]) == status(oms, numbers["C"]) == "dispatched"
    with oms.db.read() as s:
        story = explain(s, numbers["B"])
    assert story["status"] == "routed"
    [incident] = story["incidents"]
    assert incident["stage"] == "documents" and "a bug met order" in incident["error"]
    assert incident["action"].startswith("order parked")
    assert oms.pipeline.faults == 1


def test_e_invoices_go_in_batches_of_their_own_and_their_answers_in_the_same_pass(tmp_path: Path,
                                                                                   sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, plugin_settings=NO_REFUSALS, batch_size=5)
    try:
        # Five paid orders: five invoices queued for the tax platform, five messages for the customer and five
        # documents for the warehouse once routed; the outbox's batch of five is not crowded out by e-invoices.
        oms.intake.ingest("json", payload(*[order_json(f"EI-{i}", [("TEA-1", 1)]) for i in range(5)]))
        done = oms.pipeline.run_pass()
        assert done["einvoices"] == 5 and done["outbox"] == 5
        # The platform's answers came back while the e-invoices were sent: applied before the pass ended.
        assert done["inbox"] == 5
        with oms.db.read() as s:
            assert {i["submission"]["state"] for n in (o.number for o in s.scalars(select(Order)))
                    for i in explain(s, n)["invoices"]} == {"accepted"}
    finally:
        oms.close()

"""The pipeline: stages that each take a batch of ready work, one transaction per stage.

A pass runs every stage in order (timers, tasks, inbox, backorders, screen, split,
route, merge, carrier, documents, outbox, parents), each in a transaction of its own that
commits before the next stage starts, so each stage sees the previous one's work. The
short steps after routing are the exception: what merging moves on, courier matching and
the documents stage work in merging's transaction (stage.carry_on). :meth:`Pipeline.run_until_idle`
repeats passes until none finds work.

Why a transaction per stage rather than one per pass: a stage holds row locks
(the orders it claimed, the stock rows it moves) until it commits. In one
transaction per pass the stock rows locked by the timers would stay locked
through routing and delivery, and routing would lock its rows after them,
out of the global (warehouse, sku) order every other process keeps (see
stock/ledger.py): short lock scopes and one lock order are what keep workers
and intake from deadlocking each other. Each stage's work is complete in
itself (a claimed row is finished or left as it was), so a stage that commits
leaves nothing half done for the next one.

Faults are contained at three levels. A plugin that raises is handled where
it is called (the order held, the message or task retried, the callback
rejected). A stage whose transaction loses a race with another one (a
deadlock, a serialization failure, a lock wait) is run again after a short
pause. Anything else unexpected rolls the stage back, and the unit of work
the stage was on is set aside in a transaction of its own (an order held or
parked, a callback rejected, a task or message retried), with an incident
recorded; the rest of the pass goes on without it. The worker never dies of
one bad order.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..messaging.outbox import RETRY_LIMIT, Status, next_attempt
from ..orders import flow
from ..orders.incidents import record_incident
from ..orders.late_steps import timed_statuses
from ..orders.machine import Event, IllegalTransition, OrderMachine, State, check
from ..orders.waits import clear_waits
from ..storage.db import Database
from ..storage.models import Order, OutboxMessage, ScheduledTask
from ..storage.retry import MAX_ATTEMPTS, pause, run_retrying
from ..storage.retry import is_retryable as is_retryable  # where callers have always found it
from .inbox import reject
from .outbox import first_in_line
from .stage import Stage, StageName, Unit, UnitKind

log = logging.getLogger("oms.pipeline")
# What `oms worker` logs once it is set up and about to take work (scripts and the benchmark wait for it).
WORKER_READY = "worker ready"


class Pipeline:
    def __init__(self, *, db: Database, clock: Clock, machine: OrderMachine, stages: Sequence[Stage],
                 retry_seconds: int) -> None:
        self.db, self.clock, self.machine, self.retry_seconds = db, clock, machine, retry_seconds
        self.stages = tuple(stages)
        self.faults = 0    # stages rolled back by an unexpected failure, since start
        self.before_pass: list[Callable[[], None]] = []

    def stage(self, name: StageName | str) -> Stage:
        return next(st for st in self.stages if st.name == name)

    def run_pass(self, only: Sequence[str] | None = None) -> dict[str, int]:
        """One pass over the stages (or only the named ones); returns the units of work done per stage."""
        for hook in self.before_pass:
            hook()
        done: dict[str, int] = {}
        # Facts and statistics carry from stage to stage (an order screened, split and routed in one
        # pass is described once); a stage that rolls back starts a fresh cache (see _run_stage).
        cache = FactCache()
        for stage in self.stages:
            if only is not None and stage.name not in only:
                continue
            n, cache = self._run_stage(stage, cache)
            if n is None:
                done["set aside"] = done.get("set aside", 0) + 1
            else:
                # A stage may run twice in a pass (the inbox, again at its end): its work adds up.
                done[stage.name] = done.get(stage.name, 0) + n
        return done

    def _run_stage(self, stage: Stage, cache: FactCache) -> tuple[int | None, FactCache]:
        """Run one stage in its own transaction; (units done or None when one was set aside, the cache)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            stage.current = None
            try:
                with self.db.session() as s:
                    n = stage.run(s, cache)
                stage.current = None
                return n, cache
            except Exception as exc:
                # What the cache holds may come from the transaction just rolled back.
                cache = FactCache()
                unit, stage.current = stage.current, None
                if is_retryable(exc):
                    if attempt == MAX_ATTEMPTS:
                        raise  # a race lost this often is the database's trouble, not the unit's
                    log.info("stage %s lost a race with another transaction (%s, attempt %d); running it again",
                             stage.name, type(getattr(exc, "orig", None) or exc).__name__, attempt)
                    time.sleep(pause(attempt))
                    continue
                if unit is None:
                    raise
                self.faults += 1
                log.error("stage %s failed on %s %s; setting it aside", unit.stage or stage.name, unit.kind.value,
                          unit.id, exc_info=exc)
                self._set_aside(stage, unit, exc)
                return None, cache
        raise AssertionError("unreachable")

    def run_until_idle(self, *, max_passes: int = 10_000,
                       on_pass: Callable[[dict[str, int]], None] | None = None) -> dict[str, int]:
        """Run passes until a whole pass finds nothing to do. Returns work done per stage."""
        total: dict[str, int] = defaultdict(int)
        for _ in range(max_passes):
            done = self.run_pass()
            for k, v in done.items():
                total[k] += v
            if on_pass:
                on_pass(done)
            if not any(done.values()):
                break
        return dict(total)

    def next_due(self) -> datetime | None:
        """The earliest time at which a timer, task or retry becomes due."""
        with self.db.read() as s:
            times = [
                s.scalar(select(func.min(Order.due_at)).where(Order.status.in_(timed_statuses(self.machine.late)))),
                s.scalar(select(func.min(ScheduledTask.due_at))),
                # A message waiting behind an older one of its order is due when that one is, not before.
                s.scalar(select(func.min(OutboxMessage.available_at))
                         .where(OutboxMessage.status == Status.PENDING.value, first_in_line())),
            ]
        return min((t for t in times if t is not None), default=None)

    # -- setting a unit of work aside ------------------------------------------------
    def _set_aside(self, st: Stage, unit: Unit, error: BaseException) -> None:
        now = self.clock.now()
        stage = unit.stage or st.name
        # A stage working an order at a step of the flow: the order can wait in the review queue.
        step: flow.Step | None = unit.step or getattr(st, "step", None)
        fault = flow.row(step).fault if step is not None else None

        def set_aside() -> None:
            with self.db.session() as s:
                self._set_aside_in(s, stage, fault, unit, error, now)

        def park() -> None:
            with self.db.session() as s:
                self._park(s, stage, unit, error, now)

        what = f"setting {unit.kind.value} {unit.id} aside"
        try:
            run_retrying(set_aside, what=what)
        except Exception:
            log.exception("%s failed; parking it", what)
            run_retrying(park, what=f"parking {unit.kind.value} {unit.id}")

    def _set_aside_in(self, s: Session, stage: str, fault: flow.HoldStage | None, unit: Unit, error: BaseException,
                      now: datetime) -> None:
        if unit.kind is UnitKind.ORDER:
            order = s.get(Order, unit.id)
            if order is not None and fault is not None and _can_hold(order):
                record_incident(s, order_id=order.id, stage=stage, error=error, action="order held for review",
                                at=now)
                order.stage = None
                order.hold_reason, order.hold_stage = f"internal error: {error}"[:2000], fault.value
                self.machine.fire(s, order, Event.HOLD, actor="oms", cause=order.hold_reason)
                return
        self._park(s, stage, unit, error, now)

    def _park(self, s: Session, stage: str, unit: Unit, error: BaseException, now: datetime) -> None:
        """Take the unit out of every stage's reach without touching anything else."""
        if unit.kind is UnitKind.ORDER:
            s.execute(update(Order).where(Order.id == unit.id).values(stage=None, due_at=None),
                      execution_options={"synchronize_session": False})
            clear_waits(s, unit.id)   # a held order's waits would bring it back to the backorders stage
            action = "order parked: no stage picks it up until a person looks at it"
            record_incident(s, order_id=unit.id, stage=stage, error=error, action=action, at=now)
        elif unit.kind is UnitKind.CALLBACK:
            reject(s, unit.id, f"rejected: applying it failed: {type(error).__name__}: {error}")
            record_incident(s, order_id=None, stage=stage, error=error, action=f"callback {unit.id} rejected", at=now)
        elif unit.kind is UnitKind.TASK:
            retry = now + timedelta(seconds=self.retry_seconds)
            s.execute(update(ScheduledTask).where(ScheduledTask.id == unit.id)
                      .values(attempts=ScheduledTask.attempts + 1, due_at=retry, last_error=str(error)[:4000]),
                      execution_options={"synchronize_session": False})
            record_incident(s, order_id=None, stage=stage, error=error, action=f"task {unit.id} retried", at=now)
        else:
            msg = s.get(OutboxMessage, unit.id)
            if msg is not None:
                msg.attempts += 1
                msg.last_error = f"{type(error).__name__}: {error}"[:2000]
                msg.status = Status.DEAD.value if msg.attempts >= RETRY_LIMIT else Status.PENDING.value
                msg.available_at = next_attempt(now, self.retry_seconds, msg.attempts, msg.id)
                record_incident(s, order_id=msg.order_id, stage=stage, error=error,
                                action=f"message {unit.id} {msg.status}", at=now)


def _can_hold(order: Order) -> bool:
    try:
        check(order, Event.HOLD)
    except IllegalTransition:
        return False
    return State(order.status) in (State.PAID, State.PENDING_PAYMENT)


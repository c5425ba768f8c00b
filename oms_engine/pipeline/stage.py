"""What every pipeline stage is: a name, a batch size, and ``run(session, cache) -> units of work done``.

A stage claims up to ``batch_size`` ready rows (see storage/claims.py), does
its work for the whole batch in the pass's transaction, and notes in
``current`` the unit it is working on, so that an unexpected failure can be
pinned on that one order, callback, task or message (see runner.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..orders import flow
from ..orders.records import OrderRec
from ..storage.claims import claim
from ..storage.models import Order


class StageName(StrEnum):
    TIMERS = "timers"
    TASKS = "tasks"
    INBOX = "inbox"
    BACKORDERS = "backorders"
    SCREEN = "screen"
    SPLIT = "split"
    ROUTE = "route"
    MERGE = "merge"
    CARRIER = "carrier"
    DOCUMENTS = "documents"
    OUTBOX = "outbox"
    EINVOICES = "einvoices"    # the outbox's e-invoices for the tax platform, delivered apart
    CHANNELS = "channels"      # the outbox's reports to the shops (channels/reports.py), delivered apart
    PARENTS = "parents"


class UnitKind(StrEnum):
    ORDER = "order"
    CALLBACK = "callback"
    TASK = "task"
    MESSAGE = "message"


@dataclass(frozen=True)
class Unit:
    kind: UnitKind
    id: int
    # The stage (and its step of the flow) that was working on the unit, when it worked in an earlier stage's
    # transaction (carry_on): the unit is set aside as that stage's.
    stage: StageName | None = None
    step: flow.Step | None = None


class Stage(Protocol):
    """A stage that works a step of the order flow also has ``step`` (orders/flow.py): an order it fails on
    unexpectedly then waits in the review queue (the step's fault hold) instead of being parked."""

    name: StageName
    current: Unit | None

    def run(self, s: Session, cache: FactCache) -> int: ...


# Called by a decision stage with its transaction after claiming orders and before deciding them, so
# the rules in force are the latest ones committed before those orders (see decisions/versions.py).
RulesInForce = Callable[[Session], object]


def rules_as_loaded(_s: Session) -> None:
    """For a pipeline with no rules store: the rules installed are the rules in force."""


class Follower(Protocol):
    """A stage that can work the next step for orders an earlier stage has just moved to it, in that stage's
    transaction (see :func:`carry_on`)."""

    name: StageName
    step: flow.Step
    current: Unit | None

    def take(self, s: Session, ids: Sequence[int], cache: FactCache, records: Sequence[OrderRec] = ()) -> int: ...


def carry_on(stage: Stage, then: Follower | None, s: Session, cache: FactCache, ids: Sequence[int] = (),
             records: Sequence[OrderRec] = ()) -> None:
    """``then`` works its step for the orders ``stage`` moved to it (``ids`` not read yet, ``records`` read in
    this transaction), at once instead of in a transaction of its own later in the pass.

    Why: after routing, merging, courier matching and the document are short steps with no stock rows;
    one claim, one read of each order and one commit for the three costs a fraction of three. An order
    ``then`` fails on is pinned on it at its own step, so it waits in that step's review queue.
    """
    if then is None:
        return
    waiting = [o for o in records if o.stage == then.step.value]
    if not ids and not waiting:
        return
    try:
        then.take(s, ids, cache, waiting)
    except BaseException:
        unit = then.current
        stage.current = None if unit is None else Unit(unit.kind, unit.id, unit.stage or then.name,
                                                        unit.step or then.step)
        raise
    finally:
        then.current = None


def claim_step(s: Session, step: flow.Step, limit: int) -> list[int]:
    """The ids of up to ``limit`` orders waiting for ``step`` (orders/flow.py), oldest first, claimed."""
    return claim(s, select(Order.id).where(Order.status == flow.state_of(step).value, Order.stage == step.value)
                 .order_by(Order.id), limit)

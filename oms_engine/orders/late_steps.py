"""Late steps: how long an order may take over a step of fulfilment, and the alert when it overstays.

config.yaml's ``late_steps`` lists limits such as ``{after: dispatched, step: picking, hours: 24}``:
picking must start within 24 hours of the document being sent to the warehouse. A limit's *span* is
the states from ``after`` up to, not including, ``step`` along the fulfilment chain (:data:`CHAIN`).
Spans do not overlap and hold no state with a timer of its own, so in a span state ``orders.due_at``
(otherwise empty there) is the span's deadline:

- entering a span's ``after`` state sets it to now + the limit;
- moving to another state of the same span (accepted after dispatched, one more in_transit scan) keeps
  it: the clock counts from ``after``;
- any other move drops it (the step reached or passed, a cancel, a hold, an interception request),
  unless the state entered has a timer of its own (delivered) or is the ``after`` of another span. A
  span entered half-way from outside (packed again after a refused interception) carries no clock.

The timers stage claims orders in span states whose ``due_at`` passed, through the same (status,
due_at) index as the other timers (:func:`timed_statuses`), and raises the alert (:func:`raise_alert`):
a ``late_steps`` row per order and step, inserted so that a repeat does nothing (its primary key); only
a row actually inserted records the incident and queues the message to operations. Then ``due_at`` is
emptied: the order is alerted once, and the states it moves to inside the span keep it empty. When the
order reaches the step, or a state past it, the state machine marks the row resolved; it looks only
when the order can have been alerted (it leaves a span state, or a state a span state leads off the
chain to, with no clock), so the common transition pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..config import LateStepLimit, Operations
from ..errors import OmsError
from ..messaging.outbox import Kind, Topic
from ..storage.models import LateStep
from .incidents import record_incident
from .machine import TERMINAL, TIMEOUTS, TRANSITIONS
from .queries import iso
from .states import State

if TYPE_CHECKING:
    from ..config import Config
    from ..messaging.outbox import OutboxWriter

S = State

# The way of an order through fulfilment: what a late step's after and step are chosen from.
CHAIN: tuple[State, ...] = (S.ROUTED, S.DISPATCHED, S.ACCEPTED, S.PICKING, S.PACKED, S.SHIPPED, S.IN_TRANSIT,
                            S.OUT_FOR_DELIVERY, S.DELIVERED)
_AT = {st: i for i, st in enumerate(CHAIN)}
# How far along the chain an order in a state off it has certainly come (-1: nowhere yet).
_PAST = {S.REFUSED: _AT[S.SHIPPED], S.COMPLETED: len(CHAIN), S.CLOSED: len(CHAIN)}

STAGE = "late-step"   # the incidents' stage


def position(state: str) -> int:
    """How far along :data:`CHAIN` an order in ``state`` has come: the index of the last chain state it has
    certainly reached (-1 before routing, or off the chain where it may never reach it: held, cancelled...)."""
    st = State(state)
    return _AT.get(st, _PAST.get(st, -1))


def duration(minutes: float) -> str:
    """``90`` -> ``1h 30m``; ``1440`` -> ``24h``; ``45`` -> ``45m``."""
    whole = int(minutes)
    hours, rest = divmod(whole, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h" if not rest else f"{hours}h {rest}m"


class LateStepsInvalid(ValueError):
    """A ``late_steps`` entry that cannot work (config.yaml); the message names the entry."""


class LateStepOverdue(OmsError):
    """An order did not reach a step within its limit (recorded as the alert's incident)."""


@dataclass(frozen=True)
class Limit:
    after: State
    step: State
    minutes: int

    @property
    def span(self) -> tuple[State, ...]:
        """The states the clock runs in: from ``after`` up to, not including, ``step``."""
        return CHAIN[_AT[self.after]:_AT[self.step]]

    def text(self) -> str:
        return f"{self.step.value} within {duration(self.minutes)} of {self.after.value}"


def _state(name: str, where: str) -> State:
    try:
        state = State(name)
    except ValueError:
        state = None
    if state is None or state not in _AT:
        raise LateStepsInvalid(f"{where}: '{name}' is not a state of fulfilment ({', '.join(CHAIN)})")
    return state


class LateLimits:
    """The configured limits, and what they mean for an order's ``due_at`` (pure, apart from :meth:`on_transition`)."""

    def __init__(self, limits: Iterable[Limit], operations: Operations | None = None) -> None:
        self.limits = tuple(limits)
        self.operations = operations or Operations()
        # The limit whose span a state is in.
        self._in: dict[State, Limit] = {st: lim for lim in self.limits for st in lim.span}
        self.states: frozenset[State] = frozenset(self._in)
        # States an order may be alerted in and leave with no clock: the spans, and where a span state
        # leads off the chain and back (an interception request, a hold), never to a terminal state.
        self._watch: frozenset[State] = self.states | {
            to for (st, _), to in TRANSITIONS.items() if st in self.states and to not in _AT and to not in TERMINAL}
        # The steps an order has reached once it is in a state: its own and those before it on the chain.
        self._reached: dict[State, tuple[str, ...]] = {
            st: tuple(lim.step.value for lim in self.limits if _AT[lim.step] <= position(st)) for st in State}

    @classmethod
    def parse(cls, entries: Iterable[LateStepLimit | Mapping[str, Any]],
              operations: Operations | None = None) -> LateLimits:
        """The limits of config.yaml's ``late_steps``; raises :class:`LateStepsInvalid` naming the first
        entry that is not a fulfilment state, not in order, overlaps another or spans a state with a timer."""
        limits: list[Limit] = []
        owner: dict[State, tuple[int, Limit]] = {}
        for n, raw in enumerate(entries, start=1):
            entry = raw if isinstance(raw, LateStepLimit) else LateStepLimit(**raw)
            where = f"late_steps entry {n} (after {entry.after}, step {entry.step})"
            after, step = _state(entry.after, where), _state(entry.step, where)
            if _AT[after] >= _AT[step]:
                raise LateStepsInvalid(f"{where}: '{after}' must come before '{step}' on the way "
                                       f"{' -> '.join(CHAIN)}")
            limit = Limit(after, step, entry.limit_minutes)
            for st in limit.span:
                if st in TIMEOUTS:
                    # The state's own timer (auto-confirm...) already uses the order's due_at.
                    raise LateStepsInvalid(f"{where}: '{st}' has a timer of its own ({TIMEOUTS[st][0]}); "
                                           f"a late step cannot run through it")
                if st in owner:
                    m, other = owner[st]
                    raise LateStepsInvalid(f"{where}: overlaps entry {m} (after {other.after}, step {other.step}) "
                                           f"at '{st}'; an order runs against one limit at a time")
                owner[st] = (n, limit)
            limits.append(limit)
        return cls(limits, operations)

    @classmethod
    def from_config(cls, config: Config) -> LateLimits:
        return cls.parse(config.late_steps, config.operations)

    def __bool__(self) -> bool:
        return bool(self.limits)

    def limit_in(self, state: str) -> Limit | None:
        """The limit whose span ``state`` is in."""
        return self._in.get(State(state))

    # -- the order's clock --------------------------------------------------------------------------
    def carry(self, before: State, target: State, now: datetime, current: datetime | None) -> datetime | None:
        """The late-step deadline an order moving from ``before`` to ``target`` carries (``current``: its due_at
        before the move), for a target with no timer of its own."""
        limit = self._in.get(target)
        if limit is None:
            return None
        if self._in.get(before) is limit:
            return current        # within the span (or a repeated state): the clock counts from `after`
        if target is limit.after:
            return now + timedelta(minutes=limit.minutes)
        return None               # the span entered half-way from outside it

    def may_be_alerted(self, before: State, current: datetime | None) -> bool:
        """Whether an order leaving ``before`` with due_at ``current`` can have an alert open."""
        return current is None and before in self._watch

    def reached(self, target: State) -> tuple[str, ...]:
        """The steps an order in ``target`` has reached (an alert open for one of them is resolved)."""
        return self._reached[target]

    def on_transition(self, s: Session, order: Any, before: State, target: State, now: datetime,
                      own: datetime | None) -> datetime | None:
        """The order's due_at after the move: ``own`` (the target's own timer) or the late-step deadline. An
        alert the move settles is marked resolved."""
        current = order.due_at
        if current is None and before in self._watch:
            steps = self._reached[target]
            if steps:
                resolve(s, order.id, steps, now)
        return own if own is not None else self.carry(before, target, now, current)


def timed_statuses(late: LateLimits | None) -> list[str]:
    """The statuses in which an order's due_at is a timer: the states with one of their own (TIMEOUTS), then
    the late steps' spans."""
    own = [st.value for st in TIMEOUTS]
    return own + (sorted(st.value for st in late.states) if late else [])


# -- the alert ------------------------------------------------------------------------------------
def raise_alert(s: Session, late: LateLimits, outbox: OutboxWriter, order: Any, now: datetime) -> bool:
    """Alert an order whose late-step deadline passed (``order``: id, number, status, due_at, warehouse,
    carrier); False when it was alerted for that step before (nothing is done again) or its state has no
    limit any more. The caller empties its due_at."""
    limit = late.limit_in(order.status)
    if limit is None:
        return False
    insert_ = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    row = {"order_id": order.id, "step": limit.step.value, "after": limit.after.value,
           "limit_minutes": limit.minutes, "warehouse": order.warehouse, "carrier": order.carrier,
           "due_at": order.due_at, "raised_at": now}
    inserted = s.execute(insert_(LateStep).values(**row).on_conflict_do_nothing(index_elements=["order_id", "step"])
                         .returning(LateStep.order_id)).first()
    if inserted is None:
        return False
    late_by = duration((now - order.due_at).total_seconds() / 60)
    where = f"warehouse {order.warehouse or '-'}, carrier {order.carrier or '-'}"
    ops = late.operations
    record_incident(s, order_id=order.id, stage=STAGE, at=now,
                    error=LateStepOverdue(f"{limit.text()}: due {iso(order.due_at)}, {late_by} late, "
                                          f"still {order.status}; {where}"),
                    action=f"operations alerted ({ops.medium} to {ops.recipient})")
    context = {"order": {"number": order.number, "status": order.status, "warehouse": order.warehouse or "",
                         "carrier": order.carrier or ""},
               "late_step": {"step": limit.step.value, "after": limit.after.value, "limit": duration(limit.minutes),
                             "limit_minutes": limit.minutes, "due_at": iso(order.due_at), "late_by": late_by,
                             "raised_at": iso(now)}}
    # Not queued under the order: the customer's messages and this one do not wait for each other.
    outbox.enqueue(s, None, Kind.NOTIFICATION, ops.medium, Topic.notify(ops.template),
                   {"recipient": ops.recipient, "template": ops.template, "context": context})
    return True


def resolve(s: Session, order_id: int, steps: Iterable[str], now: datetime) -> None:
    """The order reached these steps: their open alerts are settled."""
    s.execute(update(LateStep).where(LateStep.order_id == order_id, LateStep.step.in_(list(steps)),
                                     LateStep.resolved_at.is_(None)).values(resolved_at=now),
              execution_options={"synchronize_session": False})


def of_order(s: Session, order_id: int) -> list[dict[str, Any]]:
    """The order's late steps, for ``oms order show``."""
    rows = s.scalars(select(LateStep).where(LateStep.order_id == order_id).order_by(LateStep.due_at))
    return [{"step": r.step, "after": r.after, "limit": duration(r.limit_minutes), "limit_minutes": r.limit_minutes,
             "warehouse": r.warehouse, "carrier": r.carrier, "due_at": iso(r.due_at), "raised_at": iso(r.raised_at),
             "resolved_at": iso(r.resolved_at)} for r in rows]

"""A state machine as data: the edges, the guards and the effects of each edge, for any subject with a status.

An order runs on one (orders/machine.py), an after-sales case on another; both
are a :class:`Table`:

- ``edges``: (state, event) -> the state it leads to; anything else is an
  :class:`IllegalTransition` that names the subject, its state, the event and
  the events its state allows;
- ``guards``: event -> a function of the subject giving the reason the event
  may not happen now (None: it may), checked before anything is touched;
- ``effects``: each :class:`Effect` says on which edges it runs (by event, by
  the state reached, or both, less some events) and what it does. The table
  works out, once, the effects of every edge in the order they are declared,
  so what an edge does reads off the table (:meth:`Table.effects_of`), and an
  effect that matches no edge is refused when the table is made.

The machine that fires events (an ``OrderMachine``) writes the subject's
history and deadlines itself; :meth:`Table.begin` checks the event and moves
the subject, :meth:`Table.run_effects` runs the edge's effects with that
machine, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from .errors import OmsError

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class IllegalTransition(OmsError):
    """An event that the subject's current state does not accept."""

    def __init__(self, order: str, state: str, event: str, why: str | None = None, *, noun: str = "order",
                 allowed: Iterable[str] = ()) -> None:
        if why is None:
            why = f"is not allowed in state '{state}' (allowed: {', '.join(sorted(allowed)) or 'none'})"
            message = f"{noun} {order}: event '{event}' {why}"
        else:
            message = f"{noun} {order}: event '{event}' refused in state '{state}': {why}"
        super().__init__(message)
        # ``order``: the subject's number (an order's, a case's), as callers have always read it.
        self.order, self.state, self.event, self.noun = order, state, event, noun


class GuardFailed(IllegalTransition):
    """The table allows the event, but the subject does not meet the edge's condition."""

    def __init__(self, order: str, state: str, event: str, why: str, *, noun: str = "order") -> None:
        super().__init__(order, state, event, why, noun=noun)


@dataclass(frozen=True)
class Transition(Generic[S, E]):
    subject: Any
    before: S
    event: E
    target: S
    actor: str
    cause: str
    at: datetime

    @property
    def order(self) -> Any:
        """The subject, under the name the order's effects know it by."""
        return self.subject


# What an effect does: (the machine firing the event, the transaction, the transition).
Run = Callable[[Any, Session, Transition[Any, Any]], None]


@dataclass(frozen=True)
class Effect:
    """What happens on the edges that match: ``on`` these events (None: any), reaching ``to`` these states (None:
    any), except on the events in ``unless``."""

    run: Run
    on: frozenset[StrEnum] | None = None
    to: frozenset[StrEnum] | None = None
    unless: frozenset[StrEnum] = frozenset()

    def matches(self, event: StrEnum, target: StrEnum) -> bool:
        return ((self.on is None or event in self.on) and (self.to is None or target in self.to)
                and event not in self.unless)


def effect(run: Run, *, on: Iterable[StrEnum] = (), to: Iterable[StrEnum] = (), unless: Iterable[StrEnum] = ()
           ) -> Effect:
    """``run`` on the edges taking one of ``on`` (none named: any event) into one of ``to`` (none named: any
    state), except those taking one of ``unless``."""
    return Effect(run, frozenset(on) or None, frozenset(to) or None, frozenset(unless))


class Table(Generic[S, E]):
    def __init__(self, noun: str, states: type[S], events: type[E], edges: Mapping[tuple[S, E], S],
                 guards: Mapping[E, Callable[[Any], str | None]] | None = None,
                 effects: Iterable[Effect] = ()) -> None:
        self.noun, self.states, self.events = noun, states, events
        self.edges: Mapping[tuple[S, E], S] = edges
        self.guards: Mapping[E, Callable[[Any], str | None]] = dict(guards or {})
        self.effects = tuple(effects)
        self._effects: dict[tuple[S, E], tuple[Effect, ...]] = {
            (src, ev): tuple(fx for fx in self.effects if fx.matches(ev, dst)) for (src, ev), dst in edges.items()}
        # Every event fired looks its edge up by the plain strings it is stored as: one dict lookup, where
        # converting both to their enums each time cost more than the rest of the check.
        self._by_text: dict[tuple[str, str], tuple[S, E, S]] = {
            (src.value, ev.value): (src, ev, dst) for (src, ev), dst in edges.items()}
        idle = [fx.run.__name__ for fx in self.effects if not any(fx in per for per in self._effects.values())]
        if idle:
            raise ValueError(f"{noun} effects that no edge runs: {', '.join(idle)}")
        unknown = [e for e in self.guards if e not in {ev for _, ev in edges}]
        if unknown:
            raise ValueError(f"{noun} guards for events no edge takes: {', '.join(map(str, unknown))}")

    def allowed(self, state: str) -> list[str]:
        """The events ``state`` accepts."""
        return sorted(e.value for (s, e) in self.edges if s == state)

    def next(self, number: str, state: str, event: str) -> S:
        """The state ``event`` leads to from ``state``; IllegalTransition when the table has no such edge."""
        return self._edge(number, state, event)[2]

    def _edge(self, number: str, state: str, event: str) -> tuple[S, E, S]:
        edge = self._by_text.get((str(state), str(event)))
        if edge is None:
            raise IllegalTransition(number, state, event, noun=self.noun, allowed=self.allowed(state))
        return edge

    def _checked(self, subject: Any, event: E | str) -> tuple[S, E, S]:
        edge = self._edge(subject.number, subject.status, str(event))
        guard = self.guards.get(edge[1])
        why = guard(subject) if guard is not None else None
        if why:
            raise GuardFailed(subject.number, subject.status, str(event), why, noun=self.noun)
        return edge

    def check(self, subject: Any, event: E | str) -> S:
        """The state ``event`` would lead ``subject`` to; raises and changes nothing when illegal."""
        return self._checked(subject, event)[2]

    def effects_of(self, state: S, event: E) -> tuple[Effect, ...]:
        """What the edge from ``state`` on ``event`` does, in order (nothing for an edge the table lacks)."""
        return self._effects.get((state, event), ())

    def begin(self, subject: Any, event: E, *, actor: str, cause: str, at: datetime) -> Transition[S, E]:
        """Check ``event`` and move ``subject`` to the state it leads to; the transition, for its effects."""
        before, ev, target = self._checked(subject, event)
        t = Transition(subject, before, ev, target, actor, cause, at)
        subject.status = target.value
        return t

    def run_effects(self, machine: Any, s: Session, t: Transition[S, E]) -> None:
        for fx in self.effects_of(t.before, t.event):
            fx.run(machine, s, t)

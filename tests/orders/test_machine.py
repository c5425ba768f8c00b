"""The order state machine table: illegal events, terminal states, reachability."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from oms_engine.orders.machine import TERMINAL, TRANSITIONS, Event, IllegalTransition, State, next_state
from oms_engine.orders.queries import get_order

OUTGOING: dict[State, set[Event]] = {s: set() for s in State}
for (_s, _e) in TRANSITIONS:
    OUTGOING[_s].add(_e)


def _reachable(start: State) -> set[State]:
    seen, todo = {start}, deque([start])
    while todo:
        s = todo.popleft()
        for (src, _e), dst in TRANSITIONS.items():
            if src is s and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


def test_table_uses_only_known_states_and_events() -> None:
    for (s, e), t in TRANSITIONS.items():
        assert isinstance(s, State) and isinstance(e, Event) and isinstance(t, State)


@given(st.sampled_from(list(State)), st.sampled_from(list(Event)))
def test_next_state_follows_table_or_raises_naming_order_state_event(state: State, event: Event) -> None:
    if (state, event) in TRANSITIONS:
        assert next_state("ORD-1", state.value, event.value) is TRANSITIONS[(state, event)]
        return
    with pytest.raises(IllegalTransition) as info:
        next_state("ORD-1", state.value, event.value)
    msg = str(info.value)
    assert "ORD-1" in msg and f"'{state.value}'" in msg and f"'{event.value}'" in msg
    assert (info.value.order, info.value.state, info.value.event) == ("ORD-1", state.value, event.value)
    # the message lists exactly the events the state does accept
    for e in Event:
        if e in OUTGOING[state]:
            assert e.value in msg.split("allowed:")[1]


@pytest.mark.parametrize(("state", "event"), [("no_such_state", "pay"), ("paid", "no_such_event")])
def test_unknown_names_are_illegal_transitions_not_crashes(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition, match=event):
        next_state("N-9", state, event)


def test_terminal_states_have_no_outgoing_edges() -> None:
    assert {State.CANCELLED, State.CLOSED} <= set(TERMINAL)
    for s in TERMINAL:
        assert not OUTGOING[s], f"terminal state {s} accepts {sorted(OUTGOING[s])}"


def test_every_state_is_reachable_from_pending_payment() -> None:
    assert _reachable(State.PENDING_PAYMENT) == set(State)


@pytest.mark.parametrize("state", sorted(set(State) - set(TERMINAL)))
def test_every_non_terminal_state_can_end(state: State) -> None:
    assert _reachable(state) & set(TERMINAL), f"{state} cannot reach a terminal state"


def test_cancel_only_before_picking() -> None:
    for s in (State.PICKING, State.PACKED, State.SHIPPED, State.IN_TRANSIT, State.DELIVERED, State.COMPLETED):
        assert (s, Event.CANCEL) not in TRANSITIONS
    for s in (State.PENDING_PAYMENT, State.PAID, State.ON_HOLD, State.ROUTED, State.DISPATCHED, State.ACCEPTED):
        assert TRANSITIONS[(s, Event.CANCEL)] is State.CANCELLED


class OrderMachine(RuleBasedStateMachine):
    """Random events against one order: legal ones move it, illegal ones change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.state = State.PENDING_PAYMENT
        self.visited = [self.state]

    @rule(event=st.sampled_from(list(Event)))
    def send(self, event: Event) -> None:
        before = self.state
        expected = TRANSITIONS.get((before, event))
        try:
            self.state = next_state("ORD-7", before.value, event.value)
        except IllegalTransition as exc:
            assert expected is None
            assert exc.state == before.value and exc.event == event.value
            assert self.state is before
            return
        assert expected is not None and self.state is expected
        self.visited.append(self.state)

    @invariant()
    def terminal_is_final(self) -> None:
        for i, s in enumerate(self.visited):
            if s in TERMINAL:
                assert i == len(self.visited) - 1, f"left terminal state {s}: {self.visited}"


OrderMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestOrderMachine = OrderMachine.TestCase


def test_illegal_event_on_a_stored_order_changes_nothing(sqlite_oms) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from oms_engine.storage.models import History
    from tests.support import order_json, payload

    [res] = sqlite_oms.intake.ingest("json", payload(order_json("ILL-1")))
    assert res.status == "paid"
    with pytest.raises(IllegalTransition) as info:
        sqlite_oms.commands.reject(res.number, actor="test")
    assert res.number in str(info.value) and "'paid'" in str(info.value) and "'reject'" in str(info.value)
    with sqlite_oms.db.session() as s:
        order = get_order(s, res.number)
        assert order.status == "paid"
        assert s.scalar(select(func.count()).select_from(History).where(History.order_id == order.id)) == 2

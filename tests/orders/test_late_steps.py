"""Late steps: the limits config.yaml may hold, and the deadline an order carries from state to state."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_engine.config import ConfigError, load_config
from oms_engine.orders.late_steps import CHAIN, LateLimits, duration, position, timed_statuses
from oms_engine.orders.machine import TERMINAL, TIMEOUTS, TRANSITIONS
from oms_engine.orders.states import State
from tests.support import ROOT

S = State
T = datetime(2026, 11, 2, 9, 0)
DEFAULTS = [{"after": "routed", "step": "dispatched", "hours": 2},
            {"after": "dispatched", "step": "picking", "hours": 24},
            {"after": "picking", "step": "shipped", "hours": 24},
            {"after": "shipped", "step": "delivered", "hours": 120}]
OPS = {"recipient": "ops@example.com"}


def limits(*entries: dict[str, Any]) -> LateLimits:
    return LateLimits.parse(entries)


def config_error(tmp_path: Path, **data: Any) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


# -- configuration ------------------------------------------------------------------------------------
def test_the_shipped_config_has_the_documented_limits() -> None:
    cfg = load_config(ROOT / "config.yaml")
    late = LateLimits.from_config(cfg)
    assert [(lim.after, lim.step, lim.minutes) for lim in late.limits] == [
        (S.ROUTED, S.DISPATCHED, 120), (S.DISPATCHED, S.PICKING, 1440), (S.PICKING, S.SHIPPED, 1440),
        (S.SHIPPED, S.DELIVERED, 7200)]
    assert cfg.operations.recipient and cfg.operations.medium == "email"
    assert late.states == {S.ROUTED, S.DISPATCHED, S.ACCEPTED, S.PICKING, S.PACKED, S.SHIPPED, S.IN_TRANSIT,
                           S.OUT_FOR_DELIVERY}


def test_minutes_or_hours_and_the_limit_in_whole_minutes(tmp_path: Path) -> None:
    late = limits({"after": "dispatched", "step": "accepted", "minutes": 90},
                  {"after": "accepted", "step": "picking", "hours": 0.5})
    assert [(lim.minutes, lim.text()) for lim in late.limits] == [
        (90, "accepted within 1h 30m of dispatched"), (30, "picking within 30m of accepted")]
    assert "give either hours or minutes" in config_error(
        tmp_path, late_steps=[{"after": "dispatched", "step": "picking", "hours": 1, "minutes": 60}], operations=OPS)
    assert "give either hours or minutes" in config_error(
        tmp_path, late_steps=[{"after": "dispatched", "step": "picking"}], operations=OPS)
    assert "greater than 0" in config_error(
        tmp_path, late_steps=[{"after": "dispatched", "step": "picking", "hours": -1}], operations=OPS)


@pytest.mark.parametrize(("entries", "message"), [
    ([{"after": "dispatched", "step": "pickng", "hours": 1}],
     "late_steps entry 1 (after dispatched, step pickng): 'pickng' is not a state of fulfilment (routed, dispatched"),
    ([{"after": "paid", "step": "dispatched", "hours": 1}],
     "late_steps entry 1 (after paid, step dispatched): 'paid' is not a state of fulfilment"),
    ([{"after": "dispatched", "step": "picking", "hours": 24}, {"after": "picking", "step": "packed", "hours": 1},
      {"after": "shipped", "step": "shipped", "hours": 1}],
     "late_steps entry 3 (after shipped, step shipped): 'shipped' must come before 'shipped' on the way routed -> "),
    ([{"after": "packed", "step": "accepted", "hours": 1}],
     "late_steps entry 1 (after packed, step accepted): 'packed' must come before 'accepted'"),
    ([{"after": "dispatched", "step": "packed", "hours": 24}, {"after": "picking", "step": "shipped", "hours": 2}],
     "late_steps entry 2 (after picking, step shipped): overlaps entry 1 (after dispatched, step packed) at 'picking'"),
])
def test_a_limit_that_cannot_work_is_refused_naming_its_entry(tmp_path: Path, entries: list[dict[str, Any]],
                                                              message: str) -> None:
    assert message in config_error(tmp_path, late_steps=entries, operations=OPS)


def test_alerts_need_someone_to_go_to(tmp_path: Path) -> None:
    assert "operations.recipient" in config_error(tmp_path, late_steps=DEFAULTS[:1])
    assert "operations.recipient" in config_error(tmp_path, late_steps=DEFAULTS[:1], operations={"recipient": " "})
    load_config(tmp_path / "config.yaml", late_steps=[])   # no limits: nobody needed


def test_no_span_may_hold_a_state_with_its_own_timer() -> None:
    # The chain ends at delivered, the one fulfilment state with a timer: a span never reaches it.
    timed = [s for s in CHAIN if s in TIMEOUTS]
    assert timed == [S.DELIVERED] and CHAIN[-1] is S.DELIVERED


def test_the_timers_claim_the_spans_states_after_their_own() -> None:
    assert timed_statuses(None) == [s.value for s in TIMEOUTS]
    late = limits(DEFAULTS[1])
    assert timed_statuses(late) == [s.value for s in TIMEOUTS] + ["accepted", "dispatched"]


# -- the clock ---------------------------------------------------------------------------------------
def test_entering_after_starts_the_clock_and_the_span_keeps_it() -> None:
    late = limits(*DEFAULTS)
    due = late.carry(S.ROUTED, S.DISPATCHED, T, T + timedelta(hours=2))
    assert due == T + timedelta(hours=24)
    later = T + timedelta(hours=5)
    assert late.carry(S.DISPATCHED, S.ACCEPTED, later, due) == due          # inside the span: from `after`
    assert late.carry(S.ACCEPTED, S.PICKING, later, due) == later + timedelta(hours=24)   # next span's after
    assert late.carry(S.PACKED, S.SHIPPED, later, due) == later + timedelta(hours=120)
    assert late.carry(S.IN_TRANSIT, S.IN_TRANSIT, later, due) == due        # one more scan
    assert late.carry(S.OUT_FOR_DELIVERY, S.DELIVERED, later, due) is None  # delivered has its own timer
    assert late.carry(S.PAID, S.ROUTED, T, None) == T + timedelta(hours=2)


def test_leaving_a_span_drops_the_clock_and_coming_back_half_way_brings_none() -> None:
    late = limits(DEFAULTS[1], DEFAULTS[2])
    due = T + timedelta(hours=24)
    assert late.carry(S.DISPATCHED, S.CANCELLED, T, due) is None
    assert late.carry(S.ACCEPTED, S.SHIPPED, T, due) is None                # no limit on shipped here
    assert late.carry(S.PACKED, S.INTERCEPT_REQUESTED, T, due) is None
    assert late.carry(S.INTERCEPT_REQUESTED, S.PACKED, T, None) is None     # the span entered half-way
    assert late.carry(S.PAID, S.ROUTED, T, None) is None                    # no limit on routed here


def test_who_may_have_been_alerted_and_what_a_state_settles() -> None:
    late = limits(*DEFAULTS)
    assert late.may_be_alerted(S.ACCEPTED, None)
    assert not late.may_be_alerted(S.ACCEPTED, T)
    assert late.may_be_alerted(S.INTERCEPT_REQUESTED, None)   # picking -> intercept_requested -> shipped
    assert late.may_be_alerted(S.ON_HOLD, None)               # routed -> on_hold
    assert late.may_be_alerted(S.PAID, None)                  # a shortage sends a dispatched order back to paid
    assert not late.may_be_alerted(S.PENDING_PAYMENT, None) and not late.may_be_alerted(S.CANCELLED, None)
    assert late.reached(S.ACCEPTED) == ("dispatched",)
    assert late.reached(S.PICKING) == ("dispatched", "picking")
    assert late.reached(S.REFUSED) == ("dispatched", "picking", "shipped")
    assert late.reached(S.COMPLETED) == ("dispatched", "picking", "shipped", "delivered")
    assert late.reached(S.CANCELLED) == () and late.reached(S.INTERCEPT_REQUESTED) == ()
    assert limits().reached(S.DELIVERED) == () and not limits().may_be_alerted(S.ACCEPTED, None)
    assert position("routed") == 0 and position("paid") == -1 and position("closed") == len(CHAIN)


def test_durations_read_as_hours_and_minutes() -> None:
    assert [duration(m) for m in (0, 45, 60, 90, 1440, 7200, 61.9)] == ["0m", "45m", "1h", "1h 30m", "24h", "120h",
                                                                       "1h 1m"]


_NEXT: dict[State, list[State]] = {}
for (_from, _), _to in TRANSITIONS.items():
    _NEXT.setdefault(_from, []).append(_to)


@st.composite
def walks(draw: st.DrawFn) -> list[tuple[State, int]]:
    """A way through the state table from routed, with the minutes spent before each move."""
    state, out = S.ROUTED, [(S.ROUTED, 0)]
    for _ in range(draw(st.integers(0, 12))):
        nexts = _NEXT.get(state)
        if not nexts or state in TERMINAL:
            break
        state = draw(st.sampled_from(nexts))
        out.append((state, draw(st.integers(0, 3000))))
    return out


@settings(max_examples=300, deadline=None)
@given(walk=walks(), pick=st.sampled_from([DEFAULTS, DEFAULTS[1:3], [DEFAULTS[0], DEFAULTS[3]],
                                           [{"after": "dispatched", "step": "packed", "minutes": 600}],
                                           [{"after": "in_transit", "step": "delivered", "hours": 48}]]))
def test_the_deadline_counts_from_entering_after_as_long_as_the_order_stays_in_the_span(
        walk: list[tuple[State, int]], pick: list[dict[str, Any]]) -> None:
    late = limits(*pick)
    now, due = T, late.carry(S.PAID, S.ROUTED, T, None)
    times = [T]
    for (before, _), (target, minutes) in itertools.pairwise(walk):
        now += timedelta(minutes=minutes)
        times.append(now)
        due = late.carry(before, target, now, due)
    # By definition: the latest stretch of the way inside one span, if it begins at that span's after.
    states = [s for s, _ in walk]
    limit = late.limit_in(states[-1])
    expected = None
    if limit is not None:
        i = len(states) - 1
        while i > 0 and states[i - 1] in limit.span:
            i -= 1
        if states[i] is limit.after:
            expected = times[i] + timedelta(minutes=limit.minutes)
    assert due == expected, (walk, pick)

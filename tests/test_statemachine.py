"""The generic state machine: a table of edges, guards and effects per edge, for any subject with a status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pytest

from oms_engine.orders.machine import ORDER, Event, State
from oms_engine.statemachine import GuardFailed, IllegalTransition, Table, effect


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    BROKEN = "broken"


class Push(StrEnum):
    GO = "go"
    STOP = "stop"
    KICK = "kick"


@dataclass
class Lamp:
    number: str
    status: str
    fuse: bool = True


def _log(m: list[str], s: Any, t: Any) -> None:
    m.append(f"{t.before}->{t.target} on {t.event} by {t.actor}")


def _lamp_table(*extra: Any) -> Table[Light, Push]:
    return Table("lamp", Light, Push, {(Light.RED, Push.GO): Light.GREEN, (Light.GREEN, Push.STOP): Light.RED,
                                       (Light.GREEN, Push.KICK): Light.BROKEN},
                 {Push.GO: lambda lamp: None if lamp.fuse else "the fuse is out"},
                 (effect(_log), effect(_log, to=[Light.BROKEN]), *extra))


def test_a_subject_moves_along_its_table_and_each_edge_runs_the_effects_that_match_it() -> None:
    table, lamp, log = _lamp_table(), Lamp("L-1", "red"), []
    t = table.begin(lamp, Push.GO, actor="t", cause="", at=datetime(2026, 1, 1))
    table.run_effects(log, None, t)   # type: ignore[arg-type]
    assert lamp.status == "green" and log == ["red->green on go by t"]
    t = table.begin(lamp, Push.KICK, actor="t", cause="", at=datetime(2026, 1, 1))
    table.run_effects(log, None, t)   # type: ignore[arg-type]
    assert log[1:] == ["green->broken on kick by t"] * 2       # the effect for any edge, then the broken one's


def test_an_illegal_event_or_a_failed_guard_names_the_subject_and_changes_nothing() -> None:
    table = _lamp_table()
    lamp = Lamp("L-2", "red", fuse=False)
    with pytest.raises(GuardFailed, match="lamp L-2: event 'go' refused in state 'red': the fuse is out"):
        table.begin(lamp, Push.GO, actor="t", cause="", at=datetime(2026, 1, 1))
    with pytest.raises(IllegalTransition, match=r"lamp L-2: event 'stop' is not allowed in state 'red' "
                                                r"\(allowed: go\)"):
        table.begin(lamp, Push.STOP, actor="t", cause="", at=datetime(2026, 1, 1))
    assert lamp.status == "red"


def test_a_table_refuses_an_effect_no_edge_runs_and_a_guard_no_edge_takes() -> None:
    with pytest.raises(ValueError, match="lamp effects that no edge runs: _log"):
        _lamp_table(effect(_log, on=[Push.STOP], to=[Light.BROKEN]))
    with pytest.raises(ValueError, match="guards for events no edge takes"):
        Table("lamp", Light, Push, {(Light.RED, Push.GO): Light.GREEN}, {Push.KICK: lambda _: None})


def test_the_order_table_reads_as_data_what_each_edge_does() -> None:
    def names(state: State, event: Event) -> list[str]:
        return [fx.run.__name__ for fx in ORDER.effects_of(state, event)]

    assert names(State.PAID, Event.CANCEL) == ["_withdraw", "_release_stock", "_refund", "_replacement_moved"]
    assert names(State.SPLIT, Event.CHILDREN_CANCELLED) == ["_withdraw", "_release_stock",   # no refund twice
                                                            "_replacement_moved"]
    # an exchange's replacement moves its case on; cash on delivery is collected
    assert names(State.OUT_FOR_DELIVERY, Event.DELIVER) == ["_replacement_moved", "_collect"]
    assert names(State.PACKED, Event.SHIP) == ["_ship"]
    assert names(State.PICKING, Event.SHORTAGE) == ["_withdraw", "_release_stock"]
    assert names(State.DISPATCHED, Event.MOVE) == ["_withdraw"]
    assert names(State.REFUSED, Event.RETURNED) == ["_take_back", "_refund"]
    assert names(State.PAID, Event.ROUTE) == []

"""The collector settings a long-running process takes once started (oms_engine/heap.py)."""

from __future__ import annotations

import gc

from oms_engine import heap


def test_a_settled_run_freezes_start_up_and_collects_young_objects_less_often_then_puts_both_back() -> None:
    before = gc.get_threshold()
    kept = [[n] for n in range(1000)]     # start-up's objects, as far as the collector can tell
    with heap.settled():
        assert gc.get_threshold()[0] == heap.YOUNG
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0

"""The status map: external statuses to OMS events, loaded safely, with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_engine.fulfilment.status_map import StatusMapError, load_status_map
from oms_engine.orders.machine import Event
from tests.support import ROOT


def test_the_project_map_loads() -> None:
    status_map = load_status_map(ROOT / "rules" / "maps" / "status.yaml")
    assert status_map.entries["wms"]["SHIPPED"].event is Event.SHIP
    assert status_map.entries["carrier"]["SIGNED"].customer_visible


@pytest.mark.parametrize("text, message", [
    ("wms:\n  A: &x {event: pick}\n  B: *x\n", r"status.yaml:2: .*anchor"),
    ("wms:\n  PICKING: {event: pick}\n  PICKING: {event: pack}\n", r"status.yaml:3: .*duplicate key 'PICKING'"),
    ("wms:\n  PICKING: {event: teleport}\n", r"status.yaml:2: status 'PICKING': unknown event 'teleport'"),
    ("wms:\n  PICKING: {event: pick, colour: red}\n", r"status.yaml:2: .*unknown key\(s\) colour"),
    ("warehouse:\n  PICKING: {event: pick}\n", r"status.yaml:1: 'warehouse' must be 'wms' or 'carrier'"),
    ("wms:\n  PICKING: !!python/object:os.system {event: pick}\n", r"status.yaml:2: .*tag"),
])
def test_a_broken_map_says_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "status.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StatusMapError, match=message):
        load_status_map(path)

"""An OMS whose simulated warehouse and carrier never refuse, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from tests.support import NO_REFUSALS, build_oms


@pytest.fixture
def quiet(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    o = build_oms(tmp_path, db_url, plugin_settings=NO_REFUSALS)
    yield o
    o.close()

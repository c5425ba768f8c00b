"""The reports over HTTP: timeliness per warehouse or carrier, and the late steps open, for any reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from oms_engine.fulfilment.timeliness import Period, timeliness
from oms_engine.web.app import create_app
from tests.fulfilment.test_timeliness import SILENT, six_orders
from tests.support import T0, build_oms
from tests.support.web import INTEGRATION, TOKENS, VIEWER, ApiServer


@pytest.fixture
def reports(tmp_path: Path, db_url: str, serve: Callable[..., ApiServer]) -> Iterator[tuple[OMS, ApiServer,
                                                                                             dict[str, str]]]:
    oms = build_oms(tmp_path, db_url, plugin_settings=SILENT)
    try:
        numbers = six_orders(oms)
        yield oms, serve(create_app(oms, tokens=TOKENS)), numbers
    finally:
        oms.close()


def test_timeliness_over_http(reports: tuple[OMS, ApiServer, dict[str, str]]) -> None:
    oms, api, _ = reports
    r = api.get("/api/reports/timeliness?since=2026-11-02&until=2026-11-02", token=VIEWER)
    assert r.status == 200, r.json
    with oms.db.read() as s:
        assert r.json == timeliness(s, Period(T0 - timedelta(hours=9), T0 + timedelta(hours=15)), "warehouse",
                                    oms.machine.late)
    assert r.json["all"]["shipped_to_delivered"]["late_share"] == 0.2
    by_carrier = api.get("/api/reports/timeliness?by=carrier&since=2026-11-02T09:00:00Z", token=VIEWER).json
    assert [g["key"] for g in by_carrier["groups"]] == ["sim_carrier"] and by_carrier["all"]["orders"] == 6
    # The default period is the 7 days before now: the payments were 6 days and some hours ago.
    assert api.get("/api/reports/timeliness", token=VIEWER).json["all"]["orders"] == 6


def test_the_late_steps_open_over_http(reports: tuple[OMS, ApiServer, dict[str, str]]) -> None:
    _, api, numbers = reports
    r = api.get("/api/reports/late-steps", token=VIEWER)
    assert r.status == 200
    assert r.json["total"] == 1 and [a["order"] for a in r.json["alerts"]] == [numbers["O5"]]
    assert api.get("/api/reports/late-steps?carrier=SF", token=VIEWER).json == {"total": 0, "alerts": []}
    assert api.get("/api/reports/late-steps?limit=0", token=VIEWER).status == 400


def test_report_parameters_and_roles(sqlite_oms: OMS, serve: Callable[..., ApiServer]) -> None:
    api = serve(create_app(sqlite_oms, tokens=TOKENS))
    r = api.get("/api/reports/timeliness?by=customer", token=VIEWER)
    assert r.status == 400 and r.json["error"] == "parameter 'by' must be one of warehouse, carrier, got 'customer'"
    r = api.get("/api/reports/timeliness?since=yesterday", token=VIEWER)
    assert r.status == 400 and r.json["error"].startswith("parameter 'since': 'yesterday' is neither a date")
    r = api.get("/api/reports/timeliness?since=2026-11-03&until=2026-11-02", token=VIEWER)
    assert r.status == 400 and "must be before parameter 'until'" in r.json["error"]
    assert api.get("/api/reports/timeliness").status == 401
    assert api.get("/api/reports/late-steps", token=INTEGRATION).status == 403
    empty = api.get("/api/reports/timeliness", token=VIEWER).json
    assert empty["groups"] == [] and empty["all"]["orders"] == 0

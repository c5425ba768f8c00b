"""The reports over HTTP: timeliness per warehouse or carrier, and the late steps open, for any reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oms_engine.engine import OMS
from oms_engine.fulfilment.timeliness import Period, timeliness
from oms_engine.orders.queries import get_order
from oms_engine.storage.models import LateStep
from oms_engine.web.app import create_app
from tests.fulfilment.test_timeliness import SILENT, six_orders
from tests.support import T0, build_oms
from tests.support.web import INTEGRATION, TOKENS, VIEWER, ApiServer, dispatched_order


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
    assert api.get("/api/reports/late-steps?carrier=SF", token=VIEWER).json == {"total": 0, "alerts": [], "next": None}
    assert api.get("/api/reports/late-steps?limit=0", token=VIEWER).status == 400


def test_report_parameters_and_roles(sqlite_oms: OMS, serve: Callable[..., ApiServer]) -> None:
    api = serve(create_app(sqlite_oms, tokens=TOKENS))
    r = api.get("/api/reports/timeliness?by=customer", token=VIEWER)
    assert r.status == 400 and r.json["detail"] == "parameter 'by': must be one of warehouse, carrier, got 'customer'"
    assert r.json["field"] == "by"
    r = api.get("/api/reports/timeliness?since=yesterday", token=VIEWER)
    assert r.status == 400 and r.json["detail"].startswith("parameter 'since': 'yesterday' is neither a date")
    r = api.get("/api/reports/timeliness?since=2026-11-03&until=2026-11-02", token=VIEWER)
    assert r.status == 400 and "must be before parameter 'until'" in r.json["detail"]
    assert api.get("/api/reports/timeliness").status == 401
    assert api.get("/api/reports/late-steps", token=INTEGRATION).status == 403
    empty = api.get("/api/reports/timeliness", token=VIEWER).json
    assert empty["groups"] == [] and empty["all"]["orders"] == 0


def _refused(reply: Any, field: str, words: str) -> None:
    assert reply.status == 400, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["field"] == field and words in reply.json["detail"], reply.json


def test_a_parameter_a_report_does_not_name_is_refused_naming_it(api: ApiServer) -> None:
    _refused(api.get("/api/reports/timeliness?group=carrier", token=VIEWER), "group",
             "unknown parameter 'group'; allowed: since, until, by")
    _refused(api.get("/api/reports/late-steps?warehouse=WH-SH&offset=50", token=VIEWER), "offset",
             "unknown parameter 'offset'; allowed: limit, cursor, warehouse, carrier")
    _refused(api.get("/api/reports/timeliness?until=tomorrow", token=VIEWER), "until",
             "parameter 'until': 'tomorrow' is neither a date")
    _refused(api.get("/api/reports/late-steps?cursor=bm9wZQ", token=VIEWER), "cursor", "not a cursor this list gave")
    _refused(api.get("/api/reports/timeliness?until=9999-12-31", token=VIEWER), "until", "past the end of the calendar")
    # since not before until: neither alone is to blame
    r = api.get("/api/reports/timeliness?since=2026-11-03&until=2026-11-02", token=VIEWER)
    assert r.status == 400 and "field" not in r.json


def test_the_late_steps_page_longest_overdue_first_without_repeats_or_gaps(sqlite_oms: OMS, api: ApiServer) -> None:
    numbers = [dispatched_order(sqlite_oms, f"LATE-{i}") for i in range(4)]
    now = sqlite_oms.clock.now()
    with sqlite_oms.db.session() as s:
        for i, number in enumerate(numbers):
            order = get_order(s, number)
            # Two steps of one order, and two orders, due at the same time: the cursor tells them apart.
            for step in ("picking", "shipped"):
                s.add(LateStep(order_id=order.id, step=step, after="dispatched", limit_minutes=60,
                               warehouse=order.warehouse, carrier=order.carrier,
                               due_at=now - timedelta(hours=i // 2), raised_at=now))
    everything = api.get("/api/reports/late-steps?limit=500", token=VIEWER).json
    assert everything["total"] == 8 and everything["next"] is None
    alerts = [(a["order"], a["step"]) for a in everything["alerts"]]
    assert {a[0] for a in alerts[:4]} == set(numbers[2:])     # an hour overdue, before those just due
    assert len(set(alerts)) == 8
    for limit in (1, 3):
        seen, query = [], f"/api/reports/late-steps?limit={limit}"
        while True:
            page = api.get(query, token=VIEWER).json
            assert page["total"] == 8 and 0 < len(page["alerts"]) <= limit
            seen += [(a["order"], a["step"]) for a in page["alerts"]]
            if page["next"] is None:
                break
            query = f"/api/reports/late-steps?limit={limit}&cursor={page['next']}"
        assert seen == alerts

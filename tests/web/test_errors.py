"""Every failure answers in JSON, and a server fault does not leak its insides."""

from __future__ import annotations

from oms_engine.engine import OMS
from tests.support.web import ADMIN, VIEWER, ApiServer


def _rename(oms: OMS, old: str, new: str) -> None:
    with oms.db.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")


def test_unknown_route_and_wrong_method_are_json(api: ApiServer) -> None:
    r = api.get("/api/nothing-here", token=VIEWER)
    assert r.status == 404
    assert r.headers["content-type"] == "application/json" and r.json["error"]
    r = api.request("DELETE", "/api/rules/reload", token=ADMIN)
    assert r.status == 405
    assert r.headers["content-type"] == "application/json" and r.json["error"]
    assert "POST" in r.headers["allow"]


def test_server_fault_is_500_json_without_a_traceback(sqlite_oms: OMS, api: ApiServer) -> None:
    _rename(sqlite_oms, "stock", "stock_moved_away")
    r = api.get("/api/stock", token=VIEWER)
    assert r.status == 500
    assert r.headers["content-type"] == "application/json"
    assert set(r.json) == {"error"}
    text = r.body.decode()
    for leak in ("Traceback", "stock_moved_away", "sqlite", "OperationalError", 'File "'):
        assert leak not in text


def test_health_reports_an_unreachable_database_as_503(sqlite_oms: OMS, api: ApiServer) -> None:
    assert api.get("/health").status == 200
    _rename(sqlite_oms, "orders", "orders_moved_away")
    r = api.get("/health")
    assert r.status == 503
    assert r.json["status"] == "unavailable"
    assert "orders_moved_away" not in r.body.decode()

"""Settlement statements over the API: every merchant's, or one merchant's with its documents; a period that
cannot be read is 400, a merchant with nothing in the period 404."""

from __future__ import annotations

from oms_engine.engine import OMS
from tests.support import order_json
from tests.support.pipeline import ingest_one
from tests.support.web import SUPPORT, VIEWER, ApiServer


def test_statements_are_read_over_the_api(sqlite_oms: OMS, api: ApiServer) -> None:
    ingest_one(sqlite_oms, order_json("ST-API", [("SOFA-1", 1)]))
    got = api.get("/api/settlement/M-03?since=2000-01-01&until=2100-01-01", token=VIEWER)
    assert got.status == 200 and got.json["statements"][0]["commission_by_rate"][0]["rule"] == "bulky-goods"
    assert api.get("/api/settlement/M-99?since=2000-01-01", token=VIEWER).status == 404
    assert api.get("/api/settlement?since=soon", token=SUPPORT).status == 400


def test_a_parameter_a_statement_does_not_name_is_refused_naming_it(api: ApiServer) -> None:
    for path in ("/api/settlement?since=2026-11-01&merchant=M-01", "/api/settlement/M-01?merchant=M-01"):
        r = api.get(path, token=VIEWER)
        assert r.status == 400 and r.headers["content-type"] == "application/problem+json"
        assert r.json["field"] == "merchant"
        assert "unknown parameter 'merchant'; allowed: since, until" in r.json["detail"]
    r = api.get("/api/settlement?since=soon", token=VIEWER)
    assert r.json["field"] == "since" and r.json["detail"].startswith("parameter 'since': 'soon' is neither a date")

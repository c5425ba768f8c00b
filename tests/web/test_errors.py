"""Every failure answers in JSON, and a server fault does not leak its insides."""

from __future__ import annotations

import base64

from oms_engine.engine import OMS
from oms_engine.storage.models import InboxMessage
from tests.support.web import (
    ADMIN,
    INTEGRATION,
    SUPPORT,
    VIEWER,
    ApiServer,
    count,
    held_order,
    history_rows,
    ingest_one,
    status_of,
)


def _rename(oms: OMS, old: str, new: str) -> None:
    with oms.db.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")


def test_unknown_route_and_wrong_method_are_json(api: ApiServer) -> None:
    r = api.get("/api/nothing-here", token=VIEWER)
    assert r.status == 404
    assert r.headers["content-type"] == "application/problem+json" and r.json["detail"]
    r = api.request("DELETE", "/api/rules/reload", token=ADMIN)
    assert r.status == 405
    assert r.headers["content-type"] == "application/problem+json" and r.json["detail"]
    assert "POST" in r.headers["allow"]


def test_server_fault_is_500_json_without_a_traceback(sqlite_oms: OMS, api: ApiServer) -> None:
    _rename(sqlite_oms, "stock", "stock_moved_away")
    r = api.get("/api/stock", token=VIEWER)
    assert r.status == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert set(r.json) == {"type", "title", "status", "detail"} and r.json["status"] == 500
    text = r.body.decode()
    for leak in ("Traceback", "stock_moved_away", "sqlite", "OperationalError", 'File "'):
        assert leak not in text


def test_health_reports_an_unreachable_database_as_503(sqlite_oms: OMS, api: ApiServer) -> None:
    assert api.get("/health").status == 200
    _rename(sqlite_oms, "orders", "orders_moved_away")
    r = api.get("/health")
    assert (r.status, r.headers["content-type"]) == (503, "application/problem+json")
    assert (r.json["type"], r.json["detail"]) == ("urn:oms:problem:unavailable", "the database is not reachable")


def test_health_is_public_in_the_document_and_refuses_an_unknown_parameter(api: ApiServer) -> None:
    assert api.get("/openapi.json").json["paths"]["/health"]["get"]["security"] == []
    r = api.get("/health?verbose=1")
    assert (r.status, r.headers["content-type"], r.json["field"]) == (400, "application/problem+json", "verbose")
    assert r.json["detail"].startswith("unknown parameter 'verbose'")
    assert "orders_moved_away" not in r.body.decode()


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_integer_parameters_outside_the_database_range_are_400_naming_the_parameter(api_any: ApiServer) -> None:
    for query, name in [(f"cursor={_cursor('9223372036854775808')}", "cursor"), (f"cursor={_cursor('-1')}", "cursor"),
                        ("cursor=" + "9" * 5000, "cursor"), (f"cursor={_cursor('1_000')}", "cursor"),
                        ("limit=1_000", "limit"), ("limit=%D9%A1%D9%A2", "limit"), ("limit=%201", "limit"),
                        ("limit=99999999999999999999", "limit"), ("limit=0", "limit")]:
        r = api_any.get(f"/api/orders?{query}", token=VIEWER)
        assert r.status == 400, (query, r.json)
        assert f"'{name}'" in r.json["detail"] and r.json["field"] == name, r.json
        assert len(r.body) < 1000
    for path in ("/api/stock?limit=9223372036854775808", "/api/holds?limit=-1"):
        r = api_any.get(path, token=VIEWER)
        assert r.status == 400 and "'limit'" in r.json["detail"], path
    r = api_any.get(f"/api/orders?cursor={_cursor('9223372036854775807')}", token=VIEWER)
    assert (r.status, r.json) == (200, {"orders": [], "next": None})


def test_amounts_in_exponent_notation_or_past_the_range_are_400(oms: OMS, api_any: ApiServer) -> None:
    number = ingest_one(oms, "AMT-1", paid=False)
    for amount in ("1e999999999", "1E2", "Infinity", "-Infinity", "sNaN", "１２８.００", "128.00\u0000",
                   "9" * 19 + ".00", "1" * 20, "0x80", "1_28.00", "+-1", ".5"):
        r = api_any.post(f"/api/orders/{number}/payments", token=SUPPORT,
                         json_body={"amount": amount, "transaction_id": "T-1"})
        assert r.status == 400, (amount, r.json)
        assert "'amount'" in r.json["detail"], (amount, r.json)
    assert status_of(oms, number) == "pending_payment"


def test_deeply_nested_or_unreadable_json_bodies_are_400(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    before = history_rows(oms, number)
    callbacks = count(oms, InboxMessage)    # the tax platform's answer about the order's invoice
    deep = b'{"note": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    cases = [
        (deep, "nested"),
        (b"[" * 65 + b"]" * 65, "nested"),
        (b'{"note": "a", "note": "b"}', "twice"),
        (b'{"note": ' + b"1" * 5000 + b"}", "number"),
        (b'{"note": 1e999}', "out of range"),
        (b'{"note": NaN}', "NaN"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
    ]
    for path, token in ((f"/api/orders/{number}/reject", SUPPORT), ("/api/callbacks/sim_wms", INTEGRATION)):
        for body, expected in cases:
            r = api_any.post(path, token=token, body=body, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path, body[:30], r.json)
            assert "request body" in r.json["detail"] and expected in r.json["detail"], (body[:30], r.json)
    assert status_of(oms, number) == "on_hold"
    assert history_rows(oms, number) == before
    assert count(oms, InboxMessage) == callbacks


def test_text_the_database_cannot_store_is_400_naming_where(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    before = history_rows(oms, number)
    callbacks = count(oms, InboxMessage)    # the tax platform's answer about the order's invoice
    for body, expected in [({"note": "a\u0000b"}, "field 'note' contains a NUL"),
                           ({"note": "\ud800"}, "field 'note' contains a lone surrogate")]:
        r = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body=body)
        assert r.status == 400 and expected in r.json["detail"], r.json
    r = api_any.post("/api/callbacks/sim_wms", token=INTEGRATION,
                     json_body={"order_number": number, "events": [{"status": "A\u0000"}]})
    assert r.status == 400 and "field 'events.0.status' contains a NUL" in r.json["detail"], r.json
    r = api_any.post("/api/callbacks/sim_wms", token=INTEGRATION, json_body={"order\u0000": 1})
    assert r.status == 400 and "NUL" in r.json["detail"], r.json
    for path in ("/api/orders?q=%00", "/api/orders?customer=C%00", "/api/stock?sku=%00", "/api/orders/X%00"):
        r = api_any.get(path, token=VIEWER)
        assert r.status == 400 and "NUL" in r.json["detail"], (path, r.json)
    assert status_of(oms, number) == "on_hold"
    assert history_rows(oms, number) == before
    assert count(oms, InboxMessage) == callbacks

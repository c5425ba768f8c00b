"""After-sales over the API: support staff open a case on a delivered order, decide it, and read it; a viewer
reads only; a bad body is 400, an unknown case 404, an action the case's state does not take 409."""

from __future__ import annotations

from oms_engine.engine import OMS
from oms_engine.plugin.testing import drive_until_state
from tests.support.web import SUPPORT, VIEWER, ApiServer, ingest_one


def test_a_case_is_opened_decided_and_read_over_the_api(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "AS-API")
    drive_until_state(sqlite_oms, number, "delivered")
    r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT,
                 json_body={"kind": "return_refund", "lines": [{"line_no": 1, "quantity": 1}], "reason": "too big"})
    assert r.status == 201, r.json
    case = r.json
    assert (case["number"], case["status"], case["lines"]) == (f"{number}-C01", "under_review",
                                                               [{"line_no": 1, "quantity": 1}])
    assert api.post(f"/api/orders/{number}/aftersales", token=VIEWER,
                    json_body={"kind": "return_refund"}).status == 403
    denied = api.post(f"/api/aftersales/{case['number']}/deny", token=SUPPORT, json_body={"note": "worn"})
    assert (denied.status, denied.json["status"], denied.json["decision"]) == (200, "denied", "worn")
    again = api.post(f"/api/aftersales/{case['number']}/deny", token=SUPPORT)
    assert again.status == 409 and "'deny' is not allowed in state 'denied'" in again.json["detail"]
    shown = api.get(f"/api/aftersales/{case['number']}", token=VIEWER)
    assert shown.status == 200 and [h["to"] for h in shown.json["history"]] == ["requested", "under_review",
                                                                              "denied"]
    assert api.get(f"/api/orders/{number}", token=VIEWER).json["aftersales"][0]["number"] == case["number"]


def test_bad_requests_about_cases_say_what_is_wrong(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "AS-BAD")
    cases = [
        ({"kind": "return_refund", "lines": [{"line_no": 1}]}, 400, "field 'lines.0.quantity' is required"),
        ({"kind": "return_refund", "lines": [{"line_no": 0, "quantity": 1}]}, 400,
         "field 'lines.0.line_no': a whole number from 1 to 100,000, got 0"),
        ({"kind": "return_refund", "lines": []}, 400, "field 'lines': must be a non-empty list"),
        ({"kind": "exchange", "lines": [{"line_no": 1, "quantity": 1, "exchange_to": ""}]}, 400, "exchange_to"),
        ({"kind": "exchange", "lines": [{"line_no": 1, "quantity": 1, "exchange_to": 7}]}, 400, "exchange_to"),
        ({"kind": "return_refund", "colour": "red"}, 400, "colour"),
        ({"lines": []}, 400, "'kind'"),
        ({"kind": "swap"}, 409, "unknown kind of case 'swap'"),
        ({"kind": "return_refund"}, 409, "it has not shipped; cancel it instead"),
    ]
    for body, status, words in cases:
        r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT, json_body=body)
        assert (r.status, words in r.json["detail"]) == (status, True), (body, r.json)
    assert api.get("/api/aftersales/NOPE-C01", token=VIEWER).status == 404
    assert api.post("/api/aftersales/NOPE-C01/approve", token=SUPPORT).status == 404
    assert api.post("/api/aftersales/NOPE-C01/explode", token=SUPPORT).status == 404


def test_an_exchange_is_opened_over_the_api_with_its_replacement(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "AS-EXC")
    drive_until_state(sqlite_oms, number, "delivered")
    r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT, json_body={
        "kind": "exchange", "lines": [{"line_no": 1, "quantity": 1, "exchange_to": "MUG-1"}]})
    assert r.status == 409 and "'MUG-1' is not priced as" in r.json["detail"]
    r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT,
                 json_body={"kind": "exchange", "lines": [{"line_no": 1, "quantity": 1}], "reason": "wrong size"})
    assert r.status == 201 and r.json["status"] == "under_review"
    approved = api.post(f"/api/aftersales/{r.json['number']}/approve", token=SUPPORT)
    assert approved.status == 200 and approved.json["status"] == "awaiting_return"
    replacement = api.get(f"/api/orders/{approved.json['replacement']}", token=VIEWER)
    assert replacement.status == 200 and replacement.json["status"] == "on_hold"
    listed = api.get(f"/api/aftersales?order={number}&status=awaiting_return", token=VIEWER)
    assert listed.status == 200 and [c["number"] for c in listed.json["cases"]] == [r.json["number"]]
    assert listed.json["next"] is None
    assert api.get("/api/aftersales?limit=0", token=VIEWER).status == 400
    received = api.post(f"/api/aftersales/{r.json['number']}/receive", token=SUPPORT, json_body={"note": "counter"})
    assert received.status == 200 and received.json["status"] == "exchange_shipping"


def test_cases_page_newest_first_with_a_cursor_and_filter_by_known_values(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "AS-PAGE")
    drive_until_state(sqlite_oms, number, "delivered")
    opened = []
    for _ in range(2):   # the order's line has two units: a case for each
        r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT,
                     json_body={"kind": "refund_only", "lines": [{"line_no": 1, "quantity": 1}]})
        assert r.status == 201, r.json
        opened.append(r.json["number"])
    first = api.get(f"/api/aftersales?order={number}&limit=1", token=VIEWER).json
    assert [c["number"] for c in first["cases"]] == [opened[1]] and first["next"]
    second = api.get(f"/api/aftersales?order={number}&limit=1&cursor={first['next']}", token=VIEWER).json
    assert ([c["number"] for c in second["cases"]], second["next"]) == ([opened[0]], None)
    assert api.get(f"/api/aftersales?order={number}&kind=exchange", token=VIEWER).json["cases"] == []
    for query, field in [("status=lost", "status"), ("kind=swap", "kind"), ("cursor=nonsense", "cursor")]:
        r = api.get(f"/api/aftersales?{query}", token=VIEWER)
        assert (r.status, r.json["field"]) == (400, field), r.json


def test_an_unknown_parameter_or_field_is_a_400_naming_it(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "AS-UNKNOWN")
    r = api.get("/api/aftersales?stauts=under_review", token=VIEWER)
    assert (r.status, r.headers["content-type"], r.json["field"]) == (400, "application/problem+json", "stauts")
    assert "unknown parameter 'stauts'" in r.json["detail"]
    r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT, json_body={"kind": "return_refund",
                                                                               "colour": "red"})
    assert (r.status, r.json["field"]) == (400, "colour") and "unknown field 'colour'" in r.json["detail"]
    r = api.post("/api/aftersales/NOPE-C01/approve", token=SUPPORT, json_body={"reason": "ok"})
    assert (r.status, r.json["field"]) == (400, "reason") and "allowed: note" in r.json["detail"]

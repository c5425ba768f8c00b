"""Master data, stock and the blacklist over the admin API: what an admin or support person does and sees."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from oms_engine.storage.models import MasterChange, Stock, StockMovement
from tests.support import CATALOGUE, ROOT, order_json, payload
from tests.support.web import ADMIN, SUPPORT, VIEWER, ApiServer, count, status_of

CARRIERS = (ROOT / "examples" / "data" / "carriers.json").read_bytes()
SUPPLIER = {"code": "SUP-1", "name": "Hangzhou Tea Co.", "contact": {"email": "orders@tea.example"}}
LAMP = {"sku": "LAMP-1", "name": "Desk lamp", "currency": "CNY", "price": "12.50", "merchant": "M-01",
        "supplier": "SUP-1", "weight_g": 800}


def _ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.body
    return reply.json


def _all_pages(api: ApiServer, path: str, *, cursor: str, items: str, param: str) -> list[dict[str, Any]]:
    """Every item of a paged listing, following its cursor."""
    seen: list[dict[str, Any]] = []
    query = path
    for _ in range(50):
        page = _ok(api.get(query, token=VIEWER))
        seen += page[items]
        if page.get(cursor) is None:
            return seen
        query = f"{path}&{param}={page[cursor]}"
    raise AssertionError("the pages never end")


def _ledger(oms: OMS) -> int:
    return count(oms, StockMovement)


# -- master data: reading -----------------------------------------------------------------------
def test_records_are_listed_in_key_order_a_page_at_a_time_filtered_by_status_and_prefix(api: ApiServer) -> None:
    first = _ok(api.get("/api/products?limit=3", token=VIEWER))
    assert [p["sku"] for p in first["items"]] == sorted(CATALOGUE)[:3]
    rest = _ok(api.get(f"/api/products?limit=100&cursor={first['next']}", token=VIEWER))
    assert [p["sku"] for p in rest["items"]] == sorted(CATALOGUE)[3:] and rest["next"] is None
    everything = _all_pages(api, "/api/products?limit=2", cursor="next", items="items", param="cursor")
    assert [p["sku"] for p in everything] == sorted(CATALOGUE)
    # money is answered as it is given: a decimal string in the product's currency
    assert {p["sku"]: p["price"] for p in everything}["TEA-1"] == "59.00"

    assert [p["sku"] for p in _ok(api.get("/api/products?prefix=T", token=VIEWER))["items"]] == ["TEA-1", "TV-1"]
    _ok(api.post("/api/products/PEN-1/deactivate", token=ADMIN))
    assert "PEN-1" not in [p["sku"] for p in _ok(api.get("/api/products", token=VIEWER))["items"]]
    inactive = _ok(api.get("/api/products?status=inactive", token=VIEWER))
    assert [(p["sku"], p["active"]) for p in inactive["items"]] == [("PEN-1", False)]
    assert inactive["next"] is None
    assert len(_ok(api.get("/api/products?status=all", token=VIEWER))["items"]) == len(CATALOGUE)

    for query, name in [("status=gone", "status"), ("limit=0", "limit"), ("limit=1001", "limit"),
                        ("prefix=" + "T" * 201, "prefix"), ("cursor=nonsense", "cursor"), ("after=TEA-1", "after")]:
        r = api.get(f"/api/products?{query}", token=VIEWER)
        assert (r.status, r.json["field"]) == (400, name), (query, r.json)
        assert f"'{name}'" in r.json["detail"]
    assert "must be one of active, inactive, all, got 'gone'" in api.get("/api/products?status=gone",
                                                                          token=VIEWER).json["detail"]


def test_a_two_part_key_pages_by_both_parts_and_names_one_record(api: ApiServer) -> None:
    _ok(api.post("/api/carriers", token=ADMIN, body=CARRIERS, headers={"Content-Type": "application/json"}))
    services = _all_pages(api, "/api/services?limit=1", cursor="next", items="items", param="cursor")
    # a carrier's second service is not skipped at a page boundary
    assert [(s["carrier"], s["code"]) for s in services] == [("DEPPON", "HEAVY"), ("SF", "COLD"),
                                                            ("SF", "STANDARD"), ("ZTO", "ECONOMY")]
    cold = _ok(api.get("/api/services/SF/COLD", token=VIEWER))
    assert (cold["name"], cold["attributes"]["cold_chain"]) == ("SF Cold Chain", True)
    assert [h["action"] for h in cold["history"]] == ["create"]
    assert api.get("/api/services/SF/NOPE", token=VIEWER).status == 404
    # a products' cursor (one key part) is no services' cursor (two)
    products = _ok(api.get("/api/products?limit=1", token=VIEWER))["next"]
    r = api.get(f"/api/services?cursor={products}", token=VIEWER)
    assert (r.status, r.json["field"]) == (400, "cursor")


def test_a_record_shows_its_history_and_a_missing_one_is_404(api: ApiServer) -> None:
    _ok(api.post("/api/suppliers", token=ADMIN, json_body=SUPPLIER))
    _ok(api.post("/api/products", token=ADMIN, json_body=LAMP))
    _ok(api.request("PATCH", "/api/products/LAMP-1", token=ADMIN, json_body={"price": "14.00"}))
    lamp = _ok(api.get("/api/products/LAMP-1", token=VIEWER))
    assert (lamp["price"], lamp["version"], lamp["supplier"]) == ("14.00", 2, "SUP-1")
    assert [(h["action"], h["version"]) for h in lamp["history"]] == [("update", 2), ("create", 1)]
    assert lamp["history"][0]["changes"] == {"price": ["12.50", "14.00"]}
    assert all(h["actor"].startswith("api:admin:") for h in lamp["history"])
    r = api.get("/api/products/NOPE-1", token=VIEWER)
    assert (r.status, r.json["detail"]) == (404, "no product 'NOPE-1'")


# -- master data: changing ----------------------------------------------------------------------
def test_posting_records_creates_them_and_posting_them_again_changes_nothing(oms: OMS, api_any: ApiServer) -> None:
    api = api_any
    assert _ok(api.post("/api/suppliers", token=ADMIN, json_body=SUPPLIER))["created"] == ["SUP-1"]
    second = {**LAMP, "sku": "LAMP-2", "name": "Floor lamp", "price": "99.90"}
    report = _ok(api.post("/api/products", token=ADMIN, json_body=[LAMP, second]))
    assert (report["created"], report["applied"], report["errors"]) == (["LAMP-1", "LAMP-2"], True, [])
    history = count(oms, MasterChange)

    again = _ok(api.post("/api/products", token=ADMIN, json_body=[LAMP, second]))
    assert (again["created"], again["updated"], again["unchanged"]) == ([], [], 2)
    assert count(oms, MasterChange) == history
    floor = _ok(api.get("/api/products/LAMP-2", token=VIEWER))
    assert (floor["name"], floor["price"], floor["version"]) == ("Floor lamp", "99.90", 1)
    [created] = floor["history"]
    # who (the token's actor, never the token) and where in the body
    assert created["actor"].startswith("api:admin:") and ADMIN not in created["actor"]
    assert created["source"] == "request:item 2"


def test_a_bad_record_is_422_naming_where_and_field_and_nothing_is_written(oms: OMS, api_any: ApiServer) -> None:
    api = api_any
    body = [LAMP | {"supplier": None},
            LAMP | {"sku": "LAMP-2", "supplier": None, "price": "-1.00"},
            LAMP | {"sku": "LAMP-3", "supplier": "NOBODY"},
            LAMP | {"sku": "LAMP-4", "supplier": None, "colour": "red"},
            "LAMP-5"]
    history = count(oms, MasterChange)
    r = api.post("/api/products", token=ADMIN, json_body=body)
    assert r.status == 422
    assert "nothing imported" in r.json["detail"]
    assert r.json["problems"] == [
        {"where": "request:item 2", "field": "price", "message": "'-1.00' is negative; amounts are 0 or more"},
        {"where": "request:item 4", "field": "colour", "message": "Extra inputs are not permitted"},
        {"where": "request:item 5", "field": "", "message": "an object is needed, got a string"},
        {"where": "request:item 3", "field": "supplier", "message": "no supplier 'NOBODY' (import suppliers first)"},
    ]
    assert api.get("/api/products/LAMP-1", token=VIEWER).status == 404
    assert count(oms, MasterChange) == history

    skipped = _ok(api.post("/api/products?skip_bad=true", token=ADMIN, json_body=body))
    assert (skipped["created"], len(skipped["errors"])) == (["LAMP-1"], 4)
    assert api.get("/api/products/LAMP-1", token=VIEWER).status == 200


def test_a_body_that_is_not_records_is_400(api: ApiServer) -> None:
    for body in (b'"LAMP-1"', b"42", b"null", b"{not json", b""):
        r = api.post("/api/products", token=ADMIN, body=body, headers={"Content-Type": "application/json"})
        assert r.status == 400, body
        assert "detail" in r.json
    r = api.request("PATCH", "/api/products/TEA-1", token=ADMIN, json_body=[{"price": "1.00"}])
    assert r.status == 400 and "object" in r.json["detail"]
    r = api.post("/api/products?skip_bad=perhaps", token=ADMIN, json_body=LAMP)
    assert r.status == 400 and "skip_bad" in r.json["detail"]
    r = api.post("/api/products/TEA-1/deactivate", token=ADMIN, json_body={"reason": "old"})
    assert r.status == 400 and "reason" in r.json["detail"]


def test_patch_changes_only_the_fields_given_to_the_record_the_url_names(sqlite_oms: OMS, api: ApiServer) -> None:
    r = _ok(api.request("PATCH", "/api/products/TEA-1", token=ADMIN, json_body={"price": "61.00", "sku": "OTHER-1"}))
    assert (r["updated"], r["created"]) == (["TEA-1"], [])
    tea = _ok(api.get("/api/products/TEA-1", token=VIEWER))
    assert (tea["price"], tea["name"], tea["attributes"]["category"]) == ("61.00", "Tea-1", "grocery")
    assert api.get("/api/products/OTHER-1", token=VIEWER).status == 404

    # what a read answers can be sent back as it is: nothing changes
    same = api.request("PATCH", "/api/products/TEA-1", token=ADMIN, json_body={"price": tea["price"]})
    assert _ok(same)["unchanged"] == 1

    history = count(sqlite_oms, MasterChange)
    r = api.request("PATCH", "/api/products/NEW-1", token=ADMIN, json_body=LAMP | {"supplier": None})
    assert (r.status, r.json["detail"]) == (404, "no product 'NEW-1'")
    r = api.request("PATCH", "/api/products/TEA-1", token=ADMIN, json_body={"weight_g": "heavy"})
    assert r.status == 422 and r.json["problems"][0]["field"] == "weight_g"
    assert count(sqlite_oms, MasterChange) == history
    assert _ok(api.get("/api/products/TEA-1", token=VIEWER))["version"] == 2


def test_deactivate_and_activate_are_recorded_and_a_channel_sku_may_hold_slashes(api: ApiServer) -> None:
    r = _ok(api.post("/api/warehouses/WH-GZ/deactivate", token=ADMIN))
    assert r["deactivated"] == ["WH-GZ"]
    assert _ok(api.post("/api/warehouses/WH-GZ/deactivate", token=ADMIN))["unchanged"] == 1
    listed = [w["code"] for w in _ok(api.get("/api/warehouses", token=VIEWER))["items"]]
    assert listed == ["WH-BJ", "WH-SH"]
    assert _ok(api.post("/api/warehouses/WH-GZ/activate", token=ADMIN))["updated"] == ["WH-GZ"]
    gz = _ok(api.get("/api/warehouses/WH-GZ", token=VIEWER))
    assert gz["active"] is True
    assert [h["action"] for h in gz["history"][:2]] == ["reactivate", "deactivate"]   # newest first
    assert all(h["actor"].startswith("api:admin:") for h in gz["history"][:2])
    assert api.post("/api/warehouses/WH-XX/deactivate", token=ADMIN).status == 404

    mapping = {"channel": "json", "channel_sku": "TEE/RED/XL", "sku": "TEA-1"}
    assert _ok(api.post("/api/skus", token=ADMIN, json_body=mapping))["created"] == ["json/TEE/RED/XL"]
    assert _ok(api.get("/api/skus/json/TEE/RED/XL", token=VIEWER))["sku"] == "TEA-1"
    assert _ok(api.post("/api/skus/json/TEE/RED/XL/deactivate", token=ADMIN))["deactivated"] == ["json/TEE/RED/XL"]
    assert _ok(api.get("/api/skus/json/TEE/RED/XL", token=VIEWER))["active"] is False


def test_a_key_of_any_text_pages_through_its_cursor(api_any: ApiServer) -> None:
    api = api_any
    skus = ["A|B", "TEE/RED/XL", "ZZ \u00e9t\u00e9"]
    _ok(api.post("/api/skus", token=ADMIN, json_body=[{"channel": "json", "channel_sku": k, "sku": "TEA-1"}
                                                      for k in skus]))
    paged = _all_pages(api, "/api/skus?status=all&limit=1", cursor="next", items="items", param="cursor")
    assert [m["channel_sku"] for m in paged if m["channel_sku"] in skus] == skus


def test_an_unknown_parameter_or_field_is_a_400_naming_it(api: ApiServer) -> None:
    for method, path, body, field in [
            ("GET", "/api/products?stauts=all", None, "stauts"),
            ("POST", "/api/products?skip-bad=true", LAMP, "skip-bad"),
            ("GET", "/api/blacklist?after=C-A", None, "after"),
            ("POST", "/api/products/TEA-1/deactivate", {"reason": "old"}, "reason"),
            ("POST", "/api/blacklist", {"customer": "C-OLD", "reason": "x", "note": "y"}, "note"),
            ("POST", "/api/blacklist/C-BAD/remove", {"reason": "x", "customer": "C-BAD"}, "customer")]:
        r = api.request(method, path, token=ADMIN, json_body=body)
        assert (r.status, r.headers["content-type"], r.json["field"]) == (400, "application/problem+json", field), \
            (path, r.json)
        assert f"unknown {'parameter' if body is None or '?' in path else 'field'} '{field}'" in r.json["detail"]
    # A record's own fields are the import's to check: every problem of every record, as a file's (422).
    r = api.request("PATCH", "/api/products/TEA-1", token=ADMIN, json_body={"colour": "red"})
    assert (r.status, r.json["problems"][0]["field"]) == (422, "colour")


def test_changes_need_a_token_and_the_right_role(sqlite_oms: OMS, api: ApiServer) -> None:
    history, ledger = count(sqlite_oms, MasterChange), _ledger(sqlite_oms)
    receipt = {"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1, "document": "PO-1"}
    admin_only = [("POST", "/api/products", LAMP), ("PATCH", "/api/products/TEA-1", {"price": "1.00"}),
                  ("POST", "/api/products/TEA-1/deactivate", None), ("POST", "/api/services/SF/COLD/activate", None),
                  ("POST", "/api/stock/openings", [{"warehouse": "WH-SH", "sku": "PEN-1", "quantity": 1}])]
    support = [("POST", "/api/stock/movements", receipt),
               ("POST", "/api/blacklist", {"customer": "C-OLD", "reason": "test"}),
               ("POST", "/api/blacklist/C-BAD/remove", {"reason": "test"})]
    for method, path, body in admin_only + support:
        assert api.request(method, path, json_body=body).status == 401, path
        r = api.request(method, path, token=VIEWER, json_body=body)
        assert r.status == 403 and "viewer" in r.json["detail"], path
    for method, path, body in admin_only:
        assert api.request(method, path, token=SUPPORT, json_body=body).status == 403, path
    for path in ("/api/products", "/api/products/TEA-1", "/api/stock/ledger", "/api/stock/verify", "/api/blacklist"):
        assert api.get(path).status == 401, path
    assert (count(sqlite_oms, MasterChange), _ledger(sqlite_oms)) == (history, ledger)


# -- stock ------------------------------------------------------------------------------------
def test_opening_balances_are_posted_once_and_a_bad_row_posts_nothing(sqlite_oms: OMS, api: ApiServer) -> None:
    _ok(api.post("/api/products", token=ADMIN, json_body=LAMP | {"supplier": None}))
    rows = [{"warehouse": "WH-SH", "sku": "LAMP-1", "quantity": 10, "unit_cost": "5.00"},
            {"warehouse": "WH-BJ", "sku": "LAMP-1", "quantity": 4}]
    ledger = _ledger(sqlite_oms)
    bad = [*rows, {"warehouse": "WH-XX", "sku": "LAMP-1", "quantity": 1}]
    r = api.post("/api/stock/openings", token=ADMIN, json_body=bad)
    assert r.status == 422
    assert r.json["problems"] == [{"where": "request:item 3", "field": "warehouse",
                                   "message": "no warehouse 'WH-XX' (import warehouses first)"}]
    assert _ledger(sqlite_oms) == ledger

    assert _ok(api.post("/api/stock/openings", token=ADMIN, json_body=rows))["created"] == ["WH-SH/LAMP-1",
                                                                                          "WH-BJ/LAMP-1"]
    again = _ok(api.post("/api/stock/openings", token=ADMIN, json_body=rows))
    assert (again["created"], again["unchanged"]) == ([], 2)
    stock = _ok(api.get("/api/stock?sku=LAMP-1", token=VIEWER))["stock"]
    assert [(s["warehouse"], s["on_hand"], s["value"]) for s in stock] == [("WH-BJ", 4, 0), ("WH-SH", 10, 5000)]
    r = api.post("/api/stock/openings", token=ADMIN, json_body=[rows[0] | {"quantity": 11}])
    assert r.status == 422 and "adjustment or a stocktake" in r.json["problems"][0]["message"]


def _stock_of(api: ApiServer, sku: str) -> dict[str, tuple[int, int, int]]:
    rows = _ok(api.get(f"/api/stock?sku={sku}", token=VIEWER))["stock"]
    return {r["warehouse"]: (r["on_hand"], r["reserved"], r["value"]) for r in rows}


def test_each_movement_kind_is_posted_with_who_and_why(oms: OMS, api_any: ApiServer) -> None:
    api = api_any
    moves = [
        {"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "MUG-1", "quantity": 10, "document": "PO-7",
         "unit_cost": "20.00"},
        {"kind": "customer_return", "warehouse": "WH-SH", "sku": "MUG-1", "quantity": 1, "document": "RMA-3"},
        {"kind": "return_to_vendor", "warehouse": "WH-SH", "sku": "MUG-1", "quantity": 2, "document": "RTV-1"},
        {"kind": "adjustment", "warehouse": "WH-SH", "sku": "MUG-1", "quantity": -3, "document": "ADJ-1",
         "note": "broken in the aisle"},
        {"kind": "transfer", "sku": "MUG-1", "quantity": 4, "from": "WH-SH", "to": "WH-GZ", "document": "TO-1"},
        {"kind": "stocktake", "warehouse": "WH-BJ", "sku": "MUG-1", "counted": 7, "document": "ST-1",
         "note": "cycle count"},
    ]
    answers = [_ok(api.post("/api/stock/movements", token=SUPPORT, json_body=m)) for m in moves]
    assert [(a["kind"], a["warehouse"], a["quantity"]) for a in answers] == [
        ("purchase_receipt", "WH-SH", 10), ("customer_return", "WH-SH", 1), ("return_to_vendor", "WH-SH", 2),
        ("adjustment", "WH-SH", -3), ("transfer", "WH-GZ", 4), ("stocktake", "WH-BJ", 2)]
    assert answers[0]["value"] == 10 * 2000
    assert answers[4]["from"] == "WH-SH"
    # WH-SH had 20 (seeded without a cost): +10 +1 -2 -3 -4; WH-BJ had 5, counted 7; WH-GZ had none
    assert {w: h for w, (h, _, _) in _stock_of(api, "MUG-1").items()} == {"WH-SH": 22, "WH-BJ": 7, "WH-GZ": 4}

    rows = _ok(api.get("/api/stock/ledger?sku=MUG-1&limit=7", token=VIEWER))["movements"]
    assert [(r["kind"], r["warehouse"], r["on_hand_delta"], r["document"]) for r in rows] == [
        ("stocktake", "WH-BJ", 2, "ST-1"), ("transfer", "WH-GZ", 4, "TO-1"), ("transfer", "WH-SH", -4, "TO-1"),
        ("adjustment", "WH-SH", -3, "ADJ-1"), ("return_to_vendor", "WH-SH", -2, "RTV-1"),
        ("customer_return", "WH-SH", 1, "RMA-3"), ("purchase_receipt", "WH-SH", 10, "PO-7")]
    assert all(r["actor"].startswith("api:support:") for r in rows)
    assert (rows[3]["note"], rows[6]["unit_cost"]) == ("broken in the aisle", 2000)
    assert _ok(api.get("/api/stock/verify", token=VIEWER))["ok"] is True


def test_a_movement_the_stock_refuses_is_409_and_changes_nothing(sqlite_oms: OMS, api: ApiServer) -> None:
    ledger, before = _ledger(sqlite_oms), _stock_of(api, "RARE-1")
    refused = [
        ({"kind": "return_to_vendor", "warehouse": "WH-SH", "sku": "RARE-1", "quantity": 2, "document": "RTV-9"},
         "only 1 available"),
        ({"kind": "adjustment", "warehouse": "WH-SH", "sku": "RARE-1", "quantity": -5, "document": "A",
          "note": "lost"}, "only 1 available"),
        ({"kind": "transfer", "sku": "RARE-1", "quantity": 3, "from": "WH-SH", "to": "WH-BJ", "document": "T"},
         "only 1 available"),
        ({"kind": "purchase_receipt", "warehouse": "WH-XX", "sku": "RARE-1", "quantity": 1, "document": "PO"},
         "no warehouse 'WH-XX'"),
        ({"kind": "customer_return", "warehouse": "WH-SH", "sku": "NOPE-1", "quantity": 1, "document": "R"},
         "no product 'NOPE-1'"),
        ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "RARE-1", "quantity": 1, "document": "PO",
          "unit_cost": "1.001"}, "more decimals than CNY allows"),
    ]
    for body, reason in refused:
        r = api.post("/api/stock/movements", token=SUPPORT, json_body=body)
        assert r.status == 409, (body, r.json)
        assert reason in r.json["detail"], r.json
    assert (_ledger(sqlite_oms), _stock_of(api, "RARE-1")) == (ledger, before)


@pytest.mark.parametrize(("body", "named"), [
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1}, "'document' is required"),
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1, "document": "P",
      "colour": "red"}, "field 'colour': not a field of a purchase_receipt movement; allowed: kind,"),
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": "5", "document": "P"},
     "'quantity'"),
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1.5, "document": "P"},
     "'quantity'"),
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": True, "document": "P"},
     "'quantity'"),
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": -1, "document": "P"},
     "'quantity': must be positive"),
    ({"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1, "document": "P",
      "unit_cost": 12.5}, "'unit_cost'"),
    ({"kind": "customer_return", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1, "document": "R",
      "unit_cost": "1.00"}, "'unit_cost'"),
    ({"kind": "adjustment", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": -1, "document": "A"}, "'note'"),
    ({"kind": "adjustment", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 0, "document": "A", "note": "x"},
     "'quantity': must not be 0"),
    ({"kind": "transfer", "sku": "TEA-1", "quantity": 1, "to": "WH-BJ", "document": "T"}, "'from' is required"),
    ({"kind": "stocktake", "warehouse": "WH-SH", "sku": "TEA-1", "counted": -1, "document": "S"}, "'counted'"),
    ({"kind": "reserve", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 1, "document": "R"},
     "posted by orders"),
    ({"kind": "teleport"}, "'kind': must be one of"),
    ({"warehouse": "WH-SH"}, "'kind': is required"),
    ([{"kind": "purchase_receipt"}], "JSON object"),
], ids=["missing", "unknown", "text-quantity", "fraction", "boolean", "negative-receipt", "numeric-cost",
        "cost-on-return", "adjustment-without-reason", "zero-adjustment", "transfer-without-from",
        "negative-count", "order-kind", "unknown-kind", "no-kind", "list"])
def test_a_malformed_movement_is_400_naming_the_field(sqlite_oms: OMS, api: ApiServer, body: Any, named: str) -> None:
    ledger = _ledger(sqlite_oms)
    r = api.post("/api/stock/movements", token=SUPPORT, json_body=body)
    assert r.status == 400, r.json
    assert named in r.json["detail"]
    assert _ledger(sqlite_oms) == ledger


def test_the_figures_a_movement_answers_are_the_stored_ones(api: ApiServer) -> None:
    r = _ok(api.post("/api/stock/movements", token=SUPPORT, json_body={
        "kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "MUG-1", "quantity": 5, "document": "PO-1",
        "unit_cost": "10.00"}))
    on_hand, reserved, _ = _stock_of(api, "MUG-1")["WH-SH"]
    assert (r["on_hand"], r["available"]) == (on_hand, on_hand - reserved) == (25, 25)
    # 25 units worth 50.00: 5 of them leave with a fifth of it
    r = _ok(api.post("/api/stock/movements", token=SUPPORT, json_body={
        "kind": "transfer", "sku": "MUG-1", "quantity": 5, "from": "WH-SH", "to": "WH-GZ", "document": "TO-1"}))
    assert r["value"] == 1000


def test_the_ledger_pages_newest_first_and_filters(sqlite_oms: OMS, api: ApiServer) -> None:
    clock = sqlite_oms.clock
    assert isinstance(clock, SimulatedClock)
    for i in range(5):
        clock.advance(timedelta(hours=1))
        _ok(api.post("/api/stock/movements", token=SUPPORT, json_body={
            "kind": "customer_return", "warehouse": "WH-GZ", "sku": "PEN-1", "quantity": i + 1,
            "document": f"RMA-{i}"}))
    everything = _ok(api.get("/api/stock/ledger?limit=1000", token=VIEWER))
    assert everything["next"] is None
    ids = [r["id"] for r in everything["movements"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == _ledger(sqlite_oms)
    paged = _all_pages(api, "/api/stock/ledger?limit=3", cursor="next", items="movements", param="cursor")
    assert [r["id"] for r in paged] == ids

    def documents(query: str) -> list[str]:
        return [r["document"] for r in _ok(api.get(f"/api/stock/ledger?{query}", token=VIEWER))["movements"]]

    assert documents("kind=customer_return") == [f"RMA-{i}" for i in range(4, -1, -1)]
    assert documents("sku=PEN-1&warehouse=WH-GZ&limit=2") == ["RMA-4", "RMA-3"]
    assert documents("kind=customer_return&since=2026-11-02T11:00:00&until=2026-11-02T13:00:00") == ["RMA-2", "RMA-1"]
    # an offset is converted to the ledger's UTC
    assert documents("kind=customer_return&since=2026-11-02T22:00:00%2B08:00") == ["RMA-4"]
    assert documents("sku=NOPE-1") == []
    for query, name in [("kind=teleport", "teleport"), ("since=yesterday", "since"), ("limit=0", "limit"),
                        ("cursor=0", "cursor"), ("before_id=9", "before_id")]:
        r = api.get(f"/api/stock/ledger?{query}", token=VIEWER)
        assert r.status == 400 and name in r.json["detail"], query


def test_stock_shows_each_value_and_pages_after_sku_and_warehouse(api: ApiServer) -> None:
    everything = _ok(api.get("/api/stock", token=VIEWER))
    assert everything["next"] is None
    keys = [(r["sku"], r["warehouse"]) for r in everything["stock"]]
    assert keys == sorted(keys)
    assert all(r["value"] == 0 for r in everything["stock"])   # the test world's stock came in without a cost
    paged = _all_pages(api, "/api/stock?limit=4", cursor="next", items="stock", param="cursor")
    assert paged == everything["stock"]
    first = _ok(api.get("/api/stock?limit=2", token=VIEWER))
    assert first["next"] is not None
    assert [sorted(r) for r in first["stock"]] == [["available", "on_hand", "reserved", "sku", "value",
                                                   "warehouse"]] * 2
    for query, name in [("after=TEA-1", "after"), ("cursor=TEA-1", "cursor")]:
        r = api.get(f"/api/stock?{query}", token=VIEWER)
        assert (r.status, r.json["field"]) == (400, name), r.json


def test_verify_says_which_stored_figure_differs_from_the_ledger(sqlite_oms: OMS, api: ApiServer) -> None:
    ok = _ok(api.get("/api/stock/verify", token=VIEWER))
    assert (ok["ok"], ok["differences"], ok["movements"]) == (True, [], _ledger(sqlite_oms))
    assert ok["stock_rows"] == sum(len(stock) for *_, stock in CATALOGUE.values())
    with sqlite_oms.db.session() as s:
        s.execute(update(Stock).where(Stock.warehouse == "WH-SH", Stock.sku == "TEA-1").values(on_hand=51))
    bad = _ok(api.get("/api/stock/verify", token=VIEWER))
    assert bad["ok"] is False
    assert bad["differences"] == [{"warehouse": "WH-SH", "sku": "TEA-1", "figure": "on_hand", "stored": 51,
                                   "recomputed": 50}]


# -- the blacklist ------------------------------------------------------------------------------
def test_a_blacklisted_customer_is_held_until_taken_off_the_list(oms: OMS, api_any: ApiServer) -> None:
    api = api_any
    assert [c["ref"] for c in _ok(api.get("/api/blacklist", token=VIEWER))["items"]] == ["C-BAD"]
    r = _ok(api.post("/api/blacklist", token=SUPPORT, json_body={"customer": "C-OLD", "reason": "chargeback"}))
    assert r == {"customer": "C-OLD", "blacklisted": True, "changed": True}
    again = _ok(api.post("/api/blacklist", token=SUPPORT, json_body={"customer": "C-OLD", "reason": "again"}))
    assert again["changed"] is False
    listed = {c["ref"]: c for c in _ok(api.get("/api/blacklist", token=VIEWER))["items"]}
    assert (listed["C-OLD"]["reason"], listed["C-OLD"]["actor"][:12]) == ("chargeback", "api:support:")

    [held] = oms.intake.ingest("json", payload(order_json("BL-1", customer="C-OLD")))
    oms.pipeline.run_until_idle()
    assert held.number is not None and status_of(oms, held.number) == "on_hold"

    r = _ok(api.post("/api/blacklist/C-OLD/remove", token=SUPPORT, json_body={"reason": "refund settled"}))
    assert r == {"customer": "C-OLD", "blacklisted": False, "changed": True}
    assert _ok(api.post("/api/blacklist/C-OLD/remove", token=SUPPORT, json_body={"reason": "x"}))["changed"] is False
    assert "C-OLD" not in [c["ref"] for c in _ok(api.get("/api/blacklist", token=VIEWER))["items"]]
    [fine] = oms.intake.ingest("json", payload(order_json("BL-2", customer="C-OLD")))
    oms.pipeline.run_until_idle()
    assert fine.number is not None and status_of(oms, fine.number) == "dispatched"

    # a customer not seen yet can be listed ahead of their first order; one never seen cannot be removed
    assert _ok(api.post("/api/blacklist", token=ADMIN, json_body={"customer": "C-NEW", "reason": "fraud ring"}))[
        "changed"] is True
    assert api.post("/api/blacklist/C-NOBODY/remove", token=SUPPORT, json_body={"reason": "x"}).status == 404
    for body in ({"customer": "C-OLD"}, {"customer": "", "reason": "x"}, {"customer": "C-OLD", "reason": "x",
                                                                           "note": "y"}):
        assert api.post("/api/blacklist", token=SUPPORT, json_body=body).status == 400, body
    r = api.post("/api/blacklist/C-NEW/remove", token=SUPPORT, json_body={"reason": "  "})
    assert (r.status, r.json["detail"], r.json["field"]) == (400, "field 'reason': must not be empty", "reason")
    assert api.post("/api/blacklist/C-NEW/remove", token=SUPPORT, json_body={}).status == 400


def test_the_blacklist_pages_by_ref_with_a_cursor(api_any: ApiServer) -> None:
    api = api_any
    for ref in ("C-A|1", "C-Z"):
        _ok(api.post("/api/blacklist", token=SUPPORT, json_body={"customer": ref, "reason": "chargebacks"}))
    first = _ok(api.get("/api/blacklist?limit=2", token=VIEWER))
    assert ([c["ref"] for c in first["items"]], first["truncated"]) == (["C-A|1", "C-BAD"], True)
    rest = _ok(api.get(f"/api/blacklist?limit=2&cursor={first['next']}", token=VIEWER))
    assert ([c["ref"] for c in rest["items"]], rest["next"], rest["truncated"]) == (["C-Z"], None, False)
    r = api.get("/api/blacklist?cursor=C-Z", token=VIEWER)
    assert (r.status, r.json["field"]) == (400, "cursor")


def test_a_freight_template_read_changed_and_sent_back_keeps_its_amounts(api: ApiServer) -> None:
    template = {"code": "STANDARD", "name": "Standard", "currency": "CNY", "free_above": "99.00",
                "zones": [{"regions": ["CN"], "first_price": "10.00"},
                          {"regions": ["Xinjiang"], "first_weight_g": 1000, "first_price": "20.00",
                           "extra_weight_g": 500, "extra_price": "8.50"}]}
    assert _ok(api.post("/api/freight-templates", token=ADMIN, json_body=template))["created"] == ["STANDARD"]
    shown = _ok(api.get("/api/freight-templates/STANDARD", token=VIEWER))
    assert shown["free_above"] == "99.00" and shown["zones"][1]["extra_price"] == "8.50"
    # What was read goes back as it is: nothing changes, no amount a hundred times dearer.
    back = {k: shown[k] for k in ("code", "name", "currency", "free_above", "zones")}
    assert _ok(api.post("/api/freight-templates", token=ADMIN, json_body=back))["unchanged"] == 1
    _ok(api.request("PATCH", "/api/freight-templates/STANDARD", token=ADMIN, json_body={"free_above": "199.00"}))
    again = _ok(api.get("/api/freight-templates/STANDARD", token=VIEWER))
    assert (again["free_above"], again["zones"][0]["first_price"], again["version"]) == ("199.00", "10.00", 2)

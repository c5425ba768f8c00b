"""The stock routes as the OpenAPI document declares them: a parameter or body field they do not name is a 400
problem naming it, and each list pages with a cursor that never repeats or skips a row, rows arriving meanwhile."""

from __future__ import annotations

from typing import Any

import pytest

from oms_engine.engine import OMS
from oms_engine.storage.models import DamagedStock
from tests.support.web import ADMIN, SUPPORT, VIEWER, ApiServer

RECEIPT = {"kind": "purchase_receipt", "warehouse": "WH-SH", "sku": "MUG-1", "quantity": 1, "document": "PO-1"}


def _pages(api: ApiServer, path: str, items: str, cursor: str | None = None) -> list[list[dict[str, Any]]]:
    """Every page of a listing (from ``cursor`` on), following ``next``."""
    pages: list[list[dict[str, Any]]] = []
    query = path if cursor is None else f"{path}&cursor={cursor}"
    for _ in range(100):
        r = api.get(query, token=VIEWER)
        assert r.status == 200, r.json
        pages.append(r.json[items])
        if r.json["next"] is None:
            return pages
        query = f"{path}&cursor={r.json['next']}"
    raise AssertionError("the pages never end")


def _refused(reply: Any, field: str, words: str) -> None:
    assert reply.status == 400, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["field"] == field and words in reply.json["detail"], reply.json


@pytest.mark.parametrize("path", ["/api/stock", "/api/stock/ledger", "/api/stock/damaged", "/api/stock/verify",
                                  "/api/stock/closing?day=2026-11-01", "/api/stock/movements.csv?day=2026-11-01"])
def test_a_parameter_a_stock_read_does_not_name_is_refused_naming_it(api: ApiServer, path: str) -> None:
    joined = "&" if "?" in path else "?"
    _refused(api.get(f"{path}{joined}warehous=WH-SH", token=VIEWER), "warehous", "unknown parameter 'warehous'")


def test_a_field_or_parameter_a_stock_change_does_not_name_is_refused_naming_it(sqlite_oms: OMS,
                                                                                 api: ApiServer) -> None:
    _refused(api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "colour": "red"}), "colour",
             "not a field of a purchase_receipt movement; allowed: kind, warehouse, sku, quantity, document")
    # A field of another kind is not one of this kind's.
    _refused(api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "counted": 4}), "counted",
             "not a field of a purchase_receipt movement")
    _refused(api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "quantity": "1"}), "quantity",
             "field 'quantity'")
    _refused(api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "unit_cost": 18.5}),
             "unit_cost", "never a JSON number")
    _refused(api.post("/api/stock/movements", token=SUPPORT, json_body={"sku": "MUG-1"}), "kind",
             "field 'kind': is required: one of purchase_receipt")
    _refused(api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "kind": "sale_out"}), "kind",
             "'sale_out' movements are posted by orders, not by hand")
    rows = [{"warehouse": "WH-SH", "sku": "MUG-1", "quantity": 20}]
    _refused(api.post("/api/stock/openings?skipbad=true", token=ADMIN, json_body=rows), "skipbad",
             "unknown parameter 'skipbad'; allowed: skip_bad")
    _refused(api.post("/api/stock/reconcile?post=perhaps", token=ADMIN, json_body=rows), "post",
             "parameter 'post': must be true or false, got 'perhaps'")
    _refused(api.post("/api/stock/reconcile?partial=true&dry_run=1", token=ADMIN, json_body=rows), "dry_run",
             "unknown parameter 'dry_run'")
    # The rows themselves are records: a bad one is a problem of a 422 naming where it is, as in a file.
    bad = api.post("/api/stock/openings", token=ADMIN, json_body=[{**rows[0], "colour": "red"}])
    assert bad.status == 422 and bad.json["problems"][0]["where"] == "request:item 1", bad.json


def test_days_and_times_are_refused_naming_the_parameter(api: ApiServer) -> None:
    _refused(api.get("/api/stock/closing", token=VIEWER), "day", "parameter 'day' is required")
    _refused(api.get("/api/stock/closing?day=6.12.2026", token=VIEWER), "day",
             "must be a date such as 2026-12-06, got '6.12.2026'")
    _refused(api.get("/api/stock/movements.csv?day=2026-11-01&all=maybe", token=VIEWER), "all",
             "must be true or false")
    _refused(api.get("/api/stock/ledger?until=soon", token=VIEWER), "until", "must be an ISO 8601 date or time")
    _refused(api.get("/api/stock/ledger?since=0001-01-01T00:00%2B01:00", token=VIEWER), "since",
             "past the end of the calendar")
    _refused(api.get("/api/stock/closing?day=9999-12-31", token=VIEWER), "day", "must be a day before 9999-12-31")
    _refused(api.get("/api/stock/ledger?kind=teleport", token=VIEWER), "kind",
             "parameter 'kind': must be one of opening, reserve")
    _refused(api.get("/api/stock/ledger?limit=1001", token=VIEWER), "limit", "parameter 'limit'")
    csv = api.get("/api/stock/movements.csv?day=2026-11-01&all=true", token=VIEWER)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")


def test_stock_pages_by_sku_and_warehouse_without_repeats_or_gaps(api: ApiServer) -> None:
    everything = _pages(api, "/api/stock?limit=500", "stock")
    assert len(everything) == 1
    keys = [(r["sku"], r["warehouse"]) for r in everything[0]]
    assert keys == sorted(keys) and len(keys) > 5
    for limit in (1, 2, 5):
        pages = _pages(api, f"/api/stock?limit={limit}", "stock")
        assert [r for page in pages for r in page] == everything[0]
        assert all(pages) and all(len(page) == limit for page in pages[:-1])
    # The filters narrow it; paged, the same.
    tea = _pages(api, "/api/stock?sku=TEA-1&limit=1", "stock")
    assert [(r["sku"], r["warehouse"]) for page in tea for r in page] == [("TEA-1", "WH-BJ"), ("TEA-1", "WH-GZ"),
                                                                          ("TEA-1", "WH-SH")]
    assert _pages(api, "/api/stock?warehouse=WH-GZ&sku=TEA-1", "stock") == [[
        {"warehouse": "WH-GZ", "sku": "TEA-1", "on_hand": 50, "reserved": 0, "available": 50, "value": 0}]]
    _refused(api.get("/api/stock?cursor=TEA-1", token=VIEWER), "cursor", "not a cursor this list gave")


def test_the_ledger_pages_newest_first_without_repeats_or_gaps_while_movements_arrive(api: ApiServer) -> None:
    for i in range(7):
        r = api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "document": f"PO-{i}"})
        assert r.status == 200, r.json
    path = "/api/stock/ledger?sku=MUG-1&kind=purchase_receipt&warehouse=WH-SH"
    [before] = _pages(api, f"{path}&limit=1000", "movements")
    assert [m["document"] for m in before] == [f"PO-{i}" for i in range(6, -1, -1)]
    first = api.get(f"{path}&limit=3", token=VIEWER).json
    # A movement posted between pages is on no later page: the cursor is where the first page ended.
    assert api.post("/api/stock/movements", token=SUPPORT, json_body={**RECEIPT, "document": "PO-LATE"}).status == 200
    rest = _pages(api, f"{path}&limit=3", "movements", first["next"])
    assert first["movements"] + [m for page in rest for m in page] == before
    assert [len(page) for page in rest] == [3, 1]
    assert _pages(api, f"{path}&limit=1000", "movements")[0][0]["document"] == "PO-LATE"
    _refused(api.get("/api/stock/ledger?before_id=5", token=VIEWER), "before_id", "unknown parameter 'before_id'")


def test_the_damaged_goods_page_by_sku_and_warehouse(sqlite_oms: OMS, api: ApiServer) -> None:
    with sqlite_oms.db.session() as s:
        for sku, stock in (("TEA-1", ("WH-SH", "WH-BJ", "WH-GZ")), ("MUG-1", ("WH-SH", "WH-BJ")),
                           ("PEN-1", ("WH-GZ",))):
            for warehouse in stock:
                s.add(DamagedStock(warehouse=warehouse, sku=sku, quantity=2))
        s.add(DamagedStock(warehouse="WH-SH", sku="ICE-1", quantity=0))     # none left: not listed
    [everything] = _pages(api, "/api/stock/damaged?limit=500", "damaged")
    assert [(r["sku"], r["warehouse"]) for r in everything] == [
        ("MUG-1", "WH-BJ"), ("MUG-1", "WH-SH"), ("PEN-1", "WH-GZ"), ("TEA-1", "WH-BJ"), ("TEA-1", "WH-GZ"),
        ("TEA-1", "WH-SH")]
    for limit in (1, 4):
        assert [r for page in _pages(api, f"/api/stock/damaged?limit={limit}", "damaged") for r in page] == everything
    assert [r["sku"] for page in _pages(api, "/api/stock/damaged?warehouse=WH-SH&limit=1", "damaged")
            for r in page] == ["MUG-1", "TEA-1"]

"""Damaged goods over the API: a case's goods recorded back with some damaged, the damaged stock read by a viewer
and cleared (scrapped or regraded) by support; bad bodies are 400, more than is damaged 409."""

from __future__ import annotations

from oms_engine.engine import OMS
from oms_engine.plugin.testing import drive_until_state
from tests.support.web import SUPPORT, VIEWER, ApiServer, ingest_one


def _stock(api: ApiServer, sku: str) -> dict[str, int]:
    [row] = [r for r in api.get(f"/api/stock?sku={sku}&warehouse=WH-SH", token=VIEWER).json["stock"]]
    return row


def test_a_case_received_with_damaged_units_and_the_damaged_stock_cleared(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "DMG-API")
    drive_until_state(sqlite_oms, number, "delivered")
    r = api.post(f"/api/orders/{number}/aftersales", token=SUPPORT,
                 json_body={"kind": "return_refund", "lines": [{"line_no": 1, "quantity": 2}], "reason": "crushed"})
    case = r.json["number"]
    assert api.post(f"/api/aftersales/{case}/approve", token=SUPPORT).status == 200
    before = _stock(api, "TEA-1")
    for body, words in [
        ({"damaged": []}, "field 'damaged': must be a non-empty object"),
        ({"damaged": {}}, "field 'damaged': must be a non-empty object"),
        ({"damaged": {"TEA-1": 0}}, "field 'damaged.TEA-1': a whole number from 1 to 100,000, got 0"),
        ({"damaged": {"TEA-1": "1"}}, "a whole number from 1 to 100,000, got '1'"),
        ({"damaged": {"TEA-1": True}}, "a whole number from 1 to 100,000, got True"),
        ({"damaged": {"TEA-1": 3}}, "3 TEA-1 damaged, but RMA-"),
        ({"damaged": {"MUG-1": 1}}, "none of it to receive"),
    ]:
        bad = api.post(f"/api/aftersales/{case}/receive", token=SUPPORT, json_body=body)
        assert (bad.status, words in bad.json["detail"]) == (400, True), (body, bad.json)
    wrong = api.post(f"/api/aftersales/{case}/deny", token=SUPPORT, json_body={"damaged": {"TEA-1": 1}})
    assert wrong.status == 400 and "unknown field 'damaged'; allowed: note" in wrong.json["detail"]
    assert wrong.json["field"] == "damaged"
    assert _stock(api, "TEA-1") == before

    got = api.post(f"/api/aftersales/{case}/receive", token=SUPPORT,
                   json_body={"damaged": {"TEA-1": 1}, "note": "at the counter"})
    assert got.status == 200, got.json
    assert got.json["status"] in ("refund_pending", "refunded")
    after = _stock(api, "TEA-1")
    assert (after["on_hand"], after["available"]) == (before["on_hand"] + 1, before["available"] + 1)
    listed = api.get("/api/stock/damaged?warehouse=WH-SH", token=VIEWER)
    assert listed.status == 200 and listed.json == {"damaged": [{"warehouse": "WH-SH", "sku": "TEA-1",
                                                                 "quantity": 1}], "next": None}
    assert api.get("/api/stock/damaged").status == 401

    scrap = {"kind": "scrap", "warehouse": "WH-SH", "sku": "TEA-1", "quantity": 2, "document": "SCRAP-1",
             "note": "tin split"}
    assert api.post("/api/stock/movements", token=VIEWER, json_body=scrap).status == 403
    over = api.post("/api/stock/movements", token=SUPPORT, json_body=scrap)
    assert over.status == 409 and over.json["detail"] == "scrap of 2 TEA-1 at WH-SH: only 1 damaged"
    silent = api.post("/api/stock/movements", token=SUPPORT, json_body={**scrap, "quantity": 1, "note": " "})
    assert silent.status == 400 and "field 'note'" in silent.json["detail"]
    zero = api.post("/api/stock/movements", token=SUPPORT, json_body={**scrap, "quantity": 0})
    assert zero.status == 400 and "field 'quantity'" in zero.json["detail"]
    done = api.post("/api/stock/movements", token=SUPPORT, json_body={**scrap, "kind": "regrade", "quantity": 1})
    assert done.status == 200, done.json
    assert (done.json["kind"], done.json["damaged"], done.json["on_hand"]) == ("regrade", 0, after["on_hand"] + 1)
    assert api.get("/api/stock/damaged", token=VIEWER).json == {"damaged": [], "next": None}
    ledger = api.get("/api/stock/ledger?kind=regrade", token=VIEWER).json["movements"]
    assert [(m["on_hand_delta"], m["damaged_delta"], m["note"]) for m in ledger] == [(1, -1, "tin split")]
    assert ledger[0]["actor"].startswith("api:support:")
    assert api.get("/api/stock/verify", token=VIEWER).json["ok"] is True

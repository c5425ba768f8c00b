"""Goods documents and the outbox's dead letters over the API: created, filtered, paged with a cursor that never
repeats or skips one, cancelled and sent again; a parameter or field the route does not name is a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.storage.models import OutboxMessage
from tests.support.web import ADMIN, SUPPORT, VIEWER, ApiServer, ingest_one

PO = {"kind": "purchase_order", "warehouse": "WH-SH", "supplier": "SUP-1",
      "lines": [{"sku": "TEA-1", "quantity": 24, "unit_cost": "31.50"}]}


@pytest.fixture
def supplied(sqlite_oms: OMS) -> OMS:
    sqlite_oms.masterdata.apply("suppliers", [Row("t", {"code": "SUP-1", "name": "Tea Farm"})], actor="t", source="t")
    return sqlite_oms


def _create(api: ApiServer, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/api/documents", token=SUPPORT, json_body=body)
    assert r.status == 201, r.json
    return r.json  # type: ignore[no-any-return]


def _pages(api: ApiServer, path: str, items: str, cursor: str | None = None) -> list[list[dict[str, Any]]]:
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


def test_documents_are_created_filtered_and_cancelled(supplied: OMS, api: ApiServer) -> None:
    order = ingest_one(supplied, "DOC-API")
    po = _create(api, PO)
    assert (po["number"][:3], po["status"], po["lines"][0]["unit_cost"]) == ("PO-", "open", 3150)
    rma = _create(api, {"kind": "customer_return", "warehouse": "WH-BJ", "order_number": order,
                        "lines": [{"sku": "TEA-1", "quantity": 1}], "note": "parcel damaged"})
    rtv = _create(api, {"kind": "return_to_vendor", "warehouse": "WH-SH", "supplier": "SUP-1",
                        "lines": [{"sku": "MUG-1", "quantity": 2}], "expected_at": "2026-11-20T09:00:00+08:00"})
    assert rtv["expected_at"] == "2026-11-20T09:00:00"

    def numbers(query: str) -> list[str]:
        return [d["number"] for page in _pages(api, f"/api/documents?{query}", "documents") for d in page]

    assert numbers("limit=50") == [rtv["number"], rma["number"], po["number"]]
    assert numbers("kind=purchase_order") == [po["number"]]
    assert numbers("warehouse=WH-SH&status=open") == [rtv["number"], po["number"]]
    assert numbers("warehouse=WH-BJ&kind=customer_return") == [rma["number"]]

    cancelled = api.post(f"/api/documents/{po['number']}/cancel", token=SUPPORT)
    assert (cancelled.status, cancelled.json["status"]) == (200, "cancelled")
    assert numbers("status=cancelled") == [po["number"]]
    again = api.post(f"/api/documents/{po['number']}/cancel", token=SUPPORT)
    assert again.status == 409 and "only a document nothing was done on yet" in again.json["detail"]
    shown = api.get(f"/api/documents/{rma['number']}", token=VIEWER)
    assert shown.status == 200 and shown.json["note"] == "parcel damaged"
    missing = api.get("/api/documents/PO-999999", token=VIEWER)
    assert (missing.status, missing.json["detail"]) == (404, "no document 'PO-999999'")
    refused = api.post("/api/documents", token=SUPPORT, json_body={**PO, "supplier": "SUP-NONE"})
    assert (refused.status, refused.json["detail"]) == (409, "no active supplier 'SUP-NONE'")


def test_a_parameter_or_field_the_documents_routes_do_not_name_is_refused_naming_it(supplied: OMS,
                                                                                     api: ApiServer) -> None:
    _refused(api.get("/api/documents?type=purchase_order", token=VIEWER), "type",
             "unknown parameter 'type'; allowed: limit, cursor, kind, status, warehouse")
    _refused(api.get("/api/documents?kind=invoice", token=VIEWER), "kind",
             "parameter 'kind': must be one of purchase_order, return_to_vendor, customer_return, got 'invoice'")
    _refused(api.get("/api/documents?status=gone", token=VIEWER), "status", "must be one of open, partial, done")
    _refused(api.get("/api/documents?before_id=3", token=VIEWER), "before_id", "unknown parameter 'before_id'")
    _refused(api.get("/api/outbox/dead?target=sim_wms&topic=x", token=VIEWER), "topic", "unknown parameter 'topic'")
    _refused(api.post("/api/documents", token=SUPPORT, json_body={**PO, "colour": "red"}), "colour",
             "unknown field 'colour'")
    _refused(api.post("/api/documents", token=SUPPORT, json_body={**PO, "lines": [{**PO["lines"][0], "qty": 1}]}),
             "lines.0.qty", "unknown field 'lines.0.qty'")
    line = {"sku": "TEA-1", "quantity": 24, "unit_cost": 31.5}
    _refused(api.post("/api/documents", token=SUPPORT, json_body={**PO, "lines": [line]}), "lines.0.unit_cost",
             "never a JSON number")
    _refused(api.post("/api/documents", token=SUPPORT, json_body={**PO, "lines": []}), "lines", "field 'lines'")
    _refused(api.post("/api/documents/PO-000001/cancel", token=SUPPORT, json_body={"reason": "x"}), "reason",
             "unknown field 'reason'; allowed: none")
    _refused(api.post("/api/outbox/1/retry", token=ADMIN, json_body={"force": True}), "force",
             "unknown field 'force'")


def test_documents_page_newest_first_without_repeats_or_gaps_while_documents_arrive(supplied: OMS,
                                                                                     api: ApiServer) -> None:
    made = [_create(api, {**PO, "note": f"#{i}"})["number"] for i in range(7)]
    [everything] = _pages(api, "/api/documents?limit=500", "documents")
    assert [d["number"] for d in everything] == made[::-1]
    for limit in (1, 2, 3):
        pages = _pages(api, f"/api/documents?limit={limit}", "documents")
        assert [d for page in pages for d in page] == everything and all(pages)
    first = api.get("/api/documents?limit=3", token=VIEWER).json
    late = _create(api, PO)["number"]
    rest = _pages(api, "/api/documents?limit=3", "documents", first["next"])
    assert [d["number"] for d in first["documents"] + [d for page in rest for d in page]] == made[::-1]
    assert _pages(api, "/api/documents?limit=1", "documents")[0][0]["number"] == late
    _refused(api.get("/api/documents?cursor=bm9wZQ", token=VIEWER), "cursor", "not a cursor this list gave")


def test_dead_letters_page_without_repeats_or_gaps_and_are_sent_again(supplied: OMS, api: ApiServer) -> None:
    for i in range(5):
        _create(api, {**PO, "note": f"#{i}"})    # each queued for the warehouse's WMS
    with supplied.db.session() as s:
        s.execute(update(OutboxMessage).values(status="dead", attempts=8, last_error="the WMS said 503"))
    [everything] = _pages(api, "/api/outbox/dead?limit=1000", "messages")
    ids = [m["id"] for m in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 5
    assert {m["status"] for m in everything} == {"dead"}
    for limit in (1, 2):
        pages = _pages(api, f"/api/outbox/dead?limit={limit}", "messages")
        assert [m["id"] for page in pages for m in page] == ids
    by_target = _pages(api, "/api/outbox/dead?target=sim_wms&limit=2", "messages")
    assert [m["id"] for page in by_target for m in page] == [m["id"] for m in everything if m["target"] == "sim_wms"]

    again = api.post(f"/api/outbox/{ids[0]}/retry", token=ADMIN)
    assert (again.status, again.json["status"], again.json["attempts"]) == (200, "pending", 0), again.json
    assert [m["id"] for m in _pages(api, "/api/outbox/dead?limit=1000", "messages")[0]] == ids[1:]
    not_dead = api.post(f"/api/outbox/{ids[0]}/retry", token=ADMIN)
    assert not_dead.status == 409 and "not dead" in not_dead.json["detail"]
    for message_id in (999999, 2**63):
        r = api.post(f"/api/outbox/{message_id}/retry", token=ADMIN)
        assert (r.status, r.json["detail"]) == (409, f"no outbox message {message_id}")
    assert api.post(f"/api/outbox/{ids[1]}/retry", token=SUPPORT).status == 403

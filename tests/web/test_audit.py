"""The audit log: every change asked of the API by a known caller (answered or refused) is recorded with who,
what, when, the masked request, the status and, where the view says, before and after; reads and anonymous
requests are not. ``GET /api/audit`` lists it, newest first, a page at a time."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest

from oms_engine.clock import utcnow
from oms_engine.engine import OMS
from oms_engine.storage.models import AuditEntry
from oms_engine.web import audit
from tests.support.web import ADMIN, SUPPORT, VIEWER, ApiServer, count, dispatched_order, held_order


def entries(api: ApiServer, query: str = "") -> list[dict[str, Any]]:
    r = api.get(f"/api/audit{query}", token=ADMIN)
    assert r.status == 200, r.body
    rows: list[dict[str, Any]] = r.json["entries"]
    return rows


def test_a_release_is_audited_with_who_what_and_the_answer(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    before = utcnow()
    r = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "called the customer"},
                     headers={"X-Request-Id": "req-42"})
    assert r.status == 200
    [entry] = entries(api_any)
    assert entry["actor"].startswith("api:support:") and entry["role"] == "operator"
    assert (entry["action"], entry["target"], entry["status"]) == ("POST /api/orders/{number}/release", number, 200)
    assert entry["request"] == {"note": "called the customer"}
    assert entry["request_id"] == "req-42"
    assert entry["before"] == {"number": number, "status": "on_hold", "hold_reason": "customer is on the blacklist"}
    assert entry["after"] == {"number": number, "status": "paid"}
    assert before.isoformat() <= entry["at"] <= utcnow().isoformat()


def test_before_and_after_are_kept_when_the_view_gives_them(sqlite_oms: OMS, api: ApiServer) -> None:
    made = api.post("/api/tokens", token=ADMIN, json_body={"role": "viewer", "name": "kiosk"})
    assert made.status == 201
    assert api.post("/api/tokens/kiosk/revoke", token=ADMIN).status == 200
    revoked, created = entries(api)
    assert (created["action"], created["target"], created["status"]) == ("POST /api/tokens", "", 201)
    assert created["before"] is None and created["after"]["state"] == "live"
    assert created["request"] == {"role": "viewer", "name": "kiosk"}
    assert (revoked["action"], revoked["target"]) == ("POST /api/tokens/{name}/revoke", "kiosk")
    assert (revoked["before"]["state"], revoked["after"]["state"]) == ("live", "revoked")
    # the token answered once is in no entry
    assert made.json["token"] not in str(entries(api))


def test_refused_changes_are_audited_reads_and_anonymous_requests_are_not(sqlite_oms: OMS, api: ApiServer) -> None:
    held, sent = held_order(sqlite_oms, "H"), dispatched_order(sqlite_oms, "S")
    assert api.post(f"/api/orders/{held}/release", token=VIEWER).status == 403
    assert api.post(f"/api/orders/{sent}/release", token=SUPPORT).status == 409
    assert api.post(f"/api/orders/{held}/release").status == 401
    assert api.post(f"/api/orders/{held}/release", token="who-knows").status == 401
    for path in (f"/api/orders/{held}", "/api/holds", "/api/tokens", "/api/audit"):
        assert api.get(path, token=ADMIN).status == 200
    conflict, forbidden = entries(api)
    assert (forbidden["role"], forbidden["status"], forbidden["target"]) == ("viewer", 403, held)
    assert (conflict["role"], conflict["status"], conflict["target"]) == ("operator", 409, sent)
    assert count(sqlite_oms, AuditEntry) == 2


def test_secrets_in_a_body_are_masked_and_a_large_body_is_cut(sqlite_oms: OMS, api: ApiServer) -> None:
    number = held_order(sqlite_oms)
    r = api.post(f"/api/orders/{number}/release", token=SUPPORT,
                 json_body={"note": "x", "password": "hunter2", "nested": [{"apiKey": "k-123"}],
                            "pasted": "oms_" + "A" * 43})
    assert r.status == 400     # unknown fields: refused, and audited
    [entry] = entries(api)
    assert entry["request"] == {"note": "x", "password": "***", "nested": [{"apiKey": "***"}], "pasted": "***"}
    assert "hunter2" not in str(entry) and "k-123" not in str(entry)
    big = api.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "n" * 10_000})
    assert big.status == 400
    cut = entries(api, "?limit=1")[0]["request"]
    assert cut["truncated"] is True and cut["chars"] > 10_000 and len(cut["head"]) == audit.MAX_REQUEST_CHARS
    text = api.post(f"/api/orders/{number}/release", token=SUPPORT, body=b"not json {",
                    headers={"Content-Type": "text/plain"})
    assert text.status == 400
    assert entries(api, "?limit=1")[0]["request"] == {"not_json": True, "bytes": 10, "content_type": "text/plain"}


def test_the_action_is_the_route_and_the_target_its_first_parameter(sqlite_oms: OMS, api: ApiServer) -> None:
    r = api.post("/api/aftersales/NO-SUCH-C01/approve", token=SUPPORT, json_body={"note": "ok"})
    assert r.status == 404
    [entry] = entries(api)
    assert (entry["action"], entry["target"], entry["status"]) == (
        "POST /api/aftersales/{case}/approve", "NO-SUCH-C01", 404)


def test_the_log_is_paged_newest_first_and_filtered(sqlite_oms: OMS, api: ApiServer) -> None:
    numbers = [held_order(sqlite_oms, f"P{i}") for i in range(5)]
    for number in numbers:
        assert api.post(f"/api/orders/{number}/reject", token=SUPPORT).status == 200
    assert api.post("/api/tokens", token=ADMIN, json_body={"role": "viewer", "name": "pager"}).status == 201
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        r = api.get("/api/audit?limit=2" + (f"&cursor={cursor}" if cursor else ""), token=ADMIN)
        assert r.status == 200
        seen.extend(r.json["entries"])
        pages += 1
        cursor = r.json["next"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 6
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6
    assert [e["target"] for e in seen[1:]] == numbers[::-1]

    operator = seen[-1]["actor"]
    assert [e["target"] for e in entries(api, f"?actor={operator}")] == numbers[::-1]
    assert [e["action"] for e in entries(api, "?action=POST%20/api/tokens")] == ["POST /api/tokens"]
    assert [e["target"] for e in entries(api, f"?target={numbers[2]}")] == [numbers[2]]
    assert entries(api, "?since=2999-01-01") == [] and entries(api, "?until=2000-01-01T00:00:00Z") == []
    assert len(entries(api, "?since=2000-01-01&until=2999-01-01")) == 6
    for query, status in (("?actr=x", 400), ("?since=yesterday", 400), ("?limit=0", 400), ("?before_id=x", 400)):
        assert api.get(f"/api/audit{query}", token=ADMIN).status == status, query


def test_a_failed_audit_write_is_logged_and_the_answer_stands(
        sqlite_oms: OMS, api: ApiServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    number = held_order(sqlite_oms)

    def broken(**_: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(audit, "AuditEntry", broken)
    with caplog.at_level(logging.ERROR, logger="oms.api"):
        r = api.post(f"/api/orders/{number}/release", token=SUPPORT)
    assert r.status == 200 and r.json["status"] == "paid"
    assert any("audit entry not written" in rec.getMessage() for rec in caplog.records)
    monkeypatch.undo()
    assert entries(api) == []


def test_masking_and_capping_by_themselves() -> None:
    assert audit.masked({"Client_Secret": "s", "token_type": "x", "sku": "A", "key": "k", "list": [1, {"pin": 1}]}) \
        == {"Client_Secret": "***", "token_type": "***", "sku": "A", "key": "***", "list": [1, {"pin": "***"}]}
    assert audit.capped({"at": datetime(2030, 1, 2, 3, 4, 5)}, 100) == {"at": "2030-01-02 03:04:05"}
    assert audit.action_of("POST", "/api/outbox/<int:message_id>/retry") == "POST /api/outbox/{message_id}/retry"

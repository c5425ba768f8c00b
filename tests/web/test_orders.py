"""Reading: order search, an order's whole story, the hold queue, stock."""

from __future__ import annotations

from datetime import timedelta

from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from tests.support.web import SUPPORT, VIEWER, ApiServer, held_order, ingest_one


def test_order_search_filters_newest_first(sqlite_oms: OMS, api: ApiServer) -> None:
    a1 = ingest_one(sqlite_oms, "A-1")
    a2 = ingest_one(sqlite_oms, "A-2")
    b1 = ingest_one(sqlite_oms, "B-1", paid=False)
    bad = held_order(sqlite_oms, "A_BAD")

    everything = api.get("/api/orders", token=VIEWER).json
    assert [o["number"] for o in everything["orders"]] == [bad, b1, a2, a1]
    assert everything["next"] is None
    first = everything["orders"][0]
    assert (first["status"], first["customer"], first["channel"], first["external_id"]) == (
        "on_hold", "C-BAD", "json", "A_BAD")
    assert first["hold_reason"] == "customer is on the blacklist"

    def numbers(query: str) -> list[str]:
        r = api.get(f"/api/orders?{query}", token=VIEWER)
        assert r.status == 200, r.json
        return [o["number"] for o in r.json["orders"]]

    assert numbers("q=A-") == [a2, a1]
    # '_' is a LIKE wildcard: searching for it must mean the character
    assert numbers("q=A_") == [bad]
    assert numbers(f"q={a1}") == [a1]
    assert numbers("status=pending_payment") == [b1]
    assert numbers("status=on_hold") == [bad]
    assert numbers("customer=C-BAD") == [bad]
    assert numbers("customer=C-NOBODY") == []
    assert numbers("channel=json&status=dispatched") == [a2, a1]  # the pipeline ran for the hold
    assert numbers("channel=other") == []


def test_order_search_pages_with_a_cursor(sqlite_oms: OMS, api: ApiServer) -> None:
    made = [ingest_one(sqlite_oms, f"P-{i}") for i in range(5)]
    seen: list[str] = []
    query = "limit=2"
    while True:
        page = api.get(f"/api/orders?{query}", token=VIEWER).json
        assert len(page["orders"]) <= 2
        seen += [o["number"] for o in page["orders"]]
        if page["next"] is None:
            break
        query = f"limit=2&cursor={page['next']}"
    assert seen == made[::-1]


def test_order_search_parameter_errors_are_400(api: ApiServer) -> None:
    r = api.get("/api/orders?status=lost", token=VIEWER)
    assert r.status == 400
    assert "'lost'" in r.json["detail"] and "on_hold" in r.json["detail"] and "pending_payment" in r.json["detail"]
    for query, name in [("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"),
                        ("cursor=-3", "cursor"), ("cursor=x", "cursor"), ("before_id=3", "before_id")]:
        r = api.get(f"/api/orders?{query}", token=VIEWER)
        assert r.status == 400, query
        assert f"'{name}'" in r.json["detail"]
    assert len(api.get("/api/orders?limit=500", token=VIEWER).json["orders"]) == 0


def test_explain_shows_decisions_with_the_rules_that_fired(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    r = api_any.get(f"/api/orders/{number}", token=VIEWER)
    assert r.status == 200
    story = r.json
    assert (story["number"], story["status"], story["hold_stage"]) == (number, "on_hold", "screening")
    blocking = [d for d in story["decisions"] if d["point"] == "blocking"]
    assert len(blocking) == 1
    in_force = {r["name"]: r for r in api_any.get("/api/rules", token=VIEWER).json["rulesets"]}
    assert blocking[0]["version"] == in_force["blocking"]["version"]
    assert [f["rule"] for f in blocking[0]["fired"]] == ["blacklisted-customer"]
    assert blocking[0]["outcome"]["reasons"] == ["customer is on the blacklist"]
    assert [(h["event"], h["to"]) for h in story["history"]] == [
        ("create", "pending_payment"), ("pay", "paid"), ("hold", "on_hold")]
    assert story["history"][-1]["actor"] == "rules:blocking"
    assert story["customer_detail"]["blacklisted"] is True
    assert story["lines"][0]["sku"] == "TEA-1"
    assert {"messages", "callbacks", "reservations", "amounts"} <= set(story)


def test_hold_queue_is_oldest_first_with_reason_and_stage(sqlite_oms: OMS, api: ApiServer) -> None:
    clock = sqlite_oms.clock
    assert isinstance(clock, SimulatedClock)
    first = held_order(sqlite_oms, "H-1")
    clock.advance(timedelta(minutes=5))
    # held at intake: a SKU the catalogue does not know
    second = ingest_one(sqlite_oms, "H-2", lines=[("GHOST-1", 1)])
    clock.advance(timedelta(minutes=5))
    ingest_one(sqlite_oms, "H-3")
    sqlite_oms.pipeline.run_until_idle()
    queue = api.get("/api/holds", token=VIEWER).json
    assert queue["total"] == 2
    assert [(h["number"], h["hold_stage"]) for h in queue["holds"]] == [(first, "screening"), (second, "intake")]
    assert queue["holds"][0]["hold_reason"] == "customer is on the blacklist"
    assert "GHOST-1" in queue["holds"][1]["hold_reason"]
    assert queue["holds"][0]["held_since"] < queue["holds"][1]["held_since"]
    assert api.post(f"/api/orders/{first}/reject", token=SUPPORT).status == 200
    assert [h["number"] for h in api.get("/api/holds", token=VIEWER).json["holds"]] == [second]


def test_stock_rows_show_on_hand_reserved_available(sqlite_oms: OMS, api: ApiServer) -> None:
    ingest_one(sqlite_oms, "S-1", lines=[("RARE-1", 1)])
    rows = api.get("/api/stock?sku=RARE-1", token=VIEWER).json["stock"]
    assert rows == [{"warehouse": "WH-SH", "sku": "RARE-1", "on_hand": 1, "reserved": 1, "available": 0, "value": 0}]
    tea = api.get("/api/stock?sku=TEA-1", token=VIEWER).json
    assert sorted(r["warehouse"] for r in tea["stock"]) == ["WH-BJ", "WH-GZ", "WH-SH"]
    assert all(r["available"] == r["on_hand"] - r["reserved"] for r in tea["stock"])
    gz = api.get("/api/stock?warehouse=WH-GZ", token=VIEWER).json["stock"]
    assert {r["sku"] for r in gz} == {"TEA-1", "ICE-1", "SOFA-1", "PEN-1"}
    assert api.get("/api/stock?sku=NOPE", token=VIEWER).json == {"stock": [], "next": None}
    assert api.get("/api/stock?limit=2", token=VIEWER).json["next"] is not None

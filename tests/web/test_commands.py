"""Support staff steering orders: release, reject, cancel, intercept, pay."""

from __future__ import annotations

from oms_engine.engine import OMS
from tests.support.web import (
    ADMIN,
    INTEGRATION,
    SUPPORT,
    VIEWER,
    ApiServer,
    dispatched_order,
    held_order,
    history_rows,
    ingest_one,
    status_of,
)


def test_support_releases_a_held_order_and_it_goes_on_to_the_warehouse(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    r = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "checked with the bank"})
    assert (r.status, r.json) == (200, {"number": number, "status": "paid"})
    oms.pipeline.run_until_idle()
    assert status_of(oms, number) == "dispatched"
    history = api_any.get(f"/api/orders/{number}", token=VIEWER).json["history"]
    release = next(h for h in history if h["event"] == "release")
    assert release["actor"].startswith("api:support:")
    assert (release["from"], release["to"], release["cause"]) == ("on_hold", "paid", "checked with the bank")
    assert api_any.get("/api/holds", token=VIEWER).json["holds"] == []


def test_illegal_transition_is_409_naming_state_and_event_and_changes_nothing(oms: OMS, api_any: ApiServer) -> None:
    number = dispatched_order(oms)
    before = history_rows(oms, number)
    r = api_any.post(f"/api/orders/{number}/release", token=SUPPORT)
    assert r.status == 409
    assert number in r.json["detail"] and "'dispatched'" in r.json["detail"] and "'release'" in r.json["detail"]
    assert (r.json["order"], r.json["state"], r.json["event"]) == (number, "dispatched", "release")
    r = api_any.post(f"/api/orders/{number}/intercept", token=SUPPORT)
    assert r.status == 409
    assert (r.json["state"], r.json["event"]) == ("dispatched", "intercept")
    assert status_of(oms, number) == "dispatched"
    assert history_rows(oms, number) == before


def test_reject_cancels_a_held_order(sqlite_oms: OMS, api: ApiServer) -> None:
    number = held_order(sqlite_oms)
    r = api.post(f"/api/orders/{number}/reject", token=SUPPORT, json_body={"note": "fraud confirmed"})
    assert (r.status, r.json) == (200, {"number": number, "status": "cancelled"})
    assert history_rows(sqlite_oms, number)[-1][:2] == ("reject", "cancelled")
    # a second reject is now illegal
    assert api.post(f"/api/orders/{number}/reject", token=SUPPORT).json["state"] == "cancelled"


def test_cancel_before_picking(sqlite_oms: OMS, api: ApiServer) -> None:
    number = dispatched_order(sqlite_oms)
    r = api.post(f"/api/orders/{number}/cancel", token=ADMIN, body=b"")
    assert (r.status, r.json) == (200, {"number": number, "status": "cancelled"})
    assert history_rows(sqlite_oms, number)[-1][2].startswith("api:admin:")


def test_unknown_order_is_404(api: ApiServer) -> None:
    for verb in ("release", "reject", "cancel", "intercept"):
        r = api.post(f"/api/orders/NOPE-1/{verb}", token=SUPPORT)
        assert r.status == 404, verb
        assert "NOPE-1" in r.json["detail"]
    r = api.post("/api/orders/NOPE-1/payments", token=SUPPORT, json_body={"amount": "1.00", "transaction_id": "T"})
    assert r.status == 404
    assert api.get("/api/orders/NOPE-1", token=VIEWER).status == 404


def test_bad_command_bodies_are_400_naming_the_field(sqlite_oms: OMS, api: ApiServer) -> None:
    number = held_order(sqlite_oms)
    before = history_rows(sqlite_oms, number)
    cases = [
        (b'{"note": "unterminated', "malformed JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b'["a note"]', "JSON object"),
        (b'{"note": 42}', "'note'"),
        (b'{"reason": "x"}', "reason"),
    ]
    for body, expected in cases:
        r = api.post(f"/api/orders/{number}/release", token=SUPPORT, body=body,
                     headers={"Content-Type": "application/json"})
        assert r.status == 400, body
        assert expected in r.json["detail"], (body, r.json)
    assert status_of(sqlite_oms, number) == "on_hold"
    assert history_rows(sqlite_oms, number) == before


def _unpaid(oms: OMS) -> str:
    number = ingest_one(oms, "U-1", paid=False)  # TEA-1 x2 + 10.00 freight = 128.00
    assert status_of(oms, number) == "pending_payment"
    return number


def test_payment_with_a_negative_or_malformed_amount_is_400_and_changes_nothing(
        sqlite_oms: OMS, api: ApiServer) -> None:
    number = _unpaid(sqlite_oms)
    before = history_rows(sqlite_oms, number)
    cases = [
        ({"amount": "-128.00", "transaction_id": "T-1"}, "negative"),
        ({"amount": "12.3.4", "transaction_id": "T-1"}, "'amount'"),
        ({"amount": "1.001", "transaction_id": "T-1"}, "decimals"),
        ({"amount": 128.0, "transaction_id": "T-1"}, "decimal string"),
        ({"amount": "NaN", "transaction_id": "T-1"}, "'amount'"),
        ({"transaction_id": "T-1"}, "'amount'"),
        ({"amount": "128.00"}, "'transaction_id'"),
        ({"amount": "128.00", "transaction_id": "  "}, "'transaction_id'"),
        ({"amount": "128.00", "transaction_id": "T" * 129}, "'transaction_id'"),
    ]
    for body, expected in cases:
        r = api.post(f"/api/orders/{number}/payments", token=SUPPORT, json_body=body)
        assert r.status == 400, body
        assert expected in r.json["detail"], (body, r.json)
    assert status_of(sqlite_oms, number) == "pending_payment"
    assert history_rows(sqlite_oms, number) == before


def test_payments_by_two_methods_pay_the_order_and_a_second_charge_is_owed_back(oms: OMS, api_any: ApiServer
                                                                                 ) -> None:
    number = _unpaid(oms)
    gift = api_any.post(f"/api/orders/{number}/payments", token=SUPPORT,
                        json_body={"amount": "100.00", "transaction_id": "GC-9", "method": "gift card"})
    assert (gift.status, gift.json["status"]) == (200, "pending_payment")   # 28.00 still owed
    r = api_any.post(f"/api/orders/{number}/payments", token=SUPPORT,
                     json_body={"amount": "28.00", "transaction_id": "PAY-9", "method": "Alipay"})
    assert (r.status, r.json["status"]) == (200, "paid")
    assert [(p["serial"], p["kind"], p["method"], p["method_detail"], p["amount"], p["provider_ref"], p["status"])
            for p in r.json["payments"]] == [
        (f"{number}-P01", "payment", "gift_card", "gift card", 10000, "GC-9", "captured"),
        (f"{number}-P02", "payment", "wallet", "Alipay", 2800, "PAY-9", "captured")]
    shown = api_any.get(f"/api/orders/{number}", token=VIEWER).json
    assert shown["payment"]["transaction_id"] == "GC-9"
    assert shown["amounts"]["paid_amount"] == 12800
    assert shown["history"][-1]["actor"].startswith("api:support:")
    # The same payment notice again is harmless; another charge of a paid order is recorded and owed back.
    again = api_any.post(f"/api/orders/{number}/payments", token=SUPPORT,
                         json_body={"amount": "28.00", "transaction_id": "PAY-9"})
    assert (again.status, again.json["status"], len(again.json["payments"])) == (200, "paid", 2)
    other = api_any.post(f"/api/orders/{number}/payments", token=SUPPORT,
                         json_body={"amount": "128.00", "transaction_id": "PAY-10", "method": "card"})
    assert (other.status, other.json["status"]) == (200, "paid")
    twice, refund = other.json["payments"][2:]
    assert (twice["serial"], twice["amount"], twice["status"]) == (f"{number}-P03", 12800, "captured")
    assert (refund["serial"], refund["kind"], refund["amount"], refund["status"], refund["refund_of"]) == (
        f"{number}-R01", "refund", 12800, "due", f"{number}-P03")
    assert "nothing is owed" in refund["reason"]
    assert api_any.get(f"/api/orders/{number}", token=VIEWER).json["amounts"]["paid_amount"] == 12800


def test_after_picking_cancel_and_intercept_ask_the_warehouse(sqlite_oms: OMS, api: ApiServer) -> None:
    numbers = [dispatched_order(sqlite_oms, "I-1"), dispatched_order(sqlite_oms, "I-2")]
    for number in numbers:
        for status in ("ACCEPTED", "PICKING"):
            r = api.post("/api/callbacks/sim_wms", token=INTEGRATION, json_body={"order_number": number,
                                                                                 "status": status})
            assert r.status == 202
    sqlite_oms.pipeline.run_until_idle()
    assert [status_of(sqlite_oms, n) for n in numbers] == ["picking", "picking"]
    r = api.post(f"/api/orders/{numbers[0]}/intercept", token=SUPPORT, json_body={"note": "address fraud"})
    assert (r.status, r.json["status"]) == (200, "intercept_requested")
    # cancel after picking has started becomes an interception request, not a cancel
    r = api.post(f"/api/orders/{numbers[1]}/cancel", token=SUPPORT)
    assert (r.status, r.json["status"]) == (200, "intercept_requested")
    topics = [m["topic"] for m in api.get(f"/api/orders/{numbers[0]}", token=VIEWER).json["messages"]]
    assert topics[-1] == "wms.intercept"


def test_a_refund_is_sent_again_only_when_the_provider_refused_it(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, "RR-1")
    api.post(f"/api/orders/{number}/cancel", token=SUPPORT, json_body={"note": "changed mind"})
    sqlite_oms.pipeline.run_until_idle()
    refunded = api.post(f"/api/payments/{number}-R01/retry", token=SUPPORT)
    assert refunded.status == 409 and "is refunded: only a refund the provider refused" in refunded.json["detail"]
    assert api.post(f"/api/payments/{number}-R01/retry", token=VIEWER).status == 403
    assert api.post("/api/payments/NOPE-R01/retry", token=SUPPORT).json["detail"] == "no refund 'NOPE-R01'"


def test_support_bins_and_restores_over_the_api(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms, "B-6")
    r = api_any.post(f"/api/orders/{number}/bin", token=SUPPORT, json_body={"note": "customer will call back"})
    assert (r.status, r.json) == (200, {"number": number, "status": "binned"})
    listed = api_any.get("/api/orders?status=binned", token=VIEWER).json["orders"]
    assert [o["number"] for o in listed] == [number]
    assert api_any.post(f"/api/orders/{number}/bin", token=VIEWER).status == 403
    assert api_any.post(f"/api/orders/{number}/bin", token=SUPPORT).status == 409
    r = api_any.post(f"/api/orders/{number}/restore", token=SUPPORT)
    assert (r.status, r.json) == (200, {"number": number, "status": "on_hold"})

"""Every path of the order state machine, end to end, on SQLite and PostgreSQL.

Orders enter through the JSON channel, the pipeline runs on a simulated clock,
and the simulated warehouse and carrier answer through the real callback path.
Each test checks what a user of the OMS relies on: the state, the history
(one row per transition, with actor and cause), the rule decisions, the stock
ledger and the notifications actually delivered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.orders.explain import explain
from oms_engine.orders.machine import IllegalTransition
from oms_engine.rules import RulesetInvalid
from oms_engine.stock.ledger import post
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import InboxMessage, Product, RawPayload
from tests.support import NO_REFUSALS, T0, build_oms, copy_rules, order_json, payload
from tests.support.pipeline import (
    assert_decisions,
    assert_history,
    assert_outbox_delivered,
    decisions,
    drive,
    drive_until_state,
    history,
    ingest_one,
    initial_stock,
    money,
    movements,
    notifications_of,
    order_row,
    plugin_state,
    reservations,
    run_stages,
    sent_files,
    status,
    stock,
    stock_after,
    table_counts,
    table_counts_url,
    topics,
    yaml_rule_names,
)

# The events of a parcel's way from the warehouse to the customer, with who reports them.
FULFIL = [("wms_accept", "accepted", "wms:sim_wms"), ("pick", "picking", "wms:sim_wms"),
          ("pack", "packed", "wms:sim_wms"), ("ship", "shipped", "wms:sim_wms")]
CARRY = [("in_transit", "in_transit", "carrier:sim_carrier"), ("in_transit", "in_transit", "carrier:sim_carrier"),
         ("out_for_delivery", "out_for_delivery", "carrier:sim_carrier")]
DELIVER = [("deliver", "delivered", "carrier:sim_carrier"), ("confirm", "completed", "timer"),
           ("close", "closed", "timer")]
ROUTE = [("route", "routed", "rules:routing"), ("dispatch", "dispatched", "connector:sim_wms")]
CREATED_PAID = [("create", "pending_payment", "channel:json"), ("pay", "paid", "channel:json")]
SHIPPED_NOTES = [("sms", "shipped"), ("sms", "out_for_delivery"), ("email", "delivered")]


@pytest.fixture
def quiet_oms(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    """Both backends, with a warehouse and carrier that never refuse: outcomes are certain."""
    o = build_oms(tmp_path, db_url, plugin_settings=NO_REFUSALS)
    yield o
    o.close()


def assert_explained(oms: OMS, number: str) -> None:
    """`explain` tells the whole story: the timeline is the history, decisions name YAML rules."""
    with oms.db.session() as s:
        story = explain(s, number)
    steps = history(oms, number)
    assert [(h["from"], h["to"], h["event"], h["actor"], h["cause"]) for h in story["history"]] == \
        [(h.from_state, h.to_state, h.event, h.actor, h.cause) for h in steps]
    assert story["status"] == steps[-1].to_state
    rows = decisions(oms, number)
    assert len(story["decisions"]) == len(rows)
    for d in story["decisions"]:
        assert d["version"] == oms.rulebook.version(d["point"])
        for f in d["fired"]:
            assert f["rule"] in yaml_rule_names(d["point"]), f


# -- 1. the happy path -------------------------------------------------------------------
def test_happy_path_from_payment_to_closed(oms: OMS) -> None:
    r = ingest_one(oms, order_json("HP-1", [("TEA-1", 2)]))
    assert r.status == "paid"
    assert reservations(oms, r.number) == [("WH-SH", "TEA-1", 2)]

    drive(oms)

    o = order_row(oms, r.number)
    assert o.status == "closed"
    assert o.warehouse == "WH-SH" and o.carrier == "sim_carrier"
    assert o.tracking_no and o.tracking_no.startswith("SIM")
    assert o.payable == o.paid_amount == 2 * 5900 + 1000 and o.refund_amount == 0
    steps = assert_history(oms, r.number, CREATED_PAID + ROUTE + FULFIL + CARRY + DELIVER)
    delivered, completed, closed = steps[-3:]
    assert completed.at - delivered.at == timedelta(days=15)
    assert closed.at - completed.at == timedelta(days=10)
    assert steps[0].at == T0

    assert_decisions(oms, r.number, [
        ("notifications", ["order-confirmed"]), ("blocking", []), ("split", []),
        ("routing", ["by-region", "fewest-parcels", "priority-list"]),
        ("notifications", ["shipped-sms"]), ("notifications", ["out-for-delivery"]),
        ("notifications", ["delivered"])])
    routing = next(d for d in decisions(oms, r.number) if d.point == "routing")
    assert routing.outcome["warehouse"] == "WH-SH" and routing.outcome["strategy"] == "region"

    assert stock(oms) == stock_after({("WH-SH", "TEA-1"): -2})
    assert movements(oms, r.number) == [("reserve", "WH-SH", "TEA-1", 0, 2), ("sale_out", "WH-SH", "TEA-1", -2, -2)]
    assert reservations(oms) == []

    # The invoice, issued as the order is paid in full, goes to the tax platform first.
    assert topics(oms, r.number) == ["tax.einvoice", "notify.order_paid", "wms.create", "carrier.register",
                                     "notify.shipped", "notify.out_for_delivery", "notify.delivered"]
    assert notifications_of(oms, r.number) == [("sms", "order_paid"), *SHIPPED_NOTES]
    files = sent_files(oms)
    shipped_sms = next(m for m in files["sms"] if m["template"] == "shipped")
    assert o.tracking_no in shipped_sms["body"] and shipped_sms["to"] == "13800000000"
    assert "128.00" in next(m for m in files["sms"] if m["template"] == "order_paid")["body"]
    assert files["email"][0]["to"] == "c-old@example.com" and r.number in files["email"][0]["subject"]
    assert_outbox_delivered(oms)
    assert_explained(oms, r.number)


# -- 2. payment timeout and late payment -----------------------------------------------------
def test_unpaid_order_is_cancelled_after_30_minutes_and_late_payment_saves_another(oms: OMS) -> None:
    lapsed = ingest_one(oms, order_json("UP-1", [("MUG-1", 3)], paid=False))
    saved = ingest_one(oms, order_json("UP-2", [("TEA-1", 1)], paid=False))
    assert lapsed.status == saved.status == "pending_payment"
    assert reservations(oms, lapsed.number) == [("WH-SH", "MUG-1", 3)]

    oms.clock.advance(timedelta(minutes=29))
    oms.pipeline.run_until_idle()
    assert status(oms, lapsed.number) == status(oms, saved.number) == "pending_payment"
    payable = order_row(oms, saved.number).payable
    assert oms.commands.pay(saved.number, 100, "TXN-SHORT", method="points") == "pending_payment"  # 1.00 of it
    assert oms.commands.pay(saved.number, payable - 100, "TXN-LATE") == "paid"
    assert oms.commands.pay(saved.number, payable - 100, "TXN-LATE") == "paid"  # the same notice twice

    drive(oms)

    assert status(oms, lapsed.number) == "cancelled"
    steps = assert_history(oms, lapsed.number, [("create", "pending_payment", "channel:json"),
                                                ("payment_timeout", "cancelled", "timer")])
    assert steps[-1].at == T0 + timedelta(minutes=30)
    assert order_row(oms, lapsed.number).refund_amount == 0
    assert movements(oms, lapsed.number) == [("reserve", "WH-SH", "MUG-1", 0, 3),
                                             ("release", "WH-SH", "MUG-1", 0, -3)]
    assert notifications_of(oms, lapsed.number) == [("email", "cancelled")]
    email = next(m for m in sent_files(oms)["email"] if m["order"] == lapsed.number)
    assert "refund" not in email["body"].lower()  # nothing was paid, nothing is refunded
    # Paid after all, too late: the money is recorded and owed back, not refused.
    late = order_row(oms, lapsed.number).payable
    assert oms.commands.pay(lapsed.number, late, "TXN-TOO-LATE") == "cancelled"
    with oms.db.read() as s:
        paid, back = explain(s, lapsed.number)["payments"]
    assert (paid["provider_ref"], paid["amount"], back["kind"], back["amount"], back["status"]) == (
        "TXN-TOO-LATE", late, "refund", late, "due")
    assert back["refund_of"] == paid["serial"] and "already cancelled" in back["reason"]

    assert status(oms, saved.number) == "closed"
    steps = assert_history(oms, saved.number, [("create", "pending_payment", "channel:json"),
                                               ("pay", "paid", "payment"), *ROUTE, *FULFIL, *CARRY, *DELIVER])
    assert "TXN-LATE" in steps[1].cause and steps[1].at == T0 + timedelta(minutes=29)
    o = order_row(oms, saved.number)
    assert o.payment_txn == "TXN-SHORT" and o.paid_amount == payable     # paid by its first payment and then
    with oms.db.read() as s:
        assert [(p["serial"], p["method"], p["provider_ref"], p["amount"]) for p in explain(s, saved.number)[
            "payments"]] == [(f"{saved.number}-P01", "points", "TXN-SHORT", 100),
                             (f"{saved.number}-P02", "other", "TXN-LATE", payable - 100)]
    assert notifications_of(oms, saved.number) == [("sms", "order_paid"), *SHIPPED_NOTES]

    drive(oms)    # the late payment's refund goes to the payment provider
    with oms.db.read() as s:
        assert [p["status"] for p in explain(s, lapsed.number)["payments"]] == ["captured", "refunded"]
    assert stock(oms) == stock_after({("WH-SH", "TEA-1"): -1})
    assert reservations(oms) == []
    assert_outbox_delivered(oms)
    for n in (lapsed.number, saved.number):
        assert_explained(oms, n)


# -- 3. screening holds ----------------------------------------------------------------------
def test_blacklisted_customer_is_held_then_released_or_rejected(oms: OMS) -> None:
    kept = ingest_one(oms, order_json("BL-1", [("TEA-1", 1)], customer="C-BAD"))
    refused = ingest_one(oms, order_json("BL-2", [("MUG-1", 2)], customer="C-BAD"))
    drive(oms)

    for r in (kept, refused):
        o = order_row(oms, r.number)
        assert o.status == "on_hold"
        assert o.hold_stage == "screening" and o.hold_reason == "customer is on the blacklist"
        blocking = next(d for d in decisions(oms, r.number) if d.point == "blocking")
        assert [f["rule"] for f in blocking.fired] == ["blacklisted-customer"]
        assert blocking.outcome == {"hold": True, "reasons": ["customer is on the blacklist"]}
        assert o.warehouse is None

    assert oms.commands.release(kept.number, actor="ops:alice", note="known customer, checked") == "paid"
    assert oms.commands.reject(refused.number, actor="ops:bob", note="fraud confirmed") == "cancelled"
    with pytest.raises(IllegalTransition):
        oms.commands.release(refused.number, actor="ops:alice")
    drive(oms)

    held = [*CREATED_PAID, ("hold", "on_hold", "rules:blocking")]
    steps = assert_history(oms, kept.number, [*held, ("release", "paid", "ops:alice"),
                                              *ROUTE, *FULFIL, *CARRY, *DELIVER])
    assert steps[3].cause == "known customer, checked"
    assert steps[2].cause == "customer is on the blacklist"
    o = order_row(oms, kept.number)
    assert o.hold_reason is None and o.hold_stage is None
    assert_decisions(oms, kept.number, [
        ("notifications", ["order-confirmed"]), ("blocking", ["blacklisted-customer"]), ("split", []),
        ("routing", ["by-region", "fewest-parcels", "priority-list"]),
        ("notifications", ["shipped-sms"]), ("notifications", ["out-for-delivery"]),
        ("notifications", ["delivered"])])
    assert notifications_of(oms, kept.number) == [("sms", "order_paid"), *SHIPPED_NOTES]

    steps = assert_history(oms, refused.number, [*held, ("reject", "cancelled", "ops:bob")])
    assert steps[-1].cause == "fraud confirmed"
    o = order_row(oms, refused.number)
    assert o.refund_amount == o.payable == o.paid_amount == 2 * 3900 + 1000
    assert o.hold_reason == "customer is on the blacklist"  # the reason stays on the cancelled order
    assert movements(oms, refused.number) == [("reserve", "WH-SH", "MUG-1", 0, 2),
                                              ("release", "WH-SH", "MUG-1", 0, -2)]
    assert notifications_of(oms, refused.number) == [("sms", "order_paid"), ("email", "cancelled")]
    email = next(m for m in sent_files(oms)["email"] if m["order"] == refused.number)
    assert "88.00" in email["body"]  # the refund the customer is told about

    assert stock(oms) == stock_after({("WH-SH", "TEA-1"): -1})
    assert reservations(oms) == []
    assert_outbox_delivered(oms)
    for r in (kept, refused):
        assert_explained(oms, r.number)


# -- 4. intake holds: stored, never dropped ---------------------------------------------------
def test_intake_holds_are_stored_with_their_reason_and_released_when_fixed(oms: OMS) -> None:
    unmapped_order = order_json("IH-1", [("TEA-1", 1)])
    unmapped_order["lines"].append({"sku": "NEW-1", "quantity": 1, "unit_price": "12.00"})
    unmapped_order["payment"]["amount"] = "81.00"
    unmapped = ingest_one(oms, unmapped_order)
    disagree = ingest_one(oms, order_json("IH-2", [("TEA-1", 1)], declared_total="60.00"))
    short = ingest_one(oms, order_json("IH-3", [("RARE-1", 2)]))

    expected_reasons = {unmapped.number: "unmapped SKU 'NEW-1'",
                        disagree.number: "totals disagree: channel says 60.00 CNY, lines add up to 69.00 CNY",
                        short.number: "insufficient stock for SKU 'RARE-1'"}
    drive(oms)
    for number, reason in expected_reasons.items():
        o = order_row(oms, number)
        assert (o.status, o.hold_stage, o.hold_reason) == ("on_hold", "intake", reason)
        steps = assert_history(oms, number, [("create", "pending_payment", "channel:json"),
                                             ("hold", "on_hold", "oms")])
        assert steps[-1].cause == reason
    assert order_row(oms, unmapped.number).payable == 8100
    assert reservations(oms, unmapped.number) == reservations(oms, disagree.number) == []

    with pytest.raises(CommandError, match=r"NEW-1.*not in the catalogue"):
        oms.commands.release(unmapped.number, actor="ops:carol")
    with pytest.raises(CommandError, match="insufficient stock for SKU 'RARE-1'"):
        oms.commands.release(short.number, actor="ops:carol")
    assert status(oms, unmapped.number) == status(oms, short.number) == "on_hold"
    assert [h.event for h in history(oms, unmapped.number)] == ["create", "hold"]

    with oms.db.session() as s:
        s.add(Product(sku="NEW-1", name="New", price=1200, currency="CNY", merchant="M-01", weight_g=100,
                      attributes={"category": "home"}))
        s.flush()
        post(s, Movement.PURCHASE_RECEIPT, "WH-SH", "NEW-1", 5, document="po:new-1", at=oms.clock.now())
    assert oms.commands.release(unmapped.number, actor="ops:carol") == "paid"
    assert oms.commands.release(disagree.number, actor="ops:carol", note="channel rounding") == "paid"
    assert oms.commands.cancel(short.number, actor="ops:carol", reason="cannot source") == "cancelled"
    drive(oms)

    intake_hold = [("create", "pending_payment", "channel:json"), ("hold", "on_hold", "oms"),
                   ("release", "paid", "ops:carol")]
    for number in (unmapped.number, disagree.number):
        assert_history(oms, number, intake_hold + ROUTE + FULFIL + CARRY + DELIVER)
        # an intake hold is screened like any paid order once released
        assert [d.point for d in decisions(oms, number)][:3] == ["blocking", "split", "routing"]
    assert_history(oms, short.number, [("create", "pending_payment", "channel:json"), ("hold", "on_hold", "oms"),
                                       ("cancel", "cancelled", "ops:carol")])
    assert order_row(oms, short.number).refund_amount == order_row(oms, short.number).payable
    assert sum(m[4] for m in movements(oms, short.number)) == 0

    assert stock(oms) == {**stock_after({("WH-SH", "TEA-1"): -2}), ("WH-SH", "NEW-1"): (4, 0)}
    assert reservations(oms) == []
    assert_outbox_delivered(oms)
    for number in expected_reasons:
        assert_explained(oms, number)


# -- 5. split orders -------------------------------------------------------------------------
COLD_CHAIN_WAREHOUSES = {"WH-SH", "WH-GZ"}


def test_cold_chain_split_children_ship_apart_and_parent_completes(oms: OMS) -> None:
    r = ingest_one(oms, order_json("SP-1", [("ICE-1", 1), ("TEA-1", 1), ("MUG-1", 1)], coupon="7.77"))
    drive(oms)

    parent = order_row(oms, r.number)
    assert parent.status == "closed"
    assert parent.payable == 2900 + 5900 + 3900 + 1000 - 777 == parent.paid_amount
    assert sum(ln.discount for ln in parent.lines) == 777
    children = [order_row(oms, c.number) for c in parent.children]
    assert [c.number for c in children] == [f"{r.number}-1", f"{r.number}-2"]
    cold, normal = children
    assert [ln.sku for ln in cold.lines] == ["ICE-1"]
    assert sorted(ln.sku for ln in normal.lines) == ["MUG-1", "TEA-1"]
    assert cold.warehouse in COLD_CHAIN_WAREHOUSES
    # not a cent lost: amounts of the children add up to the parent's exactly
    assert sum(c.payable for c in children) == parent.payable
    assert sum(c.coupon for c in children) == parent.coupon == 777
    assert sum(c.freight for c in children) == parent.freight
    assert sum(c.goods for c in children) == parent.goods
    for c in children:
        assert sum(ln.discount for ln in c.lines) == c.coupon + c.gift_card + c.points
        assert c.payable == c.goods + c.freight + c.tax - c.coupon - c.gift_card - c.points
        assert c.parent_id == parent.id and c.payment_txn == parent.payment_txn

    assert_history(oms, r.number, [*CREATED_PAID, ("split", "split", "rules:split"),
                                   ("children_done", "completed", "oms"), ("close", "closed", "timer")])
    done_at = history(oms, r.number)[3].at
    for c in children:
        steps = assert_history(oms, c.number, [("create", "paid", "rules:split"), *ROUTE, *FULFIL, *CARRY, *DELIVER])
        assert steps[0].cause == f"split from {r.number}"
        assert notifications_of(oms, c.number) == SHIPPED_NOTES
    assert done_at == max(history(oms, c.number)[-2].at for c in children)  # when the last child completed
    split_decision = next(d for d in decisions(oms, r.number) if d.point == "split")
    assert [f["rule"] for f in split_decision.fired] == ["cold-chain-apart"]
    assert split_decision.outcome["children"] == [c.number for c in children]
    cold_routing = next(d for d in decisions(oms, cold.number) if d.point == "routing")
    assert next(f["rule"] for f in cold_routing.fired) == "cold-chain-from-shanghai"
    assert notifications_of(oms, r.number) == [("sms", "order_paid")]

    assert stock(oms) == stock_after({(cold.warehouse, "ICE-1"): -1, (normal.warehouse, "TEA-1"): -1,
                                      (normal.warehouse, "MUG-1"): -1})
    assert reservations(oms) == []
    assert_outbox_delivered(oms)
    for n in (r.number, *(c.number for c in children)):
        assert_explained(oms, n)


@pytest.mark.parametrize(("coupon", "gift_card", "points"), [("7.77", "0.00", "0.00"), ("0.01", "3.33", "0.02")])
def test_split_apportions_every_discount_to_the_cent(oms: OMS, coupon: str, gift_card: str, points: str) -> None:
    discount = sum(int(v.replace(".", "")) for v in (coupon, gift_card, points))
    payable = 2900 + 5900 + 3 * 500 + 1000 - discount
    r = ingest_one(oms, order_json("SP-C", [("ICE-1", 1), ("TEA-1", 1), ("PEN-1", 3)], coupon=coupon,
                                   gift_card=gift_card, points=points,
                                   payment={"transaction_id": "PAY-SP-C", "amount": money(payable)}))
    parent = order_row(oms, r.number)
    assert (parent.status, parent.payable) == ("paid", payable)
    # A line's discount is its share of the promotions; gift card and points are payments of the order.
    assert sum(ln.discount for ln in parent.lines) == int(coupon.replace(".", ""))
    with oms.db.session() as s:
        paid = {p["method"]: p["amount"] for p in explain(s, r.number)["payments"]}
    assert paid == {"other": payable, **{m: int(v.replace(".", "")) for m, v in (("gift_card", gift_card),
                                                                                 ("points", points)) if v != "0.00"}}
    run_stages(oms, "screen", "split")
    parent = order_row(oms, r.number)
    children = [order_row(oms, c.number) for c in parent.children]
    assert parent.status == "split" and len(children) == 2
    assert sum(c.payable for c in children) == parent.payable
    for field in ("coupon", "gift_card", "points", "freight", "goods"):
        assert sum(getattr(c, field) for c in children) == getattr(parent, field), field
    for c in children:
        assert sum(ln.discount for ln in c.lines) == c.coupon, c.number
        assert 0 <= c.gift_card + c.points <= c.goods + c.freight + c.tax - c.coupon, c.number
        assert all(0 <= ln.discount <= ln.goods for ln in c.lines)
    by_sku = {ln.sku: ln.discount for c in children for ln in c.lines}
    assert by_sku == {ln.sku: ln.discount for ln in parent.lines}  # each line's share follows it


def test_split_parent_is_cancelled_when_every_child_is_cancelled(oms: OMS) -> None:
    r = ingest_one(oms, order_json("SP-2", [("ICE-1", 2), ("TEA-1", 1)]))
    drive_until_state(oms, f"{r.number}-2", "dispatched")
    assert status(oms, r.number) == "split"
    assert {status(oms, f"{r.number}-{i}") for i in (1, 2)} == {"dispatched"}

    assert oms.commands.cancel(r.number, actor="support:dan", reason="customer asked") == "split"
    drive(oms)

    assert_history(oms, r.number, [*CREATED_PAID, ("split", "split", "rules:split"),
                                   ("children_cancelled", "cancelled", "oms")])
    for i in (1, 2):
        child = f"{r.number}-{i}"
        steps = assert_history(oms, child, [("create", "paid", "rules:split"), *ROUTE,
                                            ("cancel", "cancelled", "support:dan")])
        assert steps[-1].cause == "customer asked"
        assert "wms.cancel" in topics(oms, child)
        assert notifications_of(oms, child) == [("sms", "part_cancelled")]
        assert plugin_state(oms, "sim_wms", child)["status"] == "CANCELLED"
    assert notifications_of(oms, r.number) == [("sms", "order_paid"), ("email", "cancelled")]
    assert stock(oms) == initial_stock()
    assert reservations(oms) == []
    assert_outbox_delivered(oms)


def test_fully_cancelled_split_order_refunds_the_payment_once(oms: OMS) -> None:
    r = ingest_one(oms, order_json("SP-3", [("ICE-1", 1), ("TEA-1", 1)]))
    run_stages(oms, "screen", "split")
    oms.commands.cancel(r.number, actor="support:dan")
    drive(oms)
    parent = order_row(oms, r.number)
    assert parent.status == "cancelled"
    children = [order_row(oms, c.number) for c in parent.children]
    assert all(c.status == "cancelled" for c in children)
    refunded = parent.refund_amount + sum(c.refund_amount for c in children)
    assert refunded == parent.paid_amount, (
        f"paid {parent.paid_amount}, refunds recorded: parent {parent.refund_amount}, "
        f"children {[c.refund_amount for c in children]}")


def test_partly_cancelled_split_order_completes_and_refunds_the_cancelled_part(quiet_oms: OMS) -> None:
    oms = quiet_oms
    r = ingest_one(oms, order_json("SP-4", [("ICE-1", 1), ("TEA-1", 1)]))
    run_stages(oms, "screen", "split")
    cold = f"{r.number}-1"
    assert oms.commands.cancel(cold, actor="support:dan") == "cancelled"
    drive(oms)
    parent = order_row(oms, r.number)
    assert [h.event for h in history(oms, r.number)] == ["create", "pay", "split", "children_done", "close"]
    assert status(oms, f"{r.number}-2") == "closed"
    cancelled = order_row(oms, cold)
    assert cancelled.refund_amount == cancelled.payable
    assert parent.refund_amount + sum(order_row(oms, c.number).refund_amount for c in parent.children) \
        == cancelled.payable
    assert stock(oms) == stock_after({("WH-SH", "TEA-1"): -1})
    assert_outbox_delivered(oms)


# -- 6. cancel before picking ------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["paid", "routed", "dispatched", "accepted"])
def test_cancel_before_picking_releases_stock_and_tells_the_warehouse(oms: OMS, stage: str) -> None:
    r = ingest_one(oms, order_json(f"CX-{stage}", [("MUG-1", 2)]))
    if stage == "routed":
        run_stages(oms, "screen", "split", "route")
    elif stage != "paid":
        drive_until_state(oms, r.number, stage)
    assert status(oms, r.number) == stage

    assert oms.commands.cancel(r.number, actor="support:eve", reason="changed mind") == "cancelled"
    drive(oms)

    steps = history(oms, r.number)
    assert [h.event for h in steps][-1] == "cancel"
    assert (steps[-1].from_state, steps[-1].actor, steps[-1].cause) == (stage, "support:eve", "changed mind")
    assert len(steps) == {"paid": 3, "routed": 4, "dispatched": 5, "accepted": 6}[stage]
    o = order_row(oms, r.number)
    assert o.status == "cancelled" and o.refund_amount == o.payable == 2 * 3900 + 1000
    assert stock(oms) == initial_stock()
    assert reservations(oms) == []
    kinds = [m[0] for m in movements(oms, r.number)]
    assert "sale_out" not in kinds and kinds[-1] == "release"
    assert ("wms.cancel" in topics(oms, r.number)) == (stage in ("dispatched", "accepted"))
    assert notifications_of(oms, r.number) == [("sms", "order_paid"), ("email", "cancelled")]
    # the warehouse never works on a cancelled order
    wms_doc = plugin_state(oms, "sim_wms", r.number)
    assert wms_doc is None or wms_doc["status"] == "CANCELLED", wms_doc
    with oms.db.session() as s:
        rejected = [i.outcome for i in s.scalars(select(InboxMessage).where(InboxMessage.status == "rejected"))]
    assert rejected == []
    assert_outbox_delivered(oms)
    assert_explained(oms, r.number)


# -- 7. interception ---------------------------------------------------------------------------
def test_cancel_while_picking_is_an_interception_that_the_warehouse_confirms(oms: OMS) -> None:
    r = ingest_one(oms, order_json("IC-1", [("TEA-1", 3)]))
    drive_until_state(oms, r.number, "picking")
    assert oms.commands.cancel(r.number, actor="support:fay", reason="wrong address") == "intercept_requested"
    assert topics(oms, r.number)[-1] == "wms.intercept"
    drive(oms)

    steps = assert_history(oms, r.number, CREATED_PAID + ROUTE + FULFIL[:2] + [
        ("intercept", "intercept_requested", "support:fay"), ("intercept_confirmed", "cancelled", "wms:sim_wms")])
    assert steps[-2].cause == "wrong address"
    o = order_row(oms, r.number)
    assert o.refund_amount == o.payable
    assert stock(oms) == initial_stock()
    assert reservations(oms) == []
    assert "sale_out" not in [m[0] for m in movements(oms, r.number)]
    assert notifications_of(oms, r.number) == [("sms", "order_paid"), ("email", "cancelled")]
    assert_outbox_delivered(oms)
    assert_explained(oms, r.number)


def test_interception_refused_on_the_dock_goes_back_to_packed_and_ships(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, plugin_settings={"sim_wms": {"dock_refusal_rate": 1.0},
                                                       "sim_carrier": {"refusal_rate": 0.0}})
    try:
        r = ingest_one(oms, order_json("IC-2", [("TEA-1", 1)]))
        drive_until_state(oms, r.number, "packed")
        assert oms.commands.cancel(r.number, actor="support:fay") == "intercept_requested"
        drive(oms)
        assert_history(oms, r.number, CREATED_PAID + ROUTE + FULFIL[:3] + [
            ("intercept", "intercept_requested", "support:fay"), ("intercept_refused", "packed", "wms:sim_wms"),
            ("ship", "shipped", "wms:sim_wms")] + CARRY + DELIVER)
        o = order_row(oms, r.number)
        assert o.refund_amount == 0 and o.tracking_no
        assert stock(oms) == stock_after({("WH-SH", "TEA-1"): -1})
        assert notifications_of(oms, r.number) == [("sms", "order_paid"), *SHIPPED_NOTES]
        assert_outbox_delivered(oms)
        assert_explained(oms, r.number)
    finally:
        oms.close()


# -- 8. refused at delivery ----------------------------------------------------------------------
def test_refused_parcel_returns_to_stock_and_closes(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, plugin_settings={"sim_carrier": {"refusal_rate": 1.0}})
    try:
        r = ingest_one(oms, order_json("RF-1", [("TEA-1", 2)]))
        drive(oms)
        steps = assert_history(oms, r.number, CREATED_PAID + ROUTE + FULFIL + CARRY + [
            ("refuse", "refused", "carrier:sim_carrier"), ("returned", "closed", "carrier:sim_carrier")])
        assert "refused" in steps[-2].cause
        assert movements(oms, r.number) == [("reserve", "WH-SH", "TEA-1", 0, 2), ("sale_out", "WH-SH", "TEA-1", -2, -2),
                                            ("customer_return", "WH-SH", "TEA-1", 2, 0)]
        assert stock(oms) == initial_stock()
        assert reservations(oms) == []
        o = order_row(oms, r.number)
        # The money goes back with the parcel, less its freight (rules/refunds.yaml: the parcel travelled).
        assert o.payable == o.paid_amount and o.refund_amount == o.payable - o.freight == o.payable - 1000
        assert notifications_of(oms, r.number) == [("sms", "order_paid"), ("sms", "shipped"),
                                                   ("sms", "out_for_delivery")]
        assert_outbox_delivered(oms)
        assert_explained(oms, r.number)
    finally:
        oms.close()


# -- 9. idempotent intake -------------------------------------------------------------------------
def test_the_same_payload_twice_is_one_order(oms: OMS) -> None:
    body = order_json("DUP-1", [("MUG-1", 1)])
    first = ingest_one(oms, body)
    second = ingest_one(oms, body)
    assert not first.duplicate and second.duplicate
    assert second.number == first.number
    counts = table_counts(oms)
    assert counts["orders"] == 1 and counts["raw_payloads"] == 2
    assert reservations(oms, first.number) == [("WH-SH", "MUG-1", 1)]
    assert [h.event for h in history(oms, first.number)] == ["create", "pay"]
    drive(oms)
    third = ingest_one(oms, body)  # a late redelivery changes nothing either
    assert third.duplicate and third.number == first.number and third.status == "closed"
    assert table_counts(oms)["orders"] == 1
    assert stock(oms) == stock_after({("WH-SH", "MUG-1"): -1})
    assert notifications_of(oms, first.number) == [("sms", "order_paid"), *SHIPPED_NOTES]
    assert_outbox_delivered(oms)


# -- 10. bad input leaves the database unchanged ---------------------------------------------------
def test_illegal_transition_names_order_state_and_event_and_changes_nothing(oms: OMS) -> None:
    r = ingest_one(oms, order_json("IL-1", [("TEA-1", 1)]))
    before, stock_before = table_counts(oms), stock(oms)
    with pytest.raises(IllegalTransition) as err:
        oms.commands.intercept(r.number, actor="support:gus")
    assert (err.value.order, err.value.state, err.value.event) == (r.number, "paid", "intercept")
    msg = str(err.value)
    assert r.number in msg and "'paid'" in msg and "'intercept'" in msg
    with pytest.raises(IllegalTransition, match="reject"):
        oms.commands.reject(r.number, actor="support:gus")
    with pytest.raises(IllegalTransition, match="release"):
        oms.commands.release(r.number, actor="support:gus")
    assert table_counts(oms) == before and stock(oms) == stock_before
    assert status(oms, r.number) == "paid"


@pytest.mark.parametrize(("body", "field"), [
    (b'{"external_id": "BAD-1", "lines": [', "invalid JSON"),
    (payload(order_json("BAD-2", [("TEA-1", -1)])), "lines.0.quantity"),
    (payload(order_json("BAD-3", [("TEA-1", 1)], freight="1.234")), "freight"),
    (payload({**order_json("BAD-4", [("TEA-1", 1)]),
                 "payment": {"transaction_id": "P-4", "amount": "69.001"}}), "payment.amount"),
    (payload({**order_json("BAD-5", [("TEA-1", 1)]), "currency": "X"}), "currency"),
])
def test_malformed_payload_is_refused_with_the_field_and_stores_no_order(oms: OMS, body: bytes, field: str) -> None:
    ingest_one(oms, order_json("OK-1", [("TEA-1", 1)]))
    before, stock_before = table_counts(oms), stock(oms)
    (result,) = oms.intake.ingest("json", body)
    assert result.number is None and result.error and field in result.error, result
    if "1.234" in body.decode(errors="replace"):
        assert "1.234" in result.error
    after = table_counts(oms)
    assert after["raw_payloads"] == before["raw_payloads"] + 1  # the raw payload is kept, on purpose
    assert {k: v for k, v in after.items() if k != "raw_payloads"} == \
        {k: v for k, v in before.items() if k != "raw_payloads"}
    assert stock(oms) == stock_before
    with oms.db.session() as s:
        raw = s.scalars(select(RawPayload).order_by(RawPayload.id.desc())).first()
        assert raw is not None and raw.body == body and raw.outcome


def test_broken_rules_are_refused_with_file_and_line(tmp_path: Path, db_url: str) -> None:
    rules = copy_rules(tmp_path / "broken")
    path = rules / "blocking.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[8].strip() == "customer.blacklisted: true"
    lines[8] = "      customer.blacklisted: true: false\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RulesetInvalid) as err:
        build_oms(tmp_path, db_url, rules_dir=rules)
    assert f"{path}:9" in str(err.value)

    rules = copy_rules(tmp_path / "typo")
    path = rules / "split.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{strategy: by_attribute, attribute: cold_chain}",
                                 "{strategy: by_atribute, attribute: cold_chain}"), encoding="utf-8")
    with pytest.raises(RulesetInvalid) as err:
        build_oms(tmp_path, db_url, rules_dir=rules)
    msg = str(err.value)
    assert f"{path}:13" in msg and "cold-chain-apart" in msg and "by_atribute" in msg
    assert table_counts_url(db_url).get("orders", 0) == 0


def test_failed_reload_keeps_the_old_rules_deciding(tmp_path: Path, db_url: str) -> None:
    rules = copy_rules(tmp_path)
    oms = build_oms(tmp_path, db_url, rules_dir=rules)
    try:
        old = {p: oms.rulebook.version(p) for p in ("blocking", "split", "routing", "notifications")}
        blocking = rules / "blocking.yaml"
        original = blocking.read_text(encoding="utf-8")
        # a valid edit to one file and a broken edit to another: neither may take effect
        blocking.write_text(original.replace("reason: customer is on the blacklist",
                                             "reason: blacklisted (v2)"), encoding="utf-8")
        split = rules / "split.yaml"
        split_text = split.read_text(encoding="utf-8")
        split.write_text(split_text.replace("{strategy: by_attribute, attribute: cold_chain}",
                                            "{strategy: by_atribute, attribute: cold_chain}"), encoding="utf-8")
        with pytest.raises(RulesetInvalid) as err:
            oms.rulebook.reload()
        assert f"{split}:13" in str(err.value) and "cold-chain-apart" in str(err.value)
        assert {p: oms.rulebook.version(p) for p in old} == old

        held = ingest_one(oms, order_json("RL-1", [("ICE-1", 1), ("TEA-1", 1)], customer="C-BAD"))
        oms.pipeline.run_until_idle()
        o = order_row(oms, held.number)
        assert (o.status, o.hold_reason) == ("on_hold", "customer is on the blacklist")
        d = next(d for d in decisions(oms, held.number) if d.point == "blocking")
        assert d.version == old["blocking"]
        oms.commands.release(held.number, actor="ops:alice")
        oms.pipeline.run_until_idle()
        d = next(d for d in decisions(oms, held.number) if d.point == "split")
        assert [f["rule"] for f in d.fired] == ["cold-chain-apart"] and d.version == old["split"]
        assert status(oms, held.number) == "split"

        lines = original.splitlines(keepends=True)
        lines[8] = "      customer.blacklisted: true: false\n"
        blocking.write_text("".join(lines), encoding="utf-8")
        split.write_text(split_text, encoding="utf-8")
        with pytest.raises(RulesetInvalid, match=re.escape(f"{blocking}:9")):
            oms.rulebook.reload()
        assert oms.rulebook.version("blocking") == old["blocking"]

        # fixed: the edit takes effect, and decisions carry the new version
        blocking.write_text(original.replace("reason: customer is on the blacklist",
                                             "reason: blacklisted (v2)"), encoding="utf-8")
        oms.rulebook.reload()
        assert oms.rulebook.version("blocking") != old["blocking"]
        assert oms.rulebook.version("split") == old["split"]
        again = ingest_one(oms, order_json("RL-2", [("TEA-1", 1)], customer="C-BAD"))
        oms.pipeline.run_until_idle()
        assert order_row(oms, again.number).hold_reason == "blacklisted (v2)"
        d = next(d for d in decisions(oms, again.number) if d.point == "blocking")
        assert d.version == oms.rulebook.version("blocking")
    finally:
        oms.close()

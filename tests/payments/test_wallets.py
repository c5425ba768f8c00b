"""Gift cards and points are means of payment with balances: an order redeeming them moves the balance, a refund
credits it back at once, an order redeeming more than the balance waits for a person, the channel's own cards
and points are recorded as payments and refunded through the provider; invoices are for what the customer paid
by every means."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.invoices.issuing import balance
from oms_engine.orders.explain import explain
from oms_engine.payments import wallets
from oms_engine.storage.models import Order
from tests.support import order_json
from tests.support.cli import Cli
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row


def _credit(oms: OMS, kind: str, holder: str, amount: int) -> None:
    with oms.db.session() as s:
        wallets.credit(s, kind, holder, "CNY", amount, oms.clock.now(), actor="test")


def _account(oms: OMS, kind: str, holder: str) -> dict[str, Any]:
    with oms.db.read() as s:
        return wallets.account(s, kind, holder, "CNY")


def _payments(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return explain(s, number)["payments"]


def _order(ext: str, *, gift: int = 0, code: str | None = None, points: int = 0, customer: str = "C-OLD",
           lines: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    order = order_json(ext, lines or [("TEA-1", 2)], customer=customer)
    cash = int(order["payment"]["amount"].replace(".", "")) - gift - points
    order["payment"]["amount"] = f"{cash // 100}.{cash % 100:02d}"
    order["gift_card"], order["points"] = f"{gift // 100}.{gift % 100:02d}", f"{points // 100}.{points % 100:02d}"
    if code is not None:
        order["gift_card_code"] = code
    return order


def _balanced(oms: OMS, number: str) -> None:
    with oms.db.read() as s:
        order = s.query(Order).filter_by(number=number).one()
        invoiced, kept = balance(s, order)
    assert invoiced == kept


def test_an_order_paying_with_a_gift_card_and_points_moves_their_balances(oms: OMS) -> None:
    _credit(oms, "gift_card", "GC-100", 5000)
    _credit(oms, "points", "C-PTS", 800)
    r = ingest_one(oms, _order("WL-1", gift=2000, code="GC-100", points=500, customer="C-PTS"))
    o = order_row(oms, r.number)
    assert o.status == "paid"
    rows = _payments(oms, r.number)
    assert [(p["serial"], p["method"], p["amount"], p["provider_ref"]) for p in rows] == [
        (f"{r.number}-P01", "other", o.payable, "PAY-WL-1"),
        (f"{r.number}-P02", "gift_card", 2000, "gift_card:GC-100"),
        (f"{r.number}-P03", "points", 500, "points:C-PTS")]
    assert _account(oms, "gift_card", "GC-100")["balance"] == 3000
    points = _account(oms, "points", "C-PTS")
    assert points["balance"] == 300
    assert [(m["kind"], m["amount"], m["balance_after"], m["payment"]) for m in points["movements"]] == [
        ("issue", 800, 800, None), ("redeem", -500, 300, f"{r.number}-P03")]
    # Promotions only are discounts; the invoice is for what the customer paid by every means.
    assert sum(ln.discount for ln in o.lines) == 0
    with oms.db.read() as s:
        [inv] = explain(s, r.number)["invoices"]
    assert inv["amount"] == o.payable + 2000 + 500
    _balanced(oms, r.number)


def test_cancelling_credits_the_gift_card_and_points_back_at_once_and_sends_the_rest_to_the_provider(
        oms: OMS) -> None:
    _credit(oms, "gift_card", "GC-200", 5000)
    _credit(oms, "points", "C-PT2", 1000)
    r = ingest_one(oms, _order("WL-2", gift=1500, code="GC-200", points=1000, customer="C-PT2"))
    cash = order_row(oms, r.number).payable
    assert oms.commands.cancel(r.number, actor="support:ann", reason="changed mind") == "cancelled"
    refunds = [(p["refund_of"], p["method"], p["amount"], p["status"]) for p in _payments(oms, r.number)
               if p["kind"] == "refund"]
    # The latest payment first: points, gift card, then the card.
    assert refunds == [(f"{r.number}-P03", "points", 1000, "refunded"),
                       (f"{r.number}-P02", "gift_card", 1500, "refunded"),
                       (f"{r.number}-P01", "other", cash, "due")]
    assert _account(oms, "gift_card", "GC-200")["balance"] == 5000
    assert _account(oms, "points", "C-PT2")["balance"] == 1000
    assert order_row(oms, r.number).refund_amount == cash + 2500
    drive(oms)
    assert {p["status"] for p in _payments(oms, r.number) if p["kind"] == "refund"} == {"refunded"}
    _balanced(oms, r.number)


def test_redeeming_more_than_the_balance_holds_the_order_for_a_person(oms: OMS) -> None:
    _credit(oms, "gift_card", "GC-300", 1000)
    r = ingest_one(oms, _order("WL-3", gift=2500, code="GC-300"))
    o = order_row(oms, r.number)
    assert o.status == "on_hold"
    assert o.hold_reason == "gift card GC-300 held 10.00 CNY, the order redeems 25.00 CNY"
    assert _account(oms, "gift_card", "GC-300")["balance"] == -1500
    # A person tops the card up to what the channel took, and lets the order go.
    with oms.db.session() as s:
        wallets.credit(s, "gift_card", "GC-300", "CNY", 1500, oms.clock.now(), actor="support:ann",
                       note="the channel redeemed a top-up we never saw", adjust=True)
    assert oms.commands.release(r.number, actor="support:ann") == "paid"
    assert _account(oms, "gift_card", "GC-300")["balance"] == 0


def test_the_channels_own_gift_card_is_a_payment_refunded_through_the_provider(oms: OMS) -> None:
    r = ingest_one(oms, _order("WL-4", gift=700))
    [_, gift] = _payments(oms, r.number)
    assert (gift["method"], gift["method_detail"], gift["amount"]) == ("gift_card", "the channel's gift_card", 700)
    with pytest.raises(CommandError, match="no gift card account 'json'"):
        _account(oms, "gift_card", "json")
    assert oms.commands.cancel(r.number, actor="support:ann") == "cancelled"
    refunds = [p for p in _payments(oms, r.number) if p["kind"] == "refund"]
    assert [(p["method"], p["status"]) for p in refunds] == [("gift_card", "due"), ("other", "due")]
    drive(oms)
    assert [p["status"] for p in _payments(oms, r.number) if p["kind"] == "refund"] == ["refunded", "refunded"]


def test_an_after_sales_refund_goes_back_to_the_points_first_when_they_paid_last(quiet: OMS) -> None:
    oms = quiet
    _credit(oms, "points", "C-PT5", 2000)
    r = ingest_one(oms, _order("WL-5", points=600, customer="C-PT5"))
    drive_until_state(oms, r.number, "delivered")
    line = order_row(oms, r.number).lines[0]
    case = oms.aftersales.open(r.number, "refund_only", {1: 1}, "one was broken", actor="customer:C-PT5")
    case = oms.aftersales.act(case["number"], "approve", actor="support:ann")
    assert case["amount"] == (line.goods - line.discount) // 2
    points_back = min(600, case["amount"])
    assert next((x["amount"], x["status"]) for x in case["refunds"]) == (points_back, "refunded")
    assert _account(oms, "points", "C-PT5")["balance"] == 2000 - 600 + points_back
    drive(oms)
    assert oms.aftersales.get(case["number"])["status"] == "refunded"
    _balanced(oms, r.number)


def test_accounts_are_issued_adjusted_and_shown_from_the_command_line(cli: Cli) -> None:
    assert "balance 50.00 CNY" in cli("wallets", "credit", "gift_card", "GC-CLI", "50.00").stdout
    out = cli("wallets", "adjust", "gift_card", "GC-CLI", "--note", "damaged card", "--", "-5.50").stdout
    assert "balance 44.50 CNY" in out
    assert "'-1' is negative" in cli("wallets", "credit", "gift_card", "GC-CLI", "--", "-1", ok=False).stderr
    assert "amount '1.234'" in cli("wallets", "credit", "gift_card", "GC-CLI", "1.234", ok=False).stderr
    account = json.loads(cli("wallets", "show", "gift_card", "GC-CLI", "--json").stdout)
    assert (account["balance"], [(m["kind"], m["amount"], m["note"]) for m in account["movements"]]) == (
        4450, [("issue", 5000, ""), ("adjust", -550, "damaged card")])
    assert "no gift card account 'GC-NONE'" in cli("wallets", "show", "gift_card", "GC-NONE", ok=False).stderr


def test_the_refund_rules_say_which_means_of_payment_a_partial_refund_goes_back_to_first(quiet: OMS) -> None:
    oms = quiet
    _credit(oms, "gift_card", "GC-600", 3000)
    _credit(oms, "points", "C-PT6", 3000)
    r = ingest_one(oms, _order("WL-6", lines=[("TEA-1", 4)], gift=300, code="GC-600", points=400, customer="C-PT6"))
    drive_until_state(oms, r.number, "delivered")
    case = oms.aftersales.open(r.number, "refund_only", {1: 1}, "one tin was open", actor="customer:C-PT6")
    case = oms.aftersales.act(case["number"], "approve", actor="support:ann")
    # rules/refunds.yaml: a partial after-sales refund goes to the gift card, then the points, then the rest;
    # the latest payment first would have taken the points first.
    refunds = [(p["refund_of"], p["method"], p["amount"]) for p in _payments(oms, r.number) if p["kind"] == "refund"]
    assert refunds == [(f"{r.number}-P02", "gift_card", 300), (f"{r.number}-P03", "points", 400),
                       (f"{r.number}-P01", "other", case["amount"] - 700)]
    with oms.db.read() as s:
        decision = next(d for d in explain(s, r.number)["decisions"] if d["point"] == "refunds")
    assert [f["rule"] for f in decision["fired"]] == ["after-sales-to-stored-value-first"]
    assert decision["outcome"]["methods"] == ["gift_card", "points"]
    assert _account(oms, "gift_card", "GC-600")["balance"] == 3000
    drive(oms)
    assert oms.aftersales.get(case["number"])["status"] == "refunded"
    _balanced(oms, r.number)

"""The payments ledger: each payment and refund with its serial number, method and log; several payments per
order; money the order may not keep recorded and owed back; refunds back to the payments they came from."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.orders.explain import explain
from oms_engine.payments.methods import Method, method_of
from tests.support import order_json, payload
from tests.support.pipeline import ingest_one, order_row, run_stages


def _payments(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return explain(s, number)["payments"]


def _balanced(oms: OMS, number: str) -> None:
    """What the ledger took in less what it owes back is what the orders kept less what they gave back; no
    payment is owed back more than it brought."""
    parent = order_row(oms, number)
    rows = _payments(oms, number)
    taken = sum(p["amount"] for p in rows if p["kind"] == "payment")
    owed = sum(p["amount"] for p in rows if p["kind"] == "refund")
    children = [order_row(oms, c.number) for c in parent.children]
    kept = parent.paid_amount - parent.refund_amount - sum(c.refund_amount for c in children)
    assert taken - owed == kept, rows
    for p in rows:
        if p["kind"] == "payment":
            assert sum(r["amount"] for r in rows if r["refund_of"] == p["serial"]) <= p["amount"]
    assert parent.paid_amount <= parent.payable


@pytest.mark.parametrize(("name", "method"), [
    ("shopify_payments", Method.CARD), ("Cash on Delivery (COD)", Method.COD), ("gift_card", Method.GIFT_CARD),
    ("Alipay", Method.WALLET), ("bacs", Method.BANK_TRANSFER), ("loyalty points", Method.POINTS), ("", Method.OTHER),
    ("cheque", Method.OTHER), ("CARD", Method.CARD),
])
def test_a_channels_name_for_a_method_is_read_as_one_the_oms_knows(name: str, method: Method) -> None:
    assert method_of(name) is method


def test_an_order_paid_at_the_channel_has_its_payment_with_a_serial_its_method_and_its_log(oms: OMS) -> None:
    order = order_json("PL-1", [("TEA-1", 1)])
    order["payment"]["method"] = "Alipay"
    r = ingest_one(oms, order)
    [p] = _payments(oms, r.number)
    assert (p["serial"], p["kind"], p["method"], p["method_detail"], p["provider_ref"], p["status"]) == (
        f"{r.number}-P01", "payment", "wallet", "Alipay", "PAY-PL-1", "captured")
    assert p["amount"] == order_row(oms, r.number).payable == order_row(oms, r.number).paid_amount
    assert [(e["from"], e["to"], e["actor"]) for e in p["log"]] == [(None, "captured", "channel:json")]


def test_cancelling_a_paid_order_owes_its_payment_back_to_the_method_it_came_from(oms: OMS) -> None:
    r = ingest_one(oms, order_json("PL-2", [("MUG-1", 1)], paid=False))
    payable = order_row(oms, r.number).payable
    assert oms.commands.pay(r.number, 500, "GC-1", method="gift_card") == "pending_payment"
    assert oms.commands.pay(r.number, payable - 500, "CARD-1", method="card") == "paid"
    assert oms.commands.cancel(r.number, actor="support:ann", reason="changed mind") == "cancelled"
    rows = _payments(oms, r.number)
    refunds = [(p["serial"], p["refund_of"], p["method"], p["amount"], p["status"]) for p in rows
               if p["kind"] == "refund"]
    # The latest payment first, each up to what it brought.
    assert refunds == [(f"{r.number}-R01", f"{r.number}-P02", "card", payable - 500, "due"),
                       (f"{r.number}-R02", f"{r.number}-P01", "gift_card", 500, "due")]
    assert all(p["reason"] == "cancel: changed mind" for p in rows if p["kind"] == "refund")
    assert order_row(oms, r.number).refund_amount == payable
    _balanced(oms, r.number)


def test_a_cancelled_child_of_a_split_is_refunded_from_its_parents_payment(oms: OMS) -> None:
    r = ingest_one(oms, order_json("PL-3", [("ICE-1", 1), ("TEA-1", 1)]))
    run_stages(oms, "screen", "split")
    cold = f"{r.number}-1"
    assert oms.commands.cancel(cold, actor="support:dan") == "cancelled"
    child = order_row(oms, cold)
    [refund] = _payments(oms, cold)             # a child shows the refunds made for it
    assert (refund["serial"], refund["refund_of"], refund["amount"]) == (
        f"{r.number}-R01", f"{r.number}-P01", child.payable)
    assert [p["serial"] for p in _payments(oms, r.number)] == [f"{r.number}-P01", f"{r.number}-R01"]
    with pytest.raises(CommandError, match=f"part of {r.number}: payments go to that order"):
        oms.commands.pay(cold, 100, "CHILD-1")
    _balanced(oms, r.number)


def test_paying_more_than_is_owed_keeps_what_is_owed_and_owes_the_rest_back(oms: OMS) -> None:
    r = ingest_one(oms, order_json("PL-4", [("TEA-1", 1)], paid=False))
    payable = order_row(oms, r.number).payable
    assert oms.commands.pay(r.number, payable + 250, "CARD-2", method="card") == "paid"
    paid, back = _payments(oms, r.number)
    assert (paid["amount"], back["amount"], back["refund_of"], back["status"]) == (payable + 250, 250,
                                                                                    paid["serial"], "due")
    assert order_row(oms, r.number).paid_amount == payable
    _balanced(oms, r.number)


def test_a_payment_of_nothing_is_refused(oms: OMS) -> None:
    r = ingest_one(oms, order_json("PL-5", paid=False))
    with pytest.raises(CommandError, match="more than 0"):
        oms.commands.pay(r.number, 0, "ZERO")
    assert _payments(oms, r.number) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 30_000), st.booleans()), min_size=1, max_size=5), st.booleans(),
       st.uuids())
def test_the_ledger_balances_over_any_payments_repeats_and_a_cancel(oms: OMS, pays: list[tuple[int, bool]],
                                                                   cancel: bool, key: Any) -> None:
    [r] = oms.intake.ingest("json", payload(order_json(f"PH-{key}", [("TEA-1", 1)], paid=False)))
    last = None
    for i, (amount, repeat) in enumerate(pays):
        ref = last if repeat and last else f"T-{key}-{i}"
        oms.commands.pay(r.number, amount, ref, method="card")
        last = ref
        _balanced(oms, r.number)
    if cancel and order_row(oms, r.number).status in ("pending_payment", "paid"):
        oms.commands.cancel(r.number, actor="t")
    _balanced(oms, r.number)
    serials = [p["serial"] for p in _payments(oms, r.number)]
    assert len(serials) == len(set(serials))

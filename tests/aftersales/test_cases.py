"""After-sales cases: opened on what shipped, decided by rules/aftersales.yaml or a person, goods back through a
customer-return document, money back to the payments it came from; several cases per order up to each line's
quantity, one appeal after a denial, none after the window."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from oms_engine.aftersales.amounts import paid_for
from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.orders.explain import explain
from oms_engine.statemachine import GuardFailed
from oms_engine.storage.models import Customer, StockMovement
from tests.support import order_json
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row, run_stages


def _delivered(oms: OMS, external_id: str, lines: list[tuple[str, int]] | None = None, **kw: Any) -> str:
    r = ingest_one(oms, order_json(external_id, lines or [("TEA-1", 2)], **kw))
    drive_until_state(oms, r.number, "delivered")
    return r.number


def _story(oms: OMS, number: str) -> dict[str, Any]:
    with oms.db.read() as s:
        return explain(s, number)


def _balanced(oms: OMS, number: str) -> None:
    story, order = _story(oms, number), order_row(oms, number)
    taken = sum(p["amount"] for p in story["payments"] if p["kind"] == "payment")
    back = sum(p["amount"] for p in story["payments"] if p["kind"] == "refund")
    assert taken - back == order.paid_amount - order.refund_amount


def test_a_return_goes_to_a_person_comes_back_to_the_warehouse_and_is_paid_back(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "AS-1")
    line = order_row(oms, number).lines[0]
    case = oms.aftersales.open(number, "return_refund", {1: 1}, "too big", actor="customer:C-OLD")
    # A first order: no rule approves it at once; a person looks.
    assert (case["number"], case["status"], case["amount"]) == (f"{number}-C01", "under_review",
                                                                (line.goods - line.discount) // 2)
    assert case["decision"] == "no rule decides it: a person does"
    case = oms.aftersales.act(case["number"], "approve", actor="support:ann", note="checked the photos")
    assert case["status"] == "awaiting_return" and case["return_document"].startswith("RMA-")
    drive(oms)      # the warehouse receives it back, the provider pays the refund
    case = oms.aftersales.get(case["number"])
    assert case["status"] == "refunded"
    assert [h["to"] for h in case["history"]] == ["requested", "under_review", "approved", "awaiting_return",
                                                   "return_received", "refund_pending", "refunded"]
    [refund] = case["refunds"]
    assert (refund["serial"], refund["amount"], refund["status"]) == (f"{number}-R01", case["amount"], "refunded")
    with oms.db.read() as s:
        back = s.scalars(select(StockMovement.on_hand_delta).where(
            StockMovement.kind == "customer_return", StockMovement.document == case["return_document"])).all()
    assert back == [1]
    story = _story(oms, number)
    assert [c["number"] for c in story["aftersales"]] == [case["number"]]
    assert any(d["point"] == "aftersales" for d in story["decisions"])
    _balanced(oms, number)


def test_a_line_goes_into_several_cases_up_to_its_quantity_and_no_cent_is_lost(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "AS-2", [("TEA-1", 3)], coupon="1.00")
    line = order_row(oms, number).lines[0]
    first = oms.aftersales.open(number, "return_refund", {1: 1}, actor="customer:C-OLD")
    second = oms.aftersales.open(number, "return_refund", {1: 2}, actor="customer:C-OLD")
    assert first["amount"] + second["amount"] == line.goods - line.discount
    with pytest.raises(CommandError, match=f"every unit of order {number} is in a case already"):
        oms.aftersales.open(number, "return_refund", actor="customer:C-OLD")
    oms.aftersales.act(first["number"], "cancel", actor="customer:C-OLD")      # gives its unit back
    with pytest.raises(CommandError, match="line 1: 2 units asked, 1 not in a case yet"):
        oms.aftersales.open(number, "return_refund", {1: 2}, actor="customer:C-OLD")
    third = oms.aftersales.open(number, "return_refund", {1: 1}, actor="customer:C-OLD")
    assert third["number"] == f"{number}-C03"


def test_a_denial_is_appealed_once_and_the_appeal_goes_to_a_person(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "AS-3")
    case = oms.aftersales.open(number, "return_refund", {1: 1}, actor="customer:C-OLD")
    case = oms.aftersales.act(case["number"], "deny", actor="support:ann", note="worn")
    assert (case["status"], case["decision"]) == ("denied", "worn")
    case = oms.aftersales.act(case["number"], "appeal", actor="customer:C-OLD", note="it was never worn")
    assert (case["status"], case["appeals"]) == ("under_review", 1)
    assert case["decision"] == "appeal against a denial: a person decides"
    case = oms.aftersales.act(case["number"], "deny", actor="support:bob", note="the tag is cut")
    with pytest.raises(GuardFailed, match="appealed at most 1 time"):
        oms.aftersales.act(case["number"], "appeal", actor="customer:C-OLD")
    assert oms.aftersales.get(case["number"])["status"] == "denied"


def test_a_vip_refund_is_approved_by_the_rules_and_paid_back_without_the_goods(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "AS-4")
    with oms.db.session() as s:
        s.execute(update(Customer).where(Customer.ref == "C-OLD").values(level="vip"))
    case = oms.aftersales.open(number, "refund_only", {1: 2}, "arrived broken", actor="customer:C-OLD")
    assert case["status"] == "refund_pending" and case["decision"] == "VIP customer"
    assert case["return_document"] is None
    drive(oms)
    case = oms.aftersales.get(case["number"])
    assert case["status"] == "refunded" and case["amount"] == sum(
        ln.goods - ln.discount for ln in order_row(oms, number).lines)
    _balanced(oms, number)


def test_cases_are_refused_before_shipping_on_a_split_parent_and_after_the_window(quiet: OMS) -> None:
    oms = quiet
    paid = ingest_one(oms, order_json("AS-5", [("TEA-1", 1)]))
    with pytest.raises(CommandError, match="it has not shipped; cancel it instead"):
        oms.aftersales.open(paid.number, "refund_only", actor="customer:C-OLD")
    with pytest.raises(CommandError, match="it has not shipped; cancel it instead"):
        oms.aftersales.open(paid.number, "exchange", actor="customer:C-OLD")
    split = ingest_one(oms, order_json("AS-6", [("ICE-1", 1), ("TEA-1", 1)]))
    run_stages(oms, "screen", "split")
    with pytest.raises(CommandError, match=f"order {split.number} was split: open the case on"):
        oms.aftersales.open(split.number, "return_refund", actor="customer:C-OLD")
    number = _delivered(oms, "AS-7")
    drive_until_state(oms, number, "closed")
    with pytest.raises(CommandError, match=f"the after-sales window of order {number} closed on"):
        oms.aftersales.open(number, "return_refund", actor="customer:C-OLD")


@given(st.integers(0, 10**9), st.integers(0, 10**8), st.lists(st.integers(1, 5), min_size=1, max_size=8))
def test_units_claimed_in_any_pieces_sum_to_what_was_paid_for_the_line(goods: int, discount: int,
                                                                       pieces: list[int]) -> None:
    class Line:
        quantity = sum(pieces)

    Line.goods, Line.discount = goods + discount, discount    # type: ignore[attr-defined]
    claimed, total = 0, 0
    for q in pieces:
        part = paid_for(Line, q, claimed)
        assert part >= 0
        total += part
        claimed += q
    assert total == goods


def test_a_return_that_loses_the_coupon_threshold_pays_back_less_the_coupon_on_the_goods_kept(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "AS-CB", [("TEA-1", 2)], coupon="10.00")     # 118.00 of tea, 10.00 off from 99.00
    case = oms.aftersales.open(number, "return_refund", {1: 1}, "one too many", actor="customer:C-OLD")
    oms.aftersales.act(case["number"], "approve", actor="support:ann")
    drive(oms)
    case = oms.aftersales.get(case["number"])
    # The tin kept is worth 59.00, under the coupon's 99.00: its 5.00 of the coupon comes off the refund.
    assert (case["status"], case["amount"], case["clawed_back"]) == ("refunded", 5400, 500)
    assert [r["amount"] for r in case["refunds"]] == [4900]
    story = _story(oms, number)
    decision = [d for d in story["decisions"] if d["point"] == "refunds"][-1]
    assert decision["outcome"]["claw_back"] == 500
    assert [f["rule"] for f in decision["fired"]] == ["coupon-threshold-lost"]
    assert order_row(oms, number).refund_amount == 4900
    _balanced(oms, number)

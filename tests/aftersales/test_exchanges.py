"""Exchanges: the goods come back through a customer-return document and a replacement order, held until they
do, goes out through the whole order flow; another product at the same price reissues the invoice; a
replacement that cannot be sent turns the case into a refund; a case withdrawn cancels its replacement."""

from __future__ import annotations

from typing import Any

import pytest

from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.invoices.issuing import balance
from oms_engine.masterdata.files import Row
from oms_engine.orders.explain import explain
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import Order, Stock
from tests.support import order_json
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row


def _delivered(oms: OMS, external_id: str, lines: list[tuple[str, int]] | None = None) -> str:
    r = ingest_one(oms, order_json(external_id, lines or [("TEA-1", 2)]))
    drive_until_state(oms, r.number, "delivered")
    return r.number


def _story(oms: OMS, number: str) -> dict[str, Any]:
    with oms.db.read() as s:
        return explain(s, number)


def _on_hand(oms: OMS, sku: str) -> int:
    with oms.db.read() as s:
        return sum(r.on_hand for r in s.query(Stock).filter_by(sku=sku))


def _balanced(oms: OMS, number: str) -> None:
    with oms.db.read() as s:
        order = s.query(Order).filter_by(number=number).one()
        invoiced, kept = balance(s, order)
    assert invoiced == kept


def _approved_exchange(oms: OMS, number: str, **kw: Any) -> dict[str, Any]:
    case = oms.aftersales.open(number, "exchange", {1: 1}, "wrong size", actor="customer:C-OLD", **kw)
    assert case["status"] == "under_review"      # no rule approves an exchange at once: a person looks
    return oms.aftersales.act(case["number"], "approve", actor="support:ann")


def test_an_exchange_takes_the_goods_back_and_sends_the_same_product_again(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "EX-1")
    before = _on_hand(oms, "TEA-1")
    case = _approved_exchange(oms, number)
    assert case["status"] == "awaiting_return" and case["return_document"].startswith("RMA-")
    replacement = order_row(oms, case["replacement"])
    # Held, its stock reserved, until the goods are back; priced at nothing, paid by the exchange.
    assert (replacement.status, replacement.hold_stage) == ("on_hold", "exchange")
    assert (replacement.payable, replacement.goods, replacement.payment_method) == (0, 0, "exchange")
    assert replacement.external_id == case["number"] and replacement.channel == order_row(oms, number).channel
    assert [(ln.sku, ln.quantity) for ln in replacement.lines] == [("TEA-1", 1)]
    assert (replacement.ship_to, replacement.customer_id) == (order_row(oms, number).ship_to,
                                                              order_row(oms, number).customer_id)
    drive(oms)      # the goods come back, the replacement goes out and is delivered
    case = oms.aftersales.get(case["number"])
    assert [h["to"] for h in case["history"]] == ["requested", "under_review", "approved", "awaiting_return",
                                                   "return_received", "exchange_shipping", "done"]
    assert order_row(oms, case["replacement"]).status in ("delivered", "completed", "closed")
    assert case["refunds"] == []
    # One unit back on the shelf, one out again; no money moved, the invoice stands as it was.
    assert _on_hand(oms, "TEA-1") == before
    story = _story(oms, number)
    assert [i["number"] for i in story["invoices"]] == [f"{number}-INV01"]
    assert _story(oms, case["replacement"])["payments"] == []
    assert _story(oms, case["replacement"])["invoices"] == []
    _balanced(oms, number)


def test_an_exchange_for_another_product_at_the_same_price_reissues_the_invoice(quiet: OMS) -> None:
    oms = quiet
    oms.masterdata.apply("products", [Row("t", {"sku": "TEA-2", "name": "Green tea, large tin", "currency": "CNY",
                                                "price": "59.00", "merchant": "M-01"})], actor="t", source="t")
    oms.stock.post(Movement.PURCHASE_RECEIPT, "WH-SH", "TEA-2", 10, document="PO-T2", actor="t")
    number = _delivered(oms, "EX-2")
    with pytest.raises(CommandError, match="'MUG-1' is not priced as 'TEA-1'"):
        oms.aftersales.open(number, "exchange", {1: 1}, "", actor="t", exchange_to={1: "MUG-1"})
    with pytest.raises(CommandError, match="only an exchange names products"):
        oms.aftersales.open(number, "return_refund", {1: 1}, "", actor="t", exchange_to={1: "TEA-2"})
    case = _approved_exchange(oms, number, exchange_to={1: "TEA-2"})
    assert [(ln.sku, ln.quantity) for ln in order_row(oms, case["replacement"]).lines] == [("TEA-2", 1)]
    drive(oms)
    assert oms.aftersales.get(case["number"])["status"] == "done"
    invoices = _story(oms, number)["invoices"]
    assert [(i["number"], i["kind"]) for i in invoices] == [
        (f"{number}-INV01", "invoice"), (f"{number}-CN01", "credit_note"), (f"{number}-INV02", "invoice")]
    old, reversal, new = invoices
    assert reversal["amount"] == old["amount"] and reversal["refers_to"] == old["number"]
    assert (new["amount"], new["tax"]) == (old["amount"], old["tax"])
    goods = [(it["sku"], it["name"], it["quantity"]) for it in new["lines"] if it["line_no"]]
    assert goods == [("TEA-1", old["lines"][0]["name"], 1), ("TEA-2", "Green tea, large tin", 1)]
    assert sum(it["amount"] + it["tax"] for it in new["lines"]) == new["amount"]
    _balanced(oms, number)


def test_a_replacement_that_cannot_be_sent_turns_the_case_into_a_refund(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "EX-3")
    case = _approved_exchange(oms, number)
    assert oms.commands.cancel(case["replacement"], actor="support:ann", reason="discontinued") == "cancelled"
    drive(oms)      # the goods come back: the money goes back instead
    case = oms.aftersales.get(case["number"])
    assert [h["to"] for h in case["history"]][-3:] == ["return_received", "refund_pending", "refunded"]
    line = order_row(oms, number).lines[0]
    assert [(r["amount"], r["status"]) for r in case["refunds"]] == [((line.goods - line.discount) // 2,
                                                                      "refunded")]
    _balanced(oms, number)


def test_withdrawing_an_exchange_cancels_its_replacement_and_frees_its_stock(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "EX-4")
    case = _approved_exchange(oms, number)
    case = oms.aftersales.act(case["number"], "cancel", actor="customer:C-OLD", note="kept it after all")
    assert case["status"] == "cancelled"
    replacement = order_row(oms, case["replacement"])
    assert replacement.status == "cancelled"
    with oms.db.read() as s:
        assert not [r for r in s.execute(
            __import__("sqlalchemy").text("SELECT id FROM reservations WHERE order_id = :o"), {"o": replacement.id})]
    # Its units may be claimed again.
    again = oms.aftersales.open(number, "exchange", {1: 1}, "changed my mind again", actor="customer:C-OLD")
    assert again["number"] == f"{number}-C02"


def test_a_replacement_let_go_early_finishes_the_case_once_the_goods_are_back(quiet: OMS) -> None:
    oms = quiet
    number = _delivered(oms, "EX-5")
    case = _approved_exchange(oms, number)
    # A trusted customer: support sends the replacement before the goods are back.
    assert oms.commands.release(case["replacement"], actor="support:ann", note="ship first") == "paid"
    drive(oms)
    case = oms.aftersales.get(case["number"])
    assert case["status"] == "done"
    assert order_row(oms, case["replacement"]).status in ("delivered", "completed", "closed")


def test_an_exchange_is_opened_on_what_was_delivered(quiet: OMS) -> None:
    oms = quiet
    r = ingest_one(oms, order_json("EX-6", [("TEA-1", 1)]))
    drive_until_state(oms, r.number, "shipped")
    with pytest.raises(CommandError, match="goods are returned once delivered"):
        oms.aftersales.open(r.number, "exchange", None, "", actor="t")

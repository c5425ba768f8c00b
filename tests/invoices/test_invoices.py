"""Invoices and credit notes: an order paid in full is invoiced with its tax shared to the cent; every refund of
its money is credited with its share of the tax; invoiced less credited is paid less refunded, always."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms_engine.engine import OMS
from oms_engine.invoices.issuing import balance
from oms_engine.orders.explain import explain
from oms_engine.orders.queries import get_order
from tests.support import order_json, payload
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row, run_stages


def _invoices(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return explain(s, number)["invoices"]


def _balanced(oms: OMS, number: str) -> None:
    with oms.db.read() as s:
        invoiced, kept = balance(s, get_order(s, number))
    assert invoiced == kept


def _taxed(oms: OMS, external_id: str, lines: list[tuple[str, int]], tax: str = "7.77") -> str:
    """An order with tax on top, paid in full by the payment command."""
    r = ingest_one(oms, order_json(external_id, lines, paid=False, tax=tax))
    assert oms.commands.pay(r.number, order_row(oms, r.number).payable, f"T-{external_id}", method="card") == "paid"
    return r.number


def test_an_order_paid_in_full_is_invoiced_with_its_tax_shared_to_the_cent(quiet: OMS) -> None:
    number = _taxed(quiet, "IV-1", [("TEA-1", 2), ("MUG-1", 1)])
    order = order_row(quiet, number)
    [inv] = _invoices(quiet, number)
    assert (inv["number"], inv["kind"], inv["amount"], inv["tax"]) == (f"{number}-INV01", "invoice", order.payable,
                                                                       777)
    assert [it["sku"] for it in inv["lines"]] == ["TEA-1", "MUG-1", "FREIGHT"]
    assert sum(it["tax"] for it in inv["lines"]) == 777
    assert sum(it["amount"] + it["tax"] for it in inv["lines"]) == order.payable
    doc = inv["document"]
    assert (doc["format"], doc["type"], doc["invoice_no"], doc["total"], doc["total_tax"]) == (
        "oms-einvoice/1", "blue", inv["number"], f"{order.payable // 100}.{order.payable % 100:02d}", "7.77")
    _balanced(quiet, number)


def test_an_order_paid_in_parts_is_invoiced_when_the_last_part_comes(quiet: OMS) -> None:
    r = ingest_one(quiet, order_json("IV-2", [("TEA-1", 1)], paid=False))
    payable = order_row(quiet, r.number).payable
    quiet.commands.pay(r.number, 1000, "GC-IV-2", method="gift_card")
    assert _invoices(quiet, r.number) == []
    quiet.commands.pay(r.number, payable - 1000, "CARD-IV-2", method="card")
    assert [i["amount"] for i in _invoices(quiet, r.number)] == [payable]
    quiet.commands.pay(r.number, 500, "CARD-IV-2-AGAIN", method="card")    # a second charge: owed back, not invoiced
    assert [i["kind"] for i in _invoices(quiet, r.number)] == ["invoice"]
    _balanced(quiet, r.number)


def test_every_refund_is_credited_and_paying_all_back_credits_all_the_tax(quiet: OMS) -> None:
    number = _taxed(quiet, "IV-3", [("ICE-1", 1), ("TEA-1", 2)])
    run_stages(quiet, "screen", "split")
    parent = order_row(quiet, number)
    first, second = (c.number for c in parent.children)
    quiet.commands.cancel(first, actor="support:ann", reason="out of season")
    notes = [i for i in _invoices(quiet, number) if i["kind"] == "credit_note"]
    assert [(n["number"], n["refers_to"], n["amount"]) for n in notes] == [
        (f"{number}-CN01", f"{number}-INV01", order_row(quiet, first).payable)]
    assert [n["number"] for n in _invoices(quiet, first)] == [f"{number}-CN01"]     # the child shows its own
    _balanced(quiet, number)
    quiet.commands.cancel(second, actor="support:ann")
    drive(quiet)
    invs = _invoices(quiet, number)
    assert sum(i["tax"] for i in invs if i["kind"] == "credit_note") == 777
    assert sum(i["amount"] for i in invs if i["kind"] == "credit_note") == parent.payable
    assert invs[-1]["document"]["type"] == "red" and invs[-1]["document"]["original_invoice_no"] == invs[0]["number"]
    _balanced(quiet, number)


def test_an_after_sales_refund_is_credited(quiet: OMS) -> None:
    number = _taxed(quiet, "IV-4", [("TEA-1", 2)], tax="1.00")
    drive_until_state(quiet, number, "delivered")
    case = quiet.aftersales.open(number, "return_refund", {1: 1}, actor="customer:C-OLD")
    quiet.aftersales.act(case["number"], "approve", actor="support:ann")
    drive(quiet)
    [invoice, note] = _invoices(quiet, number)
    assert invoice["kind"] == "invoice"
    assert (note["kind"], note["amount"]) == ("credit_note", case["amount"])
    assert note["reason"].startswith(f"case {case['number']}")
    _balanced(quiet, number)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 20_000), min_size=1, max_size=4), st.booleans(), st.uuids())
def test_invoiced_less_credited_is_paid_less_refunded_over_any_payments_and_a_cancel(
        oms: OMS, pays: list[int], cancel: bool, key: Any) -> None:
    [r] = oms.intake.ingest("json", payload(order_json(f"IH-{key}", [("TEA-1", 1)], paid=False, tax="0.99")))
    for i, amount in enumerate(pays):
        oms.commands.pay(r.number, amount, f"T-{key}-{i}", method="card")
    if cancel and order_row(oms, r.number).status in ("pending_payment", "paid"):
        oms.commands.cancel(r.number, actor="t")
    order = order_row(oms, r.number)
    if order.paid_amount >= order.payable:     # paid in full at some point: invoiced
        _balanced(oms, r.number)
    else:                                       # never paid in full: nothing invoiced
        assert _invoices(oms, r.number) == []

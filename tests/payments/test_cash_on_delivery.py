"""Cash on delivery: the order ships unpaid and whole, the carrier collects at the door and the delivery records the
payment (and invoices the order); a parcel refused at the door was never paid, so nothing goes back but what the
gift card or points paid. A prepaid parcel refused keeps its freight (rules/refunds.yaml)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oms_engine.engine import OMS
from oms_engine.invoices.issuing import balance
from oms_engine.orders.queries import get_order
from oms_engine.payments.methods import Method, method_of
from oms_engine.plugin.testing import drive, show_order, status
from tests.support import NO_REFUSALS, build_oms, order_json, payload


def _cod(ext: str, lines: list[tuple[str, int]], **kw: Any) -> dict[str, Any]:
    order = order_json(ext, lines, **kw)
    order["payment"] = {"transaction_id": f"COD-{ext}", "amount": order["payment"]["amount"],
                        "method": "Cash on Delivery (COD)"}
    return order


def _ingest(oms: OMS, order: dict[str, Any]) -> str:
    [result] = oms.intake.ingest("json", payload(order))
    assert result.number is not None, result
    return result.number


@pytest.fixture
def quiet_oms(tmp_path: Path, db_url: str) -> Any:
    o = build_oms(tmp_path, db_url, plugin_settings=NO_REFUSALS)
    yield o
    o.close()


def test_a_cash_on_delivery_order_ships_whole_unpaid_and_is_paid_and_invoiced_at_the_door(quiet_oms: OMS) -> None:
    oms = quiet_oms
    # Two merchants, one cold-chain line: a prepaid order like it is split (rules/split.yaml); cash on delivery
    # ships as one parcel.
    number = _ingest(oms, _cod("COD-1", [("TEA-1", 1), ("ICE-1", 1)]))
    shown = show_order(oms, number)
    assert shown["status"] == "paid" and shown["amounts"]["paid_amount"] == 0 and shown["payments"] == []
    assert "to collect" in next(h for h in shown["history"] if h["event"] == "pay")["cause"]
    # Past the payment window it is not cancelled: it was never waiting for a payment.
    oms.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    drive(oms)
    assert status(oms, number) == "closed"
    shown = show_order(oms, number)
    assert shown["children"] == []
    split = next(d for d in shown["decisions"] if d["point"] == "split")
    assert split["outcome"]["why"] == "cash on delivery ships whole"
    [paid] = shown["payments"]
    assert (paid["kind"], paid["method"], paid["amount"]) == ("payment", "cod", shown["amounts"]["payable"])
    assert paid["provider_ref"].startswith("cod:") and shown["amounts"]["paid_amount"] == shown["amounts"]["payable"]
    assert [i["kind"] for i in shown["invoices"]] == ["invoice"]
    with oms.db.read() as s:
        invoiced, paid_net = balance(s, get_order(s, number))
    assert invoiced == paid_net == shown["amounts"]["payable"]


def test_a_cash_on_delivery_parcel_refused_costs_the_customer_nothing(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, plugin_settings={"sim_carrier": {"refusal_rate": 1.0}})
    try:
        number = _ingest(oms, _cod("COD-2", [("TEA-1", 2)]))
        drive(oms)
        assert status(oms, number) == "closed"
        shown = show_order(oms, number)
        assert [h["event"] for h in shown["history"]][-2:] == ["refuse", "returned"]
        # Nothing was collected, so nothing is paid back and nothing was invoiced.
        assert shown["payments"] == [] and shown["invoices"] == []
        assert (shown["amounts"]["paid_amount"], shown["amounts"]["refund_amount"]) == (0, 0)
    finally:
        oms.close()


def test_a_prepaid_parcel_refused_gets_its_money_back_less_the_freight(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, plugin_settings={"sim_carrier": {"refusal_rate": 1.0}})
    try:
        number = _ingest(oms, order_json("PRE-1", [("MUG-1", 1)], freight="12.00"))
        drive(oms)
        shown = show_order(oms, number)
        assert shown["amounts"]["refund_amount"] == 3900
        [refund] = [p for p in shown["payments"] if p["kind"] == "refund"]
        assert refund["amount"] == 3900 and "freight 1200 kept" in refund["reason"]
        refunds = next(d for d in shown["decisions"] if d["point"] == "refunds")
        assert refunds["outcome"]["keep_freight"] is True
        # The credit note credits what went back: invoiced less credited is still paid less refunded.
        assert [i["kind"] for i in shown["invoices"]] == ["invoice", "credit_note"]
        with oms.db.read() as s:
            invoiced, paid_net = balance(s, get_order(s, number))
        assert invoiced == paid_net == 1200
    finally:
        oms.close()


def test_cash_on_delivery_to_collect_must_match_what_is_payable(quiet_oms: OMS) -> None:
    order = _cod("COD-3", [("TEA-1", 1)])
    order["payment"]["amount"] = "50.00"
    number = _ingest(quiet_oms, order)
    shown = show_order(quiet_oms, number)
    assert shown["status"] == "on_hold" and "cash to collect 50.00 CNY differs from payable 69.00 CNY" in \
        shown["hold_reason"]
    # A channel that leaves the amount to the OMS (0) collects what is payable.
    order = _cod("COD-4", [("TEA-1", 1)])
    order["payment"]["amount"] = "0.00"
    assert status(quiet_oms, _ingest(quiet_oms, order)) == "paid"


@pytest.mark.parametrize(("name", "method"), [("Cash on Delivery (COD)", Method.COD), ("cod", Method.COD),
                                              ("QR code", Method.OTHER), ("barcode pay", Method.OTHER)])
def test_cod_is_read_as_a_word_only(name: str, method: Method) -> None:
    assert method_of(name) is method

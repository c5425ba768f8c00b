"""Every after-sales path on one order paid by card, gift card and points, end to end on both backends: a refund
only, a return denied then approved on appeal, an exchange whose goods a person records back, a return
withdrawn, an exchange whose replacement is cancelled and so paid back, a case refused after the window. At the
end the payments, the gift card and points balances, the invoices and the stock all reconcile to the cent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.invoices.issuing import balance
from oms_engine.orders.explain import explain
from oms_engine.payments import wallets
from oms_engine.payments.ledger import paid_total
from oms_engine.storage.models import Order, Stock
from tests.support import order_json
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row

GIFT, POINTS = 3000, 1200


def _on_hand(oms: OMS) -> dict[str, int]:
    with oms.db.read() as s:
        out: dict[str, int] = {}
        for row in s.scalars(select(Stock).where(Stock.sku.in_(["TEA-1", "MUG-1"]))):
            out[row.sku] = out.get(row.sku, 0) + row.on_hand
        return out


def _payments(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return explain(s, number)["payments"]


def test_every_after_sales_path_on_one_order_reconciles_to_the_cent(quiet: OMS) -> None:
    oms = quiet
    with oms.db.session() as s:
        wallets.credit(s, "gift_card", "GC-E2E", "CNY", 5000, oms.clock.now(), actor="shop")
        wallets.credit(s, "points", "C-E2E", "CNY", 2000, oms.clock.now(), actor="shop")
    order = order_json("AS-E2E", [("TEA-1", 3), ("MUG-1", 2)], customer="C-E2E", coupon="10.00")
    cash = 3 * 5900 + 2 * 3900 + 1000 - 1000 - GIFT - POINTS
    order.update(gift_card="30.00", gift_card_code="GC-E2E", points="12.00")
    order["payment"]["amount"] = f"{cash // 100}.{cash % 100:02d}"
    number = ingest_one(oms, order).number
    drive_until_state(oms, number, "delivered")
    stock_delivered = _on_hand(oms)
    tea, mug = sorted(order_row(oms, number).lines, key=lambda ln: ln.sku != "TEA-1")

    # 1. A mug arrived broken: refund only, approved by a person; a partial refund goes to the stored value first.
    a = oms.aftersales.open(number, "refund_only", {mug.line_no: 1}, "broken", actor="customer:C-E2E")
    a = oms.aftersales.act(a["number"], "approve", actor="support:ann")
    # 2. A tin of tea returned: denied, appealed, approved; the warehouse receives it back.
    b = oms.aftersales.open(number, "return_refund", {tea.line_no: 1}, "not as described", actor="customer:C-E2E")
    oms.aftersales.act(b["number"], "deny", actor="support:ann", note="opened")
    oms.aftersales.act(b["number"], "appeal", actor="customer:C-E2E", note="it was sealed")
    b = oms.aftersales.act(b["number"], "approve", actor="support:bo", note="approved on appeal")
    # 3. A tin exchanged; the customer hands it in at the counter and a person records it back.
    c = oms.aftersales.open(number, "exchange", {tea.line_no: 1}, "dented", actor="customer:C-E2E")
    c = oms.aftersales.act(c["number"], "approve", actor="support:ann")
    c = oms.aftersales.act(c["number"], "receive", actor="store:pudong", note="handed in at the counter")
    assert c["status"] == "exchange_shipping"
    # 4. The last tin: a return the customer withdraws.
    d = oms.aftersales.open(number, "return_refund", {tea.line_no: 1}, "", actor="customer:C-E2E")
    d = oms.aftersales.act(d["number"], "cancel", actor="customer:C-E2E", note="kept it")
    # 5. The other mug exchanged; its replacement is discontinued, so the case is paid back once it is back.
    e = oms.aftersales.open(number, "exchange", {mug.line_no: 1}, "wrong colour", actor="customer:C-E2E")
    e = oms.aftersales.act(e["number"], "approve", actor="support:ann")
    assert oms.commands.cancel(e["replacement"], actor="support:ann", reason="discontinued") == "cancelled"
    drive(oms)

    cases = {x["number"]: oms.aftersales.get(x["number"]) for x in (a, b, c, d, e)}
    assert [cases[x["number"]]["status"] for x in (a, b, c, d, e)] == [
        "refunded", "refunded", "done", "cancelled", "refunded"]
    assert [h["to"] for h in cases[b["number"]]["history"]] == [
        "requested", "under_review", "denied", "under_review", "approved", "awaiting_return", "return_received",
        "refund_pending", "refunded"]
    assert cases[c["number"]]["history"][-3]["actor"] == "store:pudong"
    listed = oms.aftersales.list(order=number)
    assert [x["number"] for x in listed] == [e["number"], d["number"], c["number"], b["number"], a["number"]]
    assert [x["number"] for x in oms.aftersales.list(status="refunded", order=number)] == [
        e["number"], b["number"], a["number"]]

    # 6. After the window: refused, saying when it closed.
    drive(oms)
    with pytest.raises(CommandError, match=r"after-sales window of order \d+ closed on"):
        oms.aftersales.open(number, "refund_only", None, "", actor="customer:C-E2E")

    # The money: what was paid back is what the cases were worth (the two tins kept, the exchanged one among
    # them, still reach the coupon's 99.00: nothing of it is taken back), and the books agree everywhere.
    assert [cases[x["number"]]["clawed_back"] for x in (a, b, e)] == [0, 0, 0]
    worth = sum(cases[x["number"]]["amount"] for x in (a, b, e))
    rows = _payments(oms, number)
    back = [p for p in rows if p["kind"] == "refund"]
    assert sum(p["amount"] for p in back) == worth and {p["status"] for p in back} == {"refunded"}
    for p in (p for p in rows if p["kind"] == "payment"):
        assert sum(r["amount"] for r in back if r["refund_of"] == p["serial"]) <= p["amount"]
    to_gift = sum(p["amount"] for p in back if p["method"] == "gift_card")
    to_points = sum(p["amount"] for p in back if p["method"] == "points")
    with oms.db.read() as s:
        assert wallets.account(s, "gift_card", "GC-E2E")["balance"] == 5000 - GIFT + to_gift
        assert wallets.account(s, "points", "C-E2E")["balance"] == 2000 - POINTS + to_points
        parent = s.scalars(select(Order).where(Order.number == number)).one()
        assert parent.refund_amount == worth
        invoiced, kept = balance(s, parent)
        assert invoiced == kept == paid_total(parent) - worth
        invoices = explain(s, number)["invoices"]
    assert [i["kind"] for i in invoices] == ["invoice"] + ["credit_note"] * 3
    assert sum(i["amount"] for i in invoices if i["kind"] == "credit_note") == worth
    # The stock: a tin back from the return, one back and one out again for the exchange, a mug back for the
    # exchange paid back; the broken mug and the withdrawn tin stayed with the customer.
    assert _on_hand(oms) == {"TEA-1": stock_delivered["TEA-1"] + 1, "MUG-1": stock_delivered["MUG-1"] + 1}

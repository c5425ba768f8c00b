"""Settlement statements: per merchant and period, sales with their share of the freight, refunds shared over the
lines they pay back, commission by rules/commission.yaml; the merchants' statements add up to the period's
invoices and credit notes."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms_engine.engine import OMS
from oms_engine.fulfilment.timeliness import Period
from oms_engine.settlement.commission import CommissionRates
from oms_engine.settlement.statements import statements
from tests.support import order_json
from tests.support.cli import Cli
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row

SERIAL = itertools.count()


def _period(oms: OMS) -> Period:
    now = oms.clock.now()
    return Period(now - timedelta(days=400), now + timedelta(seconds=1))


def _statements(oms: OMS, merchant: str | None = None) -> dict[str, Any]:
    with oms.db.read() as s:
        return statements(s, _period(oms), CommissionRates(oms.rulebook), merchant=merchant)


def _adds_up(data: dict[str, Any]) -> None:
    for cur, tot in data["totals"].items():
        mine = [one for one in data["statements"] if one["currency"] == cur]
        assert sum(one["gross"] for one in mine) == tot["invoiced"]
        assert sum(one["refunds"] for one in mine) == tot["credited"]
    for one in data["statements"]:
        assert one["payout"] == one["gross"] - one["refunds"] - one["commission"]
        assert one["gross"] == one["sales"] + one["sales_tax"] + one["freight"] + one["freight_tax"]


def test_each_merchant_is_settled_with_its_sales_refunds_freight_and_commission(quiet: OMS) -> None:
    oms = quiet
    # M-01 sells tea, M-03 a television: one order, one invoice, two merchants.
    mixed = ingest_one(oms, order_json("ST-1", [("TEA-1", 2), ("TV-1", 1)], coupon="18.00"))
    # A cancelled order of M-01 alone: its credit note is all M-01's.
    gone = ingest_one(oms, order_json("ST-2", [("MUG-1", 1)]))
    assert oms.commands.cancel(gone.number, actor="t") == "cancelled"
    data = _statements(oms)
    _adds_up(data)
    by = {st["merchant"]: st for st in data["statements"]}
    assert set(by) == {"M-01", "M-03"}
    order = order_row(oms, mixed.number)
    tea, tv = sorted(order.lines, key=lambda ln: ln.sku != "TEA-1")
    assert by["M-01"]["sales"] == tea.goods - tea.discount + 3900    # and the cancelled mug
    assert by["M-03"]["sales"] == tv.goods - tv.discount
    # The freight of the mixed order goes by the goods' share, to the cent; the mug's order has its own.
    assert by["M-01"]["freight"] + by["M-03"]["freight"] == 1000 + 1000
    assert by["M-01"]["refunds"] == 3900 + 1000 and by["M-03"]["refunds"] == 0
    # Electronics pay 2 %, everything else 5 %, on net sales before tax.
    assert by["M-03"]["commission"] == ((tv.goods - tv.discount) * 200 + 5000) // 10000
    [rate] = by["M-03"]["commission_by_rate"]
    assert (rate["category"], rate["rate_bp"], rate["rule"]) == ("electronics", 200, "electronics")
    mug_net = 3900 - 3900      # sold and refunded in the period (its freight too, on which nothing is charged)
    assert by["M-01"]["commission"] == ((tea.goods - tea.discount + mug_net) * 500 + 5000) // 10000
    one = _statements(oms, "M-03")
    assert [d["order"] for d in one["statements"][0]["documents"]] == [mixed.number]


def test_an_after_sales_refund_is_charged_to_the_merchant_of_the_units_it_pays_back(quiet: OMS) -> None:
    oms = quiet
    r = ingest_one(oms, order_json("ST-3", [("TEA-1", 1), ("MUG-1", 1)]))
    drive_until_state(oms, r.number, "delivered")
    mug = next(ln for ln in order_row(oms, r.number).lines if ln.sku == "MUG-1")
    case = oms.aftersales.open(r.number, "refund_only", {mug.line_no: 1}, "broken", actor="customer:C-OLD")
    oms.aftersales.act(case["number"], "approve", actor="support:ann")
    drive(oms)
    data = _statements(oms)
    _adds_up(data)
    [st] = data["statements"]       # both products are M-01's
    assert st["refunds"] == mug.goods - mug.discount


def test_a_period_counts_only_the_documents_issued_in_it(quiet: OMS) -> None:
    oms = quiet
    ingest_one(oms, order_json("ST-4", [("TEA-1", 1)]))
    now = oms.clock.now()
    with oms.db.read() as s:
        before = statements(s, Period(now - timedelta(days=30), now - timedelta(days=1)), CommissionRates(oms.rulebook))
    assert before["statements"] == [] and before["totals"] == {}


@st.composite
def _orders(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        skus = draw(st.lists(st.sampled_from(["TEA-1", "MUG-1", "TV-1", "SOFA-1", "PEN-1"]), min_size=1,
                             max_size=3, unique=True))
        lines = [(sku, draw(st.integers(1, 2))) for sku in skus]
        out.append({"lines": lines, "coupon": draw(st.integers(0, 999)), "cancel": draw(st.booleans())})
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_orders())
def test_the_statements_of_all_merchants_add_up_to_the_invoices_and_credit_notes(quiet: OMS,
                                                                                 orders: list[dict[str, Any]]) -> None:
    oms = quiet
    for o in orders:
        order = order_json(f"SP-{next(SERIAL)}", o["lines"], coupon=f"{o['coupon'] // 100}.{o['coupon'] % 100:02d}")
        order["placed_at"] = oms.clock.now().isoformat() + "Z"
        r = ingest_one(oms, order)
        if o["cancel"] and order_row(oms, r.number).status == "paid":
            oms.commands.cancel(r.number, actor="t")
    _adds_up(_statements(oms))


def test_statements_are_read_from_the_command_line(cli: Cli) -> None:
    [r] = cli.ingest(cli.write_orders("o.json", order_json("ST-CLI", [("TEA-1", 1), ("TV-1", 1)])))
    out = json.loads(cli("settlement", "--since", "2000-01-01", "--until", "2100-01-01", "--json").stdout)
    assert {one["merchant"] for one in out["statements"]} == {"M-01", "M-03"}
    _adds_up(out)
    text = cli("settlement", "M-03", "--since", "2000-01-01", "--until", "2100-01-01").stdout
    assert "electronics" in text and r["number"] in text
    assert "--since" in cli("settlement", "--since", "yesterday-ish", ok=False).stderr

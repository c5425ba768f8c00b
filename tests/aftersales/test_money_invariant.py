"""The money invariant over random lives of an order: paid by card, gift card and points in any mix, then
cancelled, or delivered and taken through after-sales cases (refund only, return and refund, exchange; approved,
denied, appealed, withdrawn) in any order. After every step, on both backends:

* what the ledger took in less what it gave back is what the order kept (every means of payment counted);
* no payment is paid back more than it brought;
* invoiced less credited is paid less refunded;
* every gift card and points balance is the sum of its movements, and redemptions less refunds of it.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.errors import OmsError
from oms_engine.invoices.issuing import balance
from oms_engine.payments import wallets
from oms_engine.payments.ledger import paid_total
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import Order, Payment, WalletAccount, WalletMovement
from tests.support import order_json
from tests.support.pipeline import drive, drive_until_state, ingest_one, order_row

# Kept together at WH-SH: the order is not split, and the parent is the order delivered.
PRICES = {"TEA-1": 5900, "MUG-1": 3900}
# Hypothesis draws the same values again while it shrinks: every example's order is a new one all the same.
SERIAL = itertools.count()


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    skus = draw(st.lists(st.sampled_from(sorted(PRICES)), min_size=1, max_size=2, unique=True))
    lines = [(sku, draw(st.integers(1, 3))) for sku in skus]
    gross = sum(PRICES[s] * q for s, q in lines) + 1000
    coupon = draw(st.integers(0, gross // 4))
    gift = draw(st.sampled_from([0, 0, 1, 777, gross // 3]))
    points = draw(st.sampled_from([0, 0, 1, 250, gross // 5]))
    return {"lines": lines, "coupon": coupon, "gift": gift, "gift_held": draw(st.booleans()), "points": points,
            "points_held": draw(st.booleans()), "cash": gross - coupon - gift - points}


STEP = st.one_of(
    st.tuples(st.just("case"), st.sampled_from(["refund_only", "return_refund", "exchange"]),
              st.integers(1, 2), st.integers(1, 2),
              st.sampled_from(["approve", "deny", "deny_appeal_approve", "cancel"])),
    st.tuples(st.just("wait")),         # a day of warehouse, carrier and provider answers
)


def _check(oms: OMS, number: str) -> None:
    with oms.db.read() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        rows = s.execute(select(Payment.serial, Payment.kind, Payment.amount, Payment.refund_of)
                         .where(Payment.order_id == order.id)).all()
        taken = sum(r.amount for r in rows if r.kind == "payment")
        back = sum(r.amount for r in rows if r.kind == "refund")
        refunded = order.refund_amount + sum(c.refund_amount for c in order.children)
        assert taken - back == paid_total(order) - refunded, rows
        for p in (r for r in rows if r.kind == "payment"):
            assert sum(r.amount for r in rows if r.refund_of == p.serial) <= p.amount, p.serial
        if order.payment_txn:
            invoiced, kept = balance(s, order)
            assert invoiced == kept
        for account in s.scalars(select(WalletAccount)):
            moved = s.scalar(select(func.coalesce(func.sum(WalletMovement.amount), 0))
                             .where(WalletMovement.account_id == account.id))
            assert account.balance == moved, account.holder


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(orders(), st.sampled_from([False, False, False, True]), st.lists(STEP, min_size=1, max_size=6))
def test_money_adds_up_over_any_payments_cancellation_and_after_sales(quiet: OMS, o: dict[str, Any], cancel: bool,
                                                                     steps: list[tuple[Any, ...]]) -> None:
    oms = quiet
    key = next(SERIAL)
    customer, code = f"C-MI{key}", f"GC-MI{key}"
    with oms.db.session() as s:
        if o["gift_held"] and o["gift"]:
            wallets.credit(s, "gift_card", code, "CNY", o["gift"] + 100, oms.clock.now(), actor="t")
        if o["points_held"] and o["points"]:
            wallets.credit(s, "points", customer, "CNY", o["points"], oms.clock.now(), actor="t")
    order = order_json(f"MI-{key}", o["lines"], customer=customer, coupon=_money(o["coupon"]),
                       gift_card=_money(o["gift"]), points=_money(o["points"]))
    order["payment"]["amount"] = _money(o["cash"])
    order["placed_at"] = oms.clock.now().isoformat() + "Z"     # one OMS for every example: its clock moved on
    if o["gift"]:
        order["gift_card_code"] = code
    for sku, qty in o["lines"]:     # one OMS for every example: its stock would run out
        oms.stock.post(Movement.PURCHASE_RECEIPT, "WH-SH", sku, qty * 2, document=f"PO-MI{key}", actor="t")
    number = ingest_one(oms, order).number
    _check(oms, number)
    assert order_row(oms, number).status == "paid", order_row(oms, number).hold_reason
    if cancel:
        oms.commands.cancel(number, actor="t", reason="changed mind")
        drive(oms)
        _check(oms, number)
        return
    drive_until_state(oms, number, "delivered")
    _check(oms, number)
    for step in steps:
        if step[0] == "wait":
            drive(oms, until=oms.clock.now() + timedelta(days=1))
        else:
            _, kind, line, units, decision = step
            try:
                case = oms.aftersales.open(number, kind, {line: units}, "", actor="t")
            except OmsError as e:
                event(f"refused: {str(e)[:40]}")
                continue        # no such line, more units than are left, the window closed...
            name = case["number"]
            try:
                if decision == "deny_appeal_approve":
                    oms.aftersales.act(name, "deny", actor="t")
                    oms.aftersales.act(name, "appeal", actor="t")
                    oms.aftersales.act(name, "approve", actor="t")
                else:
                    oms.aftersales.act(name, decision, actor="t")
            except OmsError:
                pass            # decided by the rules already, or not allowed in its state
            event(f"{kind} {decision}: {oms.aftersales.get(name)['status']}")
        _check(oms, number)
    drive(oms)
    _check(oms, number)

"""The recycle bin: an order binned by a blocking rule or a person gives its stock back at once, keeps its money,
can be restored to the review queue, and is cancelled for good (refunded, its channel told) when its time is up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oms_engine.channels.marketplace import Marketplace
from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.messaging.outbox import Kind
from oms_engine.orders.explain import explain
from oms_engine.orders.machine import IllegalTransition
from oms_engine.orders.queries import get_order
from oms_engine.storage.models import OutboxMessage, Payment, Reservation, Stock
from tests.channels.conftest import TOKEN
from tests.channels.test_reports import shopify_order
from tests.support import build_oms, copy_rules, order_json, payload
from tests.support.web import (
    dispatched_order,
    history_rows,
    ingest_one,
    status_of,
)

BIN_RULE = """
  - name: test-orders-to-the-bin
    priority: 5
    when:
      customer.ref: C-TEST
    then:
      - bin: {reason: looks like a test order}
"""


def reserved(oms: OMS, sku: str = "TEA-1") -> int:
    with oms.db.session() as s:
        return int(s.scalar(select(func.coalesce(func.sum(Stock.reserved), 0)).where(Stock.sku == sku)) or 0)


def held_by(oms: OMS, number: str) -> int:
    with oms.db.session() as s:
        order_id = get_order(s, number).id
        return int(s.scalar(select(func.coalesce(func.sum(Reservation.quantity), 0))
                            .where(Reservation.order_id == order_id)) or 0)


def refunds(oms: OMS, number: str) -> list[tuple[int, str]]:
    with oms.db.session() as s:
        return [(p.amount, p.status) for p in s.scalars(select(Payment).where(Payment.kind == "refund")
                                                        .order_by(Payment.id)) if p.serial.startswith(number)]


def told(oms: OMS) -> list[str]:
    with oms.db.session() as s:
        return list(s.scalars(select(OutboxMessage.topic).where(OutboxMessage.kind == Kind.CHANNEL.value)
                              .order_by(OutboxMessage.id)))


@pytest.fixture
def shop() -> Iterator[Marketplace]:
    with Marketplace(kind="shopify", token=TOKEN) as market:
        yield market


@pytest.fixture
def binning(tmp_path: Path, db_url: str, shop: Marketplace, monkeypatch: pytest.MonkeyPatch) -> Iterator[OMS]:
    """An OMS whose blocking rules bin the orders of customer C-TEST, with a Shopify shop that hears of its
    orders."""
    rules = copy_rules(tmp_path)
    blocking = rules / "blocking.yaml"
    blocking.write_text(blocking.read_text(encoding="utf-8") + BIN_RULE, encoding="utf-8")
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = build_oms(tmp_path, db_url, rules_dir=rules, timeouts={"recycle_bin_hours": 48},
                    channel_accounts={"shop-eu": {"adapter": "shopify", "url": shop.url,
                                                  "token_env": "SHOP_EU_TOKEN"}})
    yield oms
    oms.close()


def test_a_rule_bins_an_order_its_stock_is_freed_and_nothing_is_refunded_or_told_yet(
        binning: OMS, shop: Marketplace) -> None:
    before = reserved(binning)
    [res] = binning.intake.ingest("json", payload(order_json("B-1", [("TEA-1", 3)], customer="C-TEST")))
    assert res.number
    assert reserved(binning) == before + 3
    binning.pipeline.run_until_idle()
    assert status_of(binning, res.number) == "binned"
    assert reserved(binning) == before and held_by(binning, res.number) == 0
    with binning.db.session() as s:
        shown = explain(s, res.number)
    assert shown["hold_reason"] == "looks like a test order"
    assert [d["outcome"] for d in shown["decisions"] if d["point"] == "blocking"] == [
        {"bin": True, "reasons": ["looks like a test order"]}]
    assert ("bin", "binned", "rules:blocking") in history_rows(binning, res.number)
    assert refunds(binning, res.number) == []


def test_the_bin_period_ends_the_order_is_cancelled_refunded_and_its_channel_told(
        binning: OMS, shop: Marketplace) -> None:
    order = shopify_order(7101, [("TEA-1", 2, "59.00")])
    shop.add(order)
    [res] = binning.intake.ingest("shop-eu", json.dumps({"order": order}).encode())
    assert res.number
    number = res.number
    binning.commands.bin(number, actor="user:ops", note="customer asked us to wait")
    binning.pipeline.run_until_idle()
    assert status_of(binning, number) == "binned"
    assert told(binning) == [] and refunds(binning, number) == []
    clock = binning.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance(timedelta(hours=47))
    binning.pipeline.run_until_idle()
    assert status_of(binning, number) == "binned"      # still restorable
    clock.advance(timedelta(hours=2))
    binning.pipeline.run_until_idle()
    assert status_of(binning, number) == "cancelled"
    assert ("cancel", "cancelled", "timer") in history_rows(binning, number)
    assert told(binning) == ["channel.cancel", "channel.refund"]   # the shop took the money: paid back there
    assert shop.orders["7101"].order["cancelled_at"]
    assert [status for _, status in refunds(binning, number)] == ["refunded"]


def test_a_restored_order_is_reviewed_again_gets_its_stock_back_and_is_not_binned_twice(binning: OMS) -> None:
    [res] = binning.intake.ingest("json", payload(order_json("B-2", [("TEA-1", 2)], customer="C-TEST")))
    assert res.number
    number = res.number
    binning.pipeline.run_until_idle()
    assert status_of(binning, number) == "binned"
    assert binning.commands.restore(number, actor="user:ops") == "on_hold"
    assert held_by(binning, number) == 2
    with binning.db.session() as s:
        shown = explain(s, number)
    assert shown["hold_stage"] == "restored"
    assert shown["hold_reason"] == "restored from the recycle bin (binned: looks like a test order)"
    assert binning.commands.release(number, actor="user:ops", note="a real customer") == "paid"
    binning.pipeline.run_until_idle()
    # Restoring was the review: the blocking rule that binned it is not asked again.
    assert status_of(binning, number) == "dispatched"


def test_stock_taken_while_it_was_binned_is_named_on_restore_and_release_waits_for_it(binning: OMS) -> None:
    [res] = binning.intake.ingest("json", payload(order_json("B-3", [("TEA-1", 2)], customer="C-TEST")))
    assert res.number
    number = res.number
    binning.pipeline.run_until_idle()
    with binning.db.session() as s:
        free = int(s.scalar(select(func.sum(Stock.on_hand - Stock.reserved)).where(Stock.sku == "TEA-1")) or 0)
    # Another customer takes every unit the binned order gave back, and more is not coming.
    ingest_one(binning, "B-OTHER", lines=[("TEA-1", free)])
    binning.commands.restore(number, actor="user:ops")
    with binning.db.session() as s:
        shown = explain(s, number)
    assert "insufficient stock for SKU 'TEA-1'" in shown["hold_reason"]
    with pytest.raises(CommandError, match="insufficient stock for SKU 'TEA-1'"):
        binning.commands.release(number, actor="user:ops")
    assert status_of(binning, number) == "on_hold"


def test_a_payment_that_arrives_while_binned_is_kept_with_the_order(binning: OMS) -> None:
    [res] = binning.intake.ingest("json", payload(order_json("B-4", [("TEA-1", 1)], paid=False)))
    assert res.number
    number = res.number
    assert status_of(binning, number) == "pending_payment"
    binning.commands.bin(number, actor="user:ops", note="duplicate?")
    assert binning.commands.pay(number, 6900, "PAY-B-4", actor="payment") == "binned"
    with binning.db.session() as s:
        shown = explain(s, number)
    assert shown["amounts"]["paid_amount"] == 6900 and refunds(binning, number) == []
    binning.commands.restore(number, actor="user:ops")
    assert binning.commands.release(number, actor="user:ops") == "paid"


def test_only_orders_not_yet_routed_go_in_the_bin_and_only_binned_ones_come_out(binning: OMS) -> None:
    number = dispatched_order(binning, "B-5")
    before = history_rows(binning, number)
    with pytest.raises(IllegalTransition, match=r"'bin' is not allowed in state 'dispatched'"):
        binning.commands.bin(number, actor="user:ops")
    with pytest.raises(IllegalTransition, match="'restore'"):
        binning.commands.restore(number, actor="user:ops")
    assert history_rows(binning, number) == before


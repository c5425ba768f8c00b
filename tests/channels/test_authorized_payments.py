"""Payments a channel only authorized (Shopify's manual capture, or capture on fulfilment): the order goes on as a
paid one, a cancellation before anything ships voids rather than refunds, and once Shopify captures it the payment
says so. Against the marketplace stand-in over real HTTP on loopback."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from oms_engine.channels.marketplace import Marketplace
from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from oms_engine.messaging.outbox import Kind
from oms_engine.orders.explain import explain
from oms_engine.storage.models import OutboxMessage
from tests.channels.test_reports import ship, shopify_order
from tests.support.web import history_rows, status_of


def authorized(oid: int, lines: list[tuple[str, int, str]]) -> dict[str, Any]:
    order = shopify_order(oid, lines)
    order["financial_status"] = "authorized"
    return order


def take_in(oms: OMS, shop: Marketplace, order: dict[str, Any]) -> str:
    shop.add(order)
    [res] = oms.intake.ingest("shop-eu", json.dumps({"order": order}).encode())
    assert res.number and not res.error, res
    return res.number


def money(oms: OMS, number: str) -> list[tuple[str, str, int]]:
    with oms.db.session() as s:
        return [(p["kind"], p["status"], p["amount"]) for p in explain(s, number)["payments"]]


def told(oms: OMS) -> list[str]:
    with oms.db.session() as s:
        return list(s.scalars(select(OutboxMessage.topic).where(OutboxMessage.kind == Kind.CHANNEL.value)
                              .order_by(OutboxMessage.id)))


def test_an_authorized_order_goes_to_its_warehouse_and_no_payment_window_cancels_it(shop_oms: OMS,
                                                                                    shop: Marketplace) -> None:
    number = take_in(shop_oms, shop, authorized(7201, [("TEA-1", 2, "59.00")]))
    shop_oms.pipeline.run_until_idle()
    assert status_of(shop_oms, number) == "dispatched"
    assert money(shop_oms, number) == [("payment", "authorized", 12800)]
    clock = shop_oms.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance(timedelta(hours=3))           # far past the 30-minute payment window
    shop_oms.pipeline.run_until_idle()
    assert "payment_timeout" not in [event for event, _, _ in history_rows(shop_oms, number)]
    ship(shop_oms, number, "SF7201")
    [fulfilment] = shop.fulfillments["7201"]
    assert fulfilment["tracking_number"] == "SF7201"
    # Fulfilled whole, Shopify captured it (as the shop is set): it says so when it sends the order again.
    assert shop.orders["7201"].order["financial_status"] == "paid"
    [again] = shop_oms.intake.ingest("shop-eu", json.dumps({"order": shop.orders["7201"].order}).encode())
    assert again.number == number
    shop_oms.pipeline.run_until_idle()
    assert money(shop_oms, number) == [("payment", "captured", 12800)]
    with shop_oms.db.session() as s:
        shown = explain(s, number)
    [update] = shown["updates"]
    assert "captured: payment " in update["outcome"] and "captured" in update["outcome"]
    assert [e["to"] for e in shown["payments"][0]["log"]] == ["authorized", "captured"]


def test_cancelled_before_it_ships_the_authorization_is_voided_not_refunded(shop_oms: OMS, shop: Marketplace) -> None:
    number = take_in(shop_oms, shop, authorized(7202, [("TEA-1", 1, "59.00")]))
    shop_oms.pipeline.run_until_idle()
    assert shop_oms.commands.cancel(number, actor="user:ops", reason="customer changed their mind") == "cancelled"
    shop_oms.pipeline.run_until_idle()
    assert money(shop_oms, number) == [("payment", "authorized", 6900), ("refund", "voided", 6900)]
    assert told(shop_oms) == ["channel.cancel"]           # Shopify releases the authorization as it cancels
    assert shop.orders["7202"].order["cancelled_at"]
    assert "7202" not in shop.refunds
    with shop_oms.db.session() as s:
        shown = explain(s, number)
    assert shown["amounts"]["refund_amount"] == 6900
    [voided] = [p for p in shown["payments"] if p["kind"] == "refund"]
    assert "releases the authorization" in voided["log"][0]["note"]


def test_once_a_part_has_shipped_a_cancelled_part_is_refunded_at_the_channel(shop_oms: OMS,
                                                                            shop: Marketplace) -> None:
    # Two merchants' goods: split in two, each shipped on its own.
    number = take_in(shop_oms, shop, authorized(7203, [("TEA-1", 1, "59.00"), ("PEN-1", 2, "5.00")]))
    shop_oms.pipeline.run_until_idle()
    with shop_oms.db.session() as s:
        children = {c["number"]: explain(s, c["number"]) for c in explain(s, number)["children"]}
    tea = next(n for n, c in children.items() if c["lines"][0]["sku"] == "TEA-1")
    pen = next(n for n in children if n != tea)
    ship(shop_oms, tea, "SF7203")
    assert shop.orders["7203"].order["financial_status"] == "authorized"   # part fulfilled: nothing captured yet
    assert shop_oms.commands.cancel(pen, actor="user:ops", reason="out of pens") == "cancelled"
    shop_oms.pipeline.run_until_idle()
    # A part has left: the money may be captured, so it is a refund; Shopify has nothing to refund from yet.
    with shop_oms.db.session() as s:
        [refund] = [p for p in explain(s, number)["payments"] if p["kind"] == "refund"]
    share = children[pen]["amounts"]["payable"]          # its goods and its share of the freight
    assert refund["status"] == "failed" and refund["amount"] == share
    assert "no successful payment to refund" in refund["log"][-1]["note"]
    shop.capture("7203")                        # the shop captures by hand, then the refund is sent again
    assert shop_oms.commands.retry_refund(refund["serial"], actor="user:ops") == "due"
    shop_oms.pipeline.run_until_idle()
    assert [status for kind, status, _ in money(shop_oms, number) if kind == "refund"] == ["refunded"]
    # The part's lines were cancelled at Shopify first (restocked, no money), then the money went back.
    [lines, made] = shop.refunds["7203"]
    assert [i["line_item_id"] for i in lines["refund_line_items"]] == [72032] and not lines["transactions"]
    assert [tx["amount"] for tx in made["transactions"]] == [f"{share / 100:.2f}"]

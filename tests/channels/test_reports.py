"""What the OMS tells the shops of their orders: shipments and tracking, cancellations and refunds, through the
outbox to Shopify's, WooCommerce's and Amazon's APIs, played on loopback over real HTTP."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.channels.marketplace import Marketplace
from oms_engine.engine import OMS
from oms_engine.messaging.outbox import Kind
from oms_engine.orders.explain import explain
from oms_engine.storage.models import Order, OutboxMessage, Payment
from tests.channels.conftest import TOKEN
from tests.support import build_oms, copy_rules
from tests.support.web import status_of

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


def shopify_order(oid: int, lines: list[tuple[str, int, str]], *, freight: str = "10.00",
                  paid: bool = True) -> dict[str, Any]:
    """A Shopify order over the test catalogue (each line: SKU, quantity, unit price), shipped to Shanghai, its
    totals agreeing."""
    sample = json.loads((SAMPLES / "shopify" / "order.json").read_text())["order"]
    order = copy.deepcopy(sample)
    items = []
    for i, (sku, qty, price) in enumerate(lines, start=1):
        item = copy.deepcopy(sample["line_items"][1])
        item.update(id=oid * 10 + i, sku=sku, quantity=qty, price=price, title=sku, name=sku, properties=[])
        items.append(item)
    goods = sum(int(price.replace(".", "")) * qty for _, qty, price in lines)
    total = goods + int(freight.replace(".", ""))
    address = {**sample["shipping_address"], "address1": "1 Century Avenue", "address2": f"Flat {oid}",
               "city": "Shanghai", "province": "Shanghai", "province_code": "SH", "country": "China",
               "country_code": "CN", "zip": "200120", "phone": "13800000000"}
    order.update(id=oid, name=f"#{oid}", order_number=oid, currency="CNY", line_items=items, discount_codes=[],
                 tax_lines=[], total_tax="0.00", total_discounts="0.00", fulfillments=[],
                 financial_status="paid" if paid else "pending", gateway="shopify_payments",
                 payment_gateway_names=["shopify_payments"], shipping_address=address, billing_address=address,
                 subtotal_price=f"{goods / 100:.2f}", total_line_items_price=f"{goods / 100:.2f}",
                 total_price=f"{total / 100:.2f}", shipping_lines=[{"code": "Standard", "price": freight,
                                                                     "source": "shopify", "title": "Standard"}])
    return order




def take_in(oms: OMS, market: Marketplace, order: dict[str, Any], account: str = "shop-eu") -> str:
    market.add(order)
    [res] = oms.intake.ingest(account, json.dumps({"order": order}).encode())
    assert res.number and not res.error, res
    return res.number


def callback(oms: OMS, source: str, number: str, status: str, **data: Any) -> None:
    with oms.db.session() as s:
        oms.callbacks.receive(s, source, {"order_number": number, "status": status, **data})
    oms.pipeline.run_until_idle()


def ship(oms: OMS, number: str, tracking_no: str, carrier: str = "SF") -> None:
    for step in ("ACCEPTED", "PICKING", "PACKED"):
        callback(oms, "sim_wms", number, step)
    callback(oms, "sim_wms", number, "SHIPPED", tracking_no=tracking_no, carrier=carrier)
    assert status_of(oms, number) == "shipped"


def reports(oms: OMS) -> list[tuple[str, str, str]]:
    with oms.db.session() as s:
        return [(m.topic, m.status, m.last_error) for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == Kind.CHANNEL.value).order_by(OutboxMessage.id))]


def test_a_shipment_and_its_delivery_reach_shopify_once(shop_oms: OMS, shop: Marketplace) -> None:
    number = take_in(shop_oms, shop, shopify_order(7001, [("TEA-1", 2, "59.00")]))
    shop_oms.pipeline.run_until_idle()
    assert status_of(shop_oms, number) == "dispatched"
    for step in ("ACCEPTED", "PICKING", "PACKED"):
        callback(shop_oms, "sim_wms", number, step)
    assert reports(shop_oms) == []      # nothing the shop shows its customer yet
    callback(shop_oms, "sim_wms", number, "SHIPPED", tracking_no="SF1234567", carrier="SF")
    [fulfilment] = shop.fulfillments["7001"]
    assert (fulfilment["tracking_number"], fulfilment["tracking_company"]) == ("SF1234567", "SF")
    assert fulfilment["line_items"] == [{"id": 70011, "quantity": 2}]
    assert shop.orders["7001"].order["fulfillment_status"] == "fulfilled"
    callback(shop_oms, "sim_carrier", number, "IN_TRANSIT")
    callback(shop_oms, "sim_carrier", number, "SIGNED")
    assert [e["status"] for e in fulfilment["events"]] == ["in_transit", "delivered"]
    assert [(t, st) for t, st, _ in reports(shop_oms)] == [
        ("channel.shipment", "sent"), ("channel.tracking", "sent"), ("channel.tracking", "sent")]


def refunds_of(oms: OMS, number: str) -> list[tuple[str, int, str, str | None]]:
    with oms.db.session() as s:
        return [(p.serial, p.amount, p.status, p.provider_ref) for p in s.scalars(
            select(Payment).where(Payment.kind == "refund").order_by(Payment.id))
            if p.serial.startswith(number)]


def test_a_cancellation_here_cancels_at_shopify_and_the_refund_is_made_there(shop_oms: OMS,
                                                                             shop: Marketplace) -> None:
    number = take_in(shop_oms, shop, shopify_order(7002, [("TEA-1", 1, "59.00")]))
    assert shop_oms.commands.cancel(number, actor="user:ops", reason="out of stock") == "cancelled"
    shop_oms.pipeline.run_until_idle()
    listed = shop.orders["7002"].order
    assert listed["cancelled_at"] and listed["cancel_reason"] == "other"
    [refund] = shop.refunds["7002"]
    [money] = refund["transactions"]
    # Against the shop's own sale, for what the customer paid: 59.00 and 10.00 freight.
    assert (money["parent_id"], money["amount"], money["kind"]) == (70027, "69.00", "refund")
    [(serial, amount, status, ref)] = refunds_of(shop_oms, number)
    assert (amount, status, ref) == (6900, "refunded", str(refund["id"]))
    assert f"[oms refund {serial}]" in refund["note"]
    assert listed["financial_status"] == "refunded"
    # The payment provider the OMS uses for its own refunds was not asked: the shop holds the money.
    assert [t for t, *_ in reports(shop_oms)] == ["channel.cancel", "channel.refund"]
    with shop_oms.db.session() as s:
        assert not s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "payment.refund")).all()


def test_what_the_shop_itself_cancelled_is_not_told_back(shop_oms: OMS, shop: Marketplace) -> None:
    order = shopify_order(7003, [("TEA-1", 1, "59.00")])
    number = take_in(shop_oms, shop, order)
    cancelled = {**order, "cancelled_at": "2026-12-01T10:00:00+08:00", "cancel_reason": "customer"}
    [res] = shop_oms.intake.ingest("shop-eu", json.dumps({"order": cancelled}).encode())
    assert res.status == "cancelled"
    shop_oms.pipeline.run_until_idle()
    assert status_of(shop_oms, number) == "cancelled"
    assert "channel.cancel" not in [t for t, *_ in reports(shop_oms)]
    assert not any(path.endswith("/cancel.json") for _, path, _ in shop.received)


def test_a_shop_that_is_down_or_slow_hears_each_report_once_when_it_is_back(shop_oms: OMS,
                                                                           shop: Marketplace) -> None:
    number = take_in(shop_oms, shop, shopify_order(7004, [("TEA-1", 1, "59.00")]))
    shop_oms.pipeline.run_until_idle()
    shop.fail(3)
    ship(shop_oms, number, "SF7004")
    [(topic, status, error)] = reports(shop_oms)
    assert (topic, status) == ("channel.shipment", "pending") and "503" in error
    assert "7004" not in shop.fulfillments
    for _ in range(3):      # down for two more tries, then back
        shop_oms.clock.advance(timedelta(hours=1))
        shop_oms.pipeline.run_until_idle()
    assert [f["tracking_number"] for f in shop.fulfillments["7004"]] == ["SF7004"]
    # A worker killed after the shop took it and before the OMS recorded it: the report goes again.
    with shop_oms.db.session() as s:
        msg = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "channel.shipment")).one()
        msg.status = "pending"
    shop_oms.pipeline.run_until_idle()
    assert len(shop.fulfillments["7004"]) == 1
    assert [st for t, st, _ in reports(shop_oms) if t == "channel.shipment"] == ["sent"]


def test_an_order_the_shop_does_not_know_is_refused_for_good_and_said_so(shop_oms: OMS, shop: Marketplace) -> None:
    order = shopify_order(7005, [("TEA-1", 1, "59.00")])
    [res] = shop_oms.intake.ingest("shop-eu", json.dumps({"order": order}).encode())    # never on the shop
    assert res.number
    shop_oms.pipeline.run_until_idle()
    ship(shop_oms, res.number, "SF7005")
    [(topic, status, error)] = reports(shop_oms)
    assert (topic, status) == ("channel.shipment", "dead") and "404" in error
    with shop_oms.db.session() as s:
        shown = explain(s, res.number)
    assert any("refused by its receiver" in i["action"] for i in shown["incidents"])


def test_an_account_told_not_to_report_queues_nothing(tmp_path: Path, sqlite_url: str, shop: Marketplace,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = build_oms(tmp_path, sqlite_url, channel_accounts={"shop-eu": {
        "adapter": "shopify", "url": shop.url, "token_env": "SHOP_EU_TOKEN", "report_status": False}})
    try:
        assert oms.reports is None
        number = take_in(oms, shop, shopify_order(7006, [("TEA-1", 1, "59.00")]))
        oms.commands.cancel(number, actor="user:ops", reason="test")
        oms.pipeline.run_until_idle()
        assert reports(oms) == [] and shop.received == []
    finally:
        oms.close()


def test_a_split_order_is_fulfilled_at_shopify_part_by_part(shop_oms: OMS, shop: Marketplace) -> None:
    # PEN-1 is only in Guangzhou, RARE-1 only in Shanghai: two parcels.
    number = take_in(shop_oms, shop, shopify_order(7007, [("PEN-1", 2, "5.00"), ("RARE-1", 1, "99.00")]))
    shop_oms.pipeline.run_until_idle()
    with shop_oms.db.session() as s:
        children = [c["number"] for c in explain(s, number)["children"]]
    assert len(children) == 2
    ship(shop_oms, children[0], "T-A")
    assert shop.orders["7007"].order["fulfillment_status"] == "partial"
    ship(shop_oms, children[1], "T-B", "ZTO")
    shipped = {f["tracking_number"]: f["line_items"] for f in shop.fulfillments["7007"]}
    assert sorted(shipped) == ["T-A", "T-B"]
    assert sorted(li["id"] for items in shipped.values() for li in items) == [70071, 70072]
    assert shop.orders["7007"].order["fulfillment_status"] == "fulfilled"


def woo_order(oid: int) -> dict[str, Any]:
    sample = json.loads((SAMPLES / "woocommerce" / "order.json").read_text())
    order = copy.deepcopy(sample)
    line = {**sample["line_items"][0], "id": oid * 10 + 1, "sku": "TEA-1", "quantity": 2, "subtotal": "118.00",
            "subtotal_tax": "0.00", "total": "118.00", "total_tax": "0.00", "taxes": [], "price": 59}
    address = {**sample["shipping"], "address_1": "1 Century Avenue", "address_2": f"Flat {oid}", "city": "Shanghai",
               "state": "Shanghai", "postcode": "200120", "country": "CN"}
    order.update(id=oid, currency="CNY", line_items=[line], total="128.00", total_tax="0.00", cart_tax="0.00",
                 shipping_total="10.00", tax_lines=[], shipping=address,
                 shipping_lines=[{**sample["shipping_lines"][0], "total": "10.00"}])
    return order


def test_woocommerce_hears_of_the_shipment_in_a_note_and_refunds_through_its_gateway(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOO_KEYS", "ck_1:cs_2")
    with Marketplace(kind="woocommerce", token="ck_1:cs_2") as woo:
        oms = build_oms(tmp_path, db_url, channel_accounts={"woo": {
            "adapter": "woocommerce", "url": woo.url, "token_env": "WOO_KEYS"}})
        try:
            order = woo_order(8001)
            woo.add(order)
            [res] = oms.intake.ingest("woo", json.dumps(order).encode())
            assert res.number and not res.error, res
            oms.pipeline.run_until_idle()
            ship(oms, res.number, "YT8001", "YTO")
            [note] = woo.notes["8001"]
            assert note["customer_note"] and "YTO" in note["note"] and "YT8001" in note["note"]
            assert "2 x TEA-1" in note["note"]
            assert woo.orders["8001"].order["status"] == "completed"
            second = woo_order(8002)
            woo.add(second)
            [res2] = oms.intake.ingest("woo", json.dumps(second).encode())
            oms.commands.cancel(res2.number, actor="user:ops", reason="customer asked")
            oms.pipeline.run_until_idle()
            [refund] = woo.refunds["8002"]
            assert (refund["amount"], refund["refunded_payment"]) == ("128.00", True)
            assert [status for _, _, status, _ in refunds_of(oms, res2.number)] == ["refunded"]
        finally:
            oms.close()


def amazon_order(oid: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    def first(name: str, key: str) -> dict[str, Any]:
        return copy.deepcopy(json.loads((SAMPLES / "amazon" / name).read_text())[0]["payload"][key][0])

    header, item = first("orders.json", "Orders"), first("order_items.json", "OrderItems")
    header.update(AmazonOrderId=oid, OrderTotal={"CurrencyCode": "CNY", "Amount": "118.00"})
    item.update(OrderItemId=f"{oid}-1", SellerSKU="TEA-1", QuantityOrdered=2,
                ItemPrice={"CurrencyCode": "CNY", "Amount": "118.00"},
                ItemTax={"CurrencyCode": "CNY", "Amount": "0.00"},
                PromotionDiscount={"CurrencyCode": "CNY", "Amount": "0.00"})
    item.pop("BuyerRequestedCancel")
    address = {"Name": "Li Lei", "AddressLine1": "1 Century Avenue", "AddressLine2": f"Flat {oid}", "City": "Shanghai",
               "StateOrRegion": "Shanghai", "PostalCode": "200120", "CountryCode": "CN", "Phone": "13800000000"}
    return header, [item], address


def test_amazon_hears_of_the_shipment_and_takes_cancellations_and_refunds_as_feeds(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMZ_TOKEN", "Atza|t")
    with Marketplace(kind="amazon", token="Atza|t") as amazon:
        oms = build_oms(tmp_path, db_url, channel_accounts={"amazon-cn": {
            "adapter": "amazon", "url": amazon.url, "token_env": "AMZ_TOKEN",
            "settings": {"marketplace_ids": ["ATVPDKIKX0DER"], "seller_id": "A2SELLER"}}})
        try:
            for oid in ("111-0000001-0000001", "111-0000002-0000002"):
                header, items, address = amazon_order(oid)
                amazon.add(header, items=items, address=address)
            assert oms.pulling.pull("amazon-cn").orders == 2
            oms.pipeline.run_until_idle()
            with oms.db.session() as s:
                numbers = dict(s.execute(select(Order.external_id, Order.number)
                                         .where(Order.channel == "amazon-cn")).all())
            ship(oms, numbers["111-0000001-0000001"], "SF-AMZ-1")
            shipped = amazon.orders["111-0000001-0000001"]
            assert shipped.order["OrderStatus"] == "Shipped" and shipped.items[0]["QuantityShipped"] == 2
            [(_, _, confirm)] = [r for r in amazon.received if r[1].endswith("/shipmentConfirmation")]
            assert confirm["packageDetail"]["trackingNumber"] == "SF-AMZ-1"
            assert confirm["packageDetail"]["carrierCode"] == "Other"
            assert confirm["packageDetail"]["orderItems"] == [{"orderItemId": "111-0000001-0000001-1", "quantity": 2}]
            other = numbers["111-0000002-0000002"]
            oms.commands.cancel(other, actor="user:ops", reason="address undeliverable")
            oms.pipeline.run_until_idle()
            assert amazon.orders["111-0000002-0000002"].order["OrderStatus"] == "Canceled"
            kinds = [f["feedType"] for f in amazon.feeds]
            assert kinds == ["POST_ORDER_ACKNOWLEDGEMENT_DATA", "POST_PAYMENT_ADJUSTMENT_DATA"]
            adjustment = ET.fromstring(amazon.feeds[1]["content"])
            assert adjustment.findtext(".//MerchantIdentifier") == "A2SELLER"
            [(serial, amount, status, ref)] = refunds_of(oms, other)
            assert (amount, status, ref) == (11800, "refunded", amazon.feeds[1]["feedId"])
            assert amazon.adjustments[f"{serial}-1"]["amount"] == "118.00"
        finally:
            oms.close()


def test_a_refund_the_shop_refuses_fails_with_its_words_and_goes_again_when_retried(shop_oms: OMS,
                                                                                   shop: Marketplace) -> None:
    order = shopify_order(7010, [("TEA-1", 1, "59.00")])
    shop.add({**order, "financial_status": "pending"})     # the shop has no payment to refund against
    [res] = shop_oms.intake.ingest("shop-eu", json.dumps({"order": order}).encode())
    shop_oms.commands.cancel(res.number, actor="user:ops", reason="customer asked")
    shop_oms.pipeline.run_until_idle()
    [(serial, _, status, _)] = refunds_of(shop_oms, res.number)
    assert status == "failed"
    with shop_oms.db.session() as s:
        [shown] = [p for p in explain(s, res.number)["payments"] if p["serial"] == serial]
    assert "no successful payment to refund" in shown["log"][-1]["note"]
    shop.change("7010", financial_status="paid")
    assert shop_oms.commands.retry_refund(serial, actor="user:ops") == "due"
    shop_oms.pipeline.run_until_idle()
    assert [status for _, _, status, _ in refunds_of(shop_oms, res.number)] == ["refunded"]
    assert len(shop.refunds["7010"]) == 1


def test_a_blocking_rule_refuses_an_order_at_placement_and_the_shop_is_told_why(
        tmp_path: Path, db_url: str, shop: Marketplace, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = copy_rules(tmp_path)
    blocking = rules / "blocking.yaml"
    blocking.write_text(blocking.read_text(encoding="utf-8") + """
  - name: nothing-at-exactly-69
    priority: 5
    when:
      order.payable: 6900
    then:
      - refuse: {reason: we do not deliver to this address}
""", encoding="utf-8")
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = build_oms(tmp_path, db_url, rules_dir=rules, channel_accounts={"shop-eu": {
        "adapter": "shopify", "url": shop.url, "token_env": "SHOP_EU_TOKEN"}})
    try:
        number = take_in(oms, shop, shopify_order(7020, [("TEA-1", 1, "59.00")]))
        oms.pipeline.run_until_idle()
        assert status_of(oms, number) == "cancelled"
        with oms.db.session() as s:
            shown = explain(s, number)
        assert shown["hold_reason"] == "we do not deliver to this address"
        assert [d["outcome"] for d in shown["decisions"] if d["point"] == "blocking"] == [
            {"refuse": True, "reasons": ["we do not deliver to this address"]}]
        [(_, _, cancel)] = [r for r in shop.received if r[1].endswith("/cancel.json")]
        assert cancel["reason"] == "other"
        assert shop.orders["7020"].order["cancelled_at"]
        with oms.db.session() as s:
            [told] = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "channel.cancel")).all()
            assert told.payload["reason"] == "refused at placement: we do not deliver to this address"
        assert [status for _, _, status, _ in refunds_of(oms, number)] == ["refunded"]
    finally:
        oms.close()

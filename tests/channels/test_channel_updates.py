"""What each marketplace says of an order after sending it reaches the order: cancelled there, cancelled here; a
new shipping address there, asked of the warehouse that holds the order."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.channels.marketplace import Marketplace
from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.orders.explain import explain
from oms_engine.plugin.testing import drive_until_state
from oms_engine.storage.models import Order
from tests.support import build_oms

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


def _load(*parts: str) -> Any:
    return json.loads((SAMPLES.joinpath(*parts)).read_text(encoding="utf-8"))


def _status(oms: OMS, channel: str, external_id: str) -> str:
    with oms.db.session() as s:
        return s.scalar(select(Order.status).where(Order.channel == channel, Order.external_id == external_id)) or ""


def test_a_shopify_order_cancelled_at_the_shop_is_cancelled_here(oms: OMS) -> None:
    order = _load("shopify", "order.json")
    [first] = oms.intake.ingest("shopify", json.dumps(order).encode())
    assert first.number and not first.error
    cancelled = copy.deepcopy(order)
    cancelled["order"].update(cancelled_at="2008-01-10T12:00:00-05:00", cancel_reason="customer")
    [res] = oms.intake.ingest("shopify", json.dumps(cancelled).encode())
    assert res.update is not None and res.status == "cancelled", res
    with oms.db.session() as s:
        [upd] = explain(s, first.number)["updates"]
    assert upd["changes"][0] == {"kind": "cancelled", "before": "on_hold", "after": "cancelled at the channel",
                                 "outcome": "order cancelled"}


def test_a_woocommerce_order_cancelled_in_the_shop_is_cancelled_here(oms: OMS) -> None:
    order = _load("woocommerce", "order.json")
    [first] = oms.intake.ingest("woocommerce", json.dumps(order).encode())
    assert first.number and not first.error
    [res] = oms.intake.ingest("woocommerce", json.dumps({**order, "status": "cancelled"}).encode())
    assert res.status == "cancelled" and "cancelled: order cancelled" in (res.message or "")


def test_a_woocommerce_order_shipping_elsewhere_after_dispatch_is_asked_of_the_warehouse(oms: OMS) -> None:
    oms.masterdata.apply("skus", [Row("t", {"channel": "woocommerce", "channel_sku": c, "sku": s})
                                  for c, s in (("product:93", "TEA-1"), ("Bar3", "MUG-1"))], actor="t", source="t")
    order = _load("woocommerce", "order.json")
    [first] = oms.intake.ingest("woocommerce", json.dumps(order).encode())
    oms.pipeline.run_until_idle()
    assert _status(oms, "woocommerce", str(order["id"])) == "dispatched"
    moved = copy.deepcopy(order)
    moved["shipping"]["address_1"] = "1 Infinite Loop"
    [res] = oms.intake.ingest("woocommerce", json.dumps(moved).encode())
    assert "ship_to: asked of WH-SH (address request" in (res.message or ""), res
    with oms.db.session() as s:
        [asked] = explain(s, first.number)["address_requests"]
        assert s.scalar(select(Order.ship_to).where(Order.number == first.number))["line1"] == "969 Market"
    assert asked["ship_to"]["line1"] == "1 Infinite Loop" and asked["status"] == "pending"
    # The simulated warehouse has not packed it yet: it takes the new address.
    drive_until_state(oms, first.number, "picking")
    with oms.db.session() as s:
        story = explain(s, first.number)
    assert story["address_requests"][0]["status"] == "accepted" and story["ship_to"]["line1"] == "1 Infinite Loop"


def test_an_amazon_order_canceled_at_amazon_is_cancelled_by_the_next_pull(tmp_path: Path, sqlite_url: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    header = _load("amazon", "orders.json")[0]["payload"]["Orders"][0]
    items = _load("amazon", "order_items.json")[0]["payload"]["OrderItems"]
    address = _load("amazon", "order_address.json")[0]["payload"]["ShippingAddress"]
    monkeypatch.setenv("AMZ_TOKEN", "Atza|t")
    with Marketplace(kind="amazon", token="Atza|t") as market:
        oid = market.add(header, items=items, address=address)
        oms = build_oms(tmp_path, sqlite_url, channel_accounts={"amazon-us": {
            "adapter": "amazon", "url": market.url, "token_env": "AMZ_TOKEN",
            "settings": {"marketplace_ids": ["ATVPDKIKX0DER"]}}})
        try:
            assert oms.pulling.pull("amazon-us").orders == 1
            assert _status(oms, "amazon-us", oid) not in ("cancelled", "")
            market.change(oid, OrderStatus="Canceled")
            report = oms.pulling.pull("amazon-us")
            assert report.orders == 0 and report.error == ""
            assert _status(oms, "amazon-us", oid) == "cancelled"
        finally:
            oms.close()


def test_a_shopify_buyer_who_shopped_in_chinese_is_told_in_chinese(oms: OMS) -> None:
    order = _load("shopify", "order.json")
    order["order"]["customer_locale"] = "zh-CN"
    [res] = oms.intake.ingest("shopify", json.dumps(order).encode())
    with oms.db.session() as s:
        contact = s.scalar(select(Order.contact).where(Order.number == res.number))
    assert contact is not None and contact["language"] == "zh-CN"

"""Stock pushed to the shops (``channel.stock``): each adapter's ``report`` sets the quantities available to sell
at Shopify, WooCommerce and Amazon, played on loopback over real HTTP (oms_engine/channels/marketplace.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from oms_engine import ChannelReport, MessageRefused
from oms_engine.channels.accounts import Account
from oms_engine.channels.marketplace import Marketplace
from oms_plugins.channels.amazon import AmazonChannel
from oms_plugins.channels.pull_api import ChannelApiError
from oms_plugins.channels.shopify import ShopifyChannel
from oms_plugins.channels.woocommerce import WooCommerceChannel

TOKEN = "shpat_stock"
WOO_KEYS = "ck_1:cs_2"
AMZ_TOKEN = "Atza|stock"


def stock(levels: dict[str, int], ident: int = 1) -> ChannelReport:
    return ChannelReport(ident, "", "", "channel.stock",
                         {"levels": [{"sku": sku, "quantity": q} for sku, q in levels.items()],
                          "at": "2026-12-01T10:00:00+00:00"})


def posts(market: Marketplace, ending: str) -> list[Any]:
    return [body for method, path, body in market.received if method == "POST" and path.endswith(ending)]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


# -- Shopify -----------------------------------------------------------------------------------------------------
@pytest.fixture
def shop() -> Iterator[Marketplace]:
    with Marketplace(kind="shopify", token=TOKEN) as market:
        for n in range(260):        # more than a page of products: the SKUs are found on the second one too
            market.add_product(f"FILLER-{n}", 1)
        market.add_product("TEA-1", 5)
        market.add_product("PEN-1", 3)
        market.add_product("MUG-RED", 2, product_id=7700)
        market.add_product("MUG-BLUE", 2, product_id=7700)
        yield market


def shopify_account(shop: Marketplace, **settings: Any) -> Account:
    return Account(name="shop-eu", adapter="shopify", url=shop.url, token=TOKEN,
                   settings={"location_id": shop.location_id, **settings})


def test_shopify_sets_each_sku_at_the_location_and_a_second_copy_sets_nothing(shop: Marketplace,
                                                                              http: httpx.Client) -> None:
    report = stock({"TEA-1": 12, "PEN-1": 0, "MUG-BLUE": 7, "MUG-RED": 2})
    said = ShopifyChannel().report(shopify_account(shop), report, http)
    assert said == "Shopify stock: 3 set, 1 already right"
    assert {sku: shop.inventory[sku] for sku in ("TEA-1", "PEN-1", "MUG-BLUE", "MUG-RED")} == {
        "TEA-1": 12, "PEN-1": 0, "MUG-BLUE": 7, "MUG-RED": 2}
    items = {p["sku"]: p["inventory_item_id"] for p in shop.products}
    assert posts(shop, "/inventory_levels/set.json") == [
        {"location_id": shop.location_id, "inventory_item_id": items[sku], "available": q}
        for sku, q in (("TEA-1", 12), ("PEN-1", 0), ("MUG-BLUE", 7))]
    assert len([r for r in shop.requests if "/products.json" in r]) == 2      # 250 a page, by page_info
    # Sent again (a worker killed after the shop took it): the numbers are right already, nothing is written.
    again = ShopifyChannel().report(shopify_account(shop), stock({"TEA-1": 12, "PEN-1": 0, "MUG-BLUE": 7,
                                                                  "MUG-RED": 2}, ident=2), http)
    assert again == "Shopify stock: 0 set, 4 already right"
    assert len(posts(shop, "/inventory_levels/set.json")) == 3
    assert shop.inventory["TEA-1"] == 12


def test_shopify_skips_what_it_cannot_set_and_says_so_and_sets_the_rest(shop: Marketplace,
                                                                        http: httpx.Client) -> None:
    shop.add_product("GIFT-CARD", 0, tracked=False)
    shop.add_product("TWIN-1", 4)
    shop.add_product("TWIN-1", 4)       # one SKU on two variants
    said = ShopifyChannel().report(shopify_account(shop), stock({"GHOST-1": 3, "TEA-1": 9, "GIFT-CARD": 5,
                                                                 "TWIN-1": 1}), http)
    assert said is not None and said.startswith("Shopify stock: 1 set, 0 already right")
    assert "not at Shopify, skipped: GHOST-1" in said
    assert "GIFT-CARD (" in said and "inventory tracking" in said and "TWIN-1 (on 2 variants" in said
    assert shop.inventory["TEA-1"] == 9 and shop.inventory["TWIN-1"] == 4 and "GHOST-1" not in shop.inventory


def test_shopify_down_raises_so_the_outbox_tries_again(shop: Marketplace, http: httpx.Client) -> None:
    shop.fail(1)
    with pytest.raises(ChannelApiError, match="503"):
        ShopifyChannel().report(shopify_account(shop), stock({"TEA-1": 1}), http)
    assert shop.inventory["TEA-1"] == 5
    assert ShopifyChannel().report(shopify_account(shop), stock({"TEA-1": 1}), http) == "Shopify stock: 1 set, " \
        "0 already right"
    assert shop.inventory["TEA-1"] == 1


def test_shopify_without_its_location_is_refused_for_good(shop: Marketplace, http: httpx.Client) -> None:
    bare = Account(name="shop-eu", adapter="shopify", url=shop.url, token=TOKEN)
    with pytest.raises(MessageRefused, match=r"settings\.location_id"):
        ShopifyChannel().report(bare, stock({"TEA-1": 1}), http)
    assert shop.requests == []
    with pytest.raises(MessageRefused, match="location_id 123 is not a location of the shop"):
        ShopifyChannel().report(shopify_account(shop, location_id=123), stock({"TEA-1": 1}), http)
    assert shop.inventory["TEA-1"] == 5


# -- WooCommerce -------------------------------------------------------------------------------------------------
@pytest.fixture
def woo() -> Iterator[Marketplace]:
    with Marketplace(kind="woocommerce", token=WOO_KEYS) as market:
        market.add_product("TEA-1", 2, product_id=501)
        market.add_product("SHIRT-S", 1, product_id=600, variant_id=601)
        market.add_product("SHIRT-M", 0, product_id=600, variant_id=602)
        market.add_product("PEN-1", 0, product_id=502, tracked=False)
        yield market


def woo_account(woo: Marketplace) -> Account:
    return Account(name="woo-cn", adapter="woocommerce", url=woo.url, token=WOO_KEYS)


def test_woocommerce_sets_products_and_variations_in_batches_and_a_second_copy_sets_nothing(
        woo: Marketplace, http: httpx.Client) -> None:
    report = stock({"TEA-1": 9, "SHIRT-S": 4, "SHIRT-M": 0, "PEN-1": 6, "GHOST-2": 1})
    said = WooCommerceChannel().report(woo_account(woo), report, http)
    assert said == "WooCommerce stock: 3 set, 1 already right; not at WooCommerce, skipped: GHOST-2"
    assert {sku: woo.inventory[sku] for sku in ("TEA-1", "SHIRT-S", "SHIRT-M", "PEN-1")} == {
        "TEA-1": 9, "SHIRT-S": 4, "SHIRT-M": 0, "PEN-1": 6}
    assert "GHOST-2" not in woo.inventory
    assert posts(woo, "/wp-json/wc/v3/products/batch") == [{"update": [
        {"id": 501, "manage_stock": True, "stock_quantity": 9},
        {"id": 502, "manage_stock": True, "stock_quantity": 6}]}]
    assert posts(woo, "/wp-json/wc/v3/products/600/variations/batch") == [{"update": [
        {"id": 601, "manage_stock": True, "stock_quantity": 4}]}]
    assert next(p for p in woo.products if p["sku"] == "PEN-1")["tracked"]      # the shop now counts it
    sent = len(woo.received)
    again = WooCommerceChannel().report(woo_account(woo), stock({"TEA-1": 9, "SHIRT-S": 4, "SHIRT-M": 0, "PEN-1": 6},
                                                                ident=2), http)
    assert again == "WooCommerce stock: 0 set, 4 already right"
    assert len(woo.received) == sent


def test_woocommerce_asks_50_skus_at_a_time_and_batches_100(woo: Marketplace, http: httpx.Client) -> None:
    for n in range(120):
        woo.add_product(f"BULK-{n:03}", 0)
    said = WooCommerceChannel().report(woo_account(woo), stock({f"BULK-{n:03}": n for n in range(120)}), http)
    assert said == "WooCommerce stock: 119 set, 1 already right"      # BULK-000 has its 0 already
    assert [len(b["update"]) for b in posts(woo, "/products/batch")] == [100, 19]
    assert len([r for r in woo.requests if r.startswith("/wp-json/wc/v3/products?")]) == 3
    assert woo.inventory["BULK-119"] == 119


def test_woocommerce_down_raises_and_a_bad_level_is_refused(woo: Marketplace, http: httpx.Client) -> None:
    woo.fail(1)
    with pytest.raises(ChannelApiError, match="503"):
        WooCommerceChannel().report(woo_account(woo), stock({"TEA-1": 9}), http)
    assert woo.inventory["TEA-1"] == 2
    with pytest.raises(MessageRefused, match="quantity of 0 or more"):
        WooCommerceChannel().report(woo_account(woo), stock({"TEA-1": -1}), http)


# -- Amazon ------------------------------------------------------------------------------------------------------
@pytest.fixture
def amazon() -> Iterator[Marketplace]:
    with Marketplace(kind="amazon", token=AMZ_TOKEN) as market:
        market.add_product("TEA-1", 3)
        market.add_product("PEN-1", 0)
        yield market


def amazon_account(amazon: Marketplace, seller: str | None = "A2SELLER") -> Account:
    settings: dict[str, Any] = {"marketplace_ids": [amazon.marketplace_id]}
    if seller:
        settings["seller_id"] = seller
    return Account(name="amazon-us", adapter="amazon", url=amazon.url, token=AMZ_TOKEN, settings=settings)


def test_amazon_sets_stock_by_one_json_listings_feed_and_names_an_unlisted_sku_in_its_report(
        amazon: Marketplace, http: httpx.Client) -> None:
    feed_id = AmazonChannel().report(amazon_account(amazon), stock({"TEA-1": 8, "PEN-1": 0, "GHOST-3": 2}), http)
    [feed] = amazon.feeds
    assert feed_id == feed["feedId"] and feed["feedType"] == "JSON_LISTINGS_FEED"
    assert amazon.inventory == {"TEA-1": 8, "PEN-1": 0}
    assert [(i["messageId"], i["code"]) for i in feed["issues"]] == [(3, "NOT_LISTED")]
    document = json.loads(feed["content"])
    assert document["header"] == {"sellerId": "A2SELLER", "version": "2.0"}
    assert document["messages"][0] == {
        "messageId": 1, "sku": "TEA-1", "operationType": "PATCH", "productType": "PRODUCT",
        "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                     "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 8}]}]}
    assert posts(amazon, "/feeds/2021-06-30/documents") == [{"contentType": "application/json; charset=UTF-8"}]
    # Sent again: the same absolute numbers once more, which leaves them as they are.
    AmazonChannel().report(amazon_account(amazon), stock({"TEA-1": 8, "PEN-1": 0, "GHOST-3": 2}, ident=2), http)
    assert len(amazon.feeds) == 2 and amazon.inventory == {"TEA-1": 8, "PEN-1": 0}


def test_amazon_down_raises_and_without_a_seller_id_is_refused(amazon: Marketplace, http: httpx.Client) -> None:
    amazon.fail(1)
    with pytest.raises(ChannelApiError, match="503"):
        AmazonChannel().report(amazon_account(amazon), stock({"TEA-1": 8}), http)
    assert amazon.inventory["TEA-1"] == 3 and amazon.feeds == []
    with pytest.raises(MessageRefused, match=r"settings\.seller_id"):
        AmazonChannel().report(amazon_account(amazon, seller=None), stock({"TEA-1": 8}), http)
    assert AmazonChannel().report(amazon_account(amazon), stock({"TEA-1": 8}), http)
    assert amazon.inventory["TEA-1"] == 8

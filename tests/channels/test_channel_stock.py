"""What each channel account may sell of its SKUs: worked out from the warehouses' stock and rules/stock.yaml's
shares, pushed when it changes, coalesced while it waits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.channels.accounts import AccountError
from oms_engine.channels.marketplace import Marketplace
from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import OutboxMessage, SkuMapping
from tests.support import build_oms, order_json, payload
from tests.support.cli import Cli

TOKEN = "shpat_stock"


@pytest.fixture
def shop() -> Iterator[Marketplace]:
    with Marketplace(kind="shopify", token=TOKEN) as market:
        yield market


@pytest.fixture
def pushing(tmp_path: Path, db_url: str, shop: Marketplace, monkeypatch: pytest.MonkeyPatch) -> Iterator[OMS]:
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = build_oms(tmp_path, db_url, channel_accounts={"shop-eu": {
        "adapter": "shopify", "url": shop.url, "token_env": "SHOP_EU_TOKEN", "push_stock": "mapped",
        "settings": {"location_id": 655441491}}})
    with oms.db.session() as s:
        for channel_sku, sku in (("S-TEA", "TEA-1"), ("S-SOFA", "SOFA-1"), ("S-ICE", "ICE-1")):
            s.add(SkuMapping(channel="shop-eu", channel_sku=channel_sku, sku=sku, active=True, version=1))
    yield oms
    oms.close()


def waiting(oms: OMS) -> list[dict[str, Any]]:
    with oms.db.session() as s:
        return [{"status": m.status, "levels": {lv["sku"]: lv["quantity"] for lv in m.payload["levels"]}}
                for m in s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "channel.stock")
                                   .order_by(OutboxMessage.id))]


def test_the_first_push_offers_every_mapped_sku_as_the_shares_say(pushing: OMS) -> None:
    report = pushing.stock_push.sweep("shop-eu")
    # Tea: 50 in each of three warehouses, less 2 kept back in each. The sofa (furniture, a marketplace):
    # half of the 3 in Beijing and of the 2 in Guangzhou, each rounded down. Ice: 30 and 10, less 2 each.
    assert report.levels == {"S-TEA": 144, "S-SOFA": 2, "S-ICE": 36}
    assert waiting(pushing) == [{"status": "pending", "levels": {"S-TEA": 144, "S-SOFA": 2, "S-ICE": 36}}]
    # Nothing moved since: nothing more to say (the latest movements are read again, and found told).
    again = pushing.stock_push.sweep("shop-eu")
    assert (again.changed, again.reports, again.levels) == (0, 0, {})


def test_moves_while_a_push_waits_are_folded_into_it_with_the_latest_quantity(pushing: OMS) -> None:
    pushing.stock_push.sweep("shop-eu")
    pushing.stock.post(Movement.ADJUSTMENT, "WH-SH", "TEA-1", -10, document="COUNT-1", actor="user:ops",
                       note="found broken")
    pushing.stock.post(Movement.ADJUSTMENT, "WH-SH", "TEA-1", -5, document="COUNT-2", actor="user:ops",
                       note="found broken")
    report = pushing.stock_push.sweep("shop-eu")
    assert (report.levels, report.reports) == ({"S-TEA": 129}, 0)      # only tea moved; no new report
    assert waiting(pushing) == [{"status": "pending", "levels": {"S-TEA": 129, "S-SOFA": 2, "S-ICE": 36}}]


def test_a_sku_sold_out_is_pushed_as_none_left(pushing: OMS) -> None:
    pushing.stock_push.sweep("shop-eu")
    with pushing.db.session() as s:
        s.execute(OutboxMessage.__table__.update().values(status="sent"))     # the first push went out
    for warehouse, on_hand in (("WH-BJ", 3), ("WH-GZ", 2)):
        pushing.stock.post(Movement.ADJUSTMENT, warehouse, "SOFA-1", -on_hand, document=f"SCRAP-{warehouse}",
                           actor="user:ops", note="water damage")
    pushing.stock_push.sweep("shop-eu")
    assert waiting(pushing)[-1] == {"status": "pending", "levels": {"S-SOFA": 0}}


def test_an_account_that_pushes_no_stock_says_how_to_make_it(tmp_path: Path, sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, channel_accounts={"shop-eu": {"adapter": "shopify",
                                                                        "url": "http://127.0.0.1:9"}})
    try:
        assert oms.stock_push.pushing() == [] and oms.stock_push.due() == []
        with pytest.raises(AccountError, match="push_stock"):
            oms.stock_push.sweep("shop-eu")
    finally:
        oms.close()


def test_the_shop_is_told_over_its_api_and_an_order_taken_elsewhere_lowers_what_it_may_sell(
        pushing: OMS, shop: Marketplace) -> None:
    for sku in ("S-TEA", "S-SOFA", "S-ICE"):
        shop.add_product(sku, 0)
    pushing.stock_push.sweep("shop-eu")
    pushing.pipeline.run_until_idle()
    assert shop.inventory == {"S-TEA": 144, "S-SOFA": 2, "S-ICE": 36}
    with pushing.db.session() as s:
        [sent] = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "channel.stock")).all()
        assert sent.status == "sent" and "3 set" in sent.payload["answer"]
    # An order from another channel reserves 4 of the tea in one warehouse: the shop may sell 4 fewer.
    [res] = pushing.intake.ingest("json", payload(order_json("ELSEWHERE-1", [("TEA-1", 4)])))
    assert res.number
    pushing.pipeline.run_until_idle()
    report = pushing.stock_push.sweep("shop-eu")
    assert report.levels == {"S-TEA": 140}
    pushing.pipeline.run_until_idle()
    assert shop.inventory["S-TEA"] == 140


def test_a_shop_that_is_down_gets_one_push_with_the_latest_figures_when_it_is_back(pushing: OMS,
                                                                                  shop: Marketplace) -> None:
    for sku in ("S-TEA", "S-SOFA", "S-ICE"):
        shop.add_product(sku, 0)
    shop.fail(1_000)
    pushing.stock_push.sweep("shop-eu")
    pushing.pipeline.run_until_idle()
    for n in range(3):
        pushing.stock.post(Movement.ADJUSTMENT, "WH-SH", "TEA-1", -1, document=f"COUNT-{n}", actor="user:ops",
                           note="count")
        pushing.stock_push.sweep("shop-eu")
        pushing.clock.advance(timedelta(hours=1))
        pushing.pipeline.run_until_idle()
    assert shop.inventory["S-TEA"] == 0
    shop.fail(0)
    pushing.clock.advance(timedelta(hours=7))
    pushing.pipeline.run_until_idle()
    assert shop.inventory == {"S-TEA": 141, "S-SOFA": 2, "S-ICE": 36}
    assert [w["status"] for w in waiting(pushing)] == ["sent"]


def test_oms_channels_stock_queues_and_shows_what_changed(tmp_path: Path, shop: Marketplace) -> None:
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    oms = build_oms(tmp_path, url)
    with oms.db.session() as s:
        s.add(SkuMapping(channel="shop-eu", channel_sku="S-TEA", sku="TEA-1", active=True, version=1))
    oms.close()
    cli = Cli(tmp_path, url)
    cli.write_config(channel_accounts={"shop-eu": {"adapter": "shopify", "url": shop.url, "token_env": "SHOP_EU_TOKEN",
                                                   "push_stock": "mapped"}})
    env = cli.env(SHOP_EU_TOKEN=TOKEN)
    shown = cli("channels", "stock", "shop-eu", env=env).stdout
    assert "1 changed, 1 new report(s) queued" in shown and "S-TEA" in shown and "144" in shown
    again = json.loads(cli("channels", "stock", "shop-eu", "--full", "--json", env=env).stdout)
    assert (again["changed"], again["reports"], again["levels"]) == (0, 0, {})
    refused = cli("channels", "stock", "json", ok=False, env=env)
    assert "is not a configured channel account" in refused.stderr + refused.stdout


def test_a_kit_is_offered_as_many_as_its_scarcest_component_makes_and_moves_with_it(pushing: OMS) -> None:
    # Two tea and a mug, each component less the safety stock of 2 units.
    pushing.masterdata.apply("products", [Row("t", {
        "sku": "GIFT-1", "name": "Tea gift box", "price": "149.00", "currency": "CNY", "merchant": "M-01",
        "attributes": {"category": "grocery"}, "components": "TEA-1:2;MUG-1:1"})], actor="t", source="t")
    with pushing.db.session() as s:
        s.add(SkuMapping(channel="shop-eu", channel_sku="S-GIFT", sku="GIFT-1", active=True, version=1))
    first = pushing.stock_push.sweep("shop-eu")
    # Shanghai: tea (50-2)//2 = 24, mugs 20-2 = 18 -> 18; Beijing: tea 24, mugs 5-2 = 3 -> 3; Guangzhou: no mugs.
    assert first.levels["S-GIFT"] == 21
    pushing.stock.post(Movement.ADJUSTMENT, "WH-BJ", "MUG-1", -5, document="BROKEN", actor="user:ops",
                       note="dropped")
    after = pushing.stock_push.sweep("shop-eu")
    assert after.levels == {"S-GIFT": 18}     # the mugs moved, not the kit: it is worked out again all the same

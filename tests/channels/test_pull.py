"""Pulling orders from a channel's API by cursor, against a marketplace played on loopback over real HTTP."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from oms_engine.channels.accounts import AccountError
from oms_engine.channels.marketplace import Marketplace
from oms_engine.engine import OMS
from oms_engine.storage.models import ChannelCursor, Order, RawPayload
from tests.support import build_oms
from tests.support.cli import OMS_BIN, Cli

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
TOKEN = "shpat_test_token"


def shopify_orders(n: int) -> list[dict[str, Any]]:
    """``n`` Shopify orders made from the sample order, each with an id and name of its own."""
    sample = json.loads((SAMPLES / "shopify" / "order.json").read_text())["order"]
    out = []
    for i in range(n):
        o = copy.deepcopy(sample)
        o["id"], o["name"], o["order_number"] = 820000 + i, f"#{5000 + i}", 5000 + i
        out.append(o)
    return out


def orders_by_channel(oms: OMS, channel: str) -> list[str]:
    with oms.db.session() as s:
        return sorted(s.scalars(select(Order.external_id).where(Order.channel == channel, Order.parent_id.is_(None))))


@pytest.fixture
def shop() -> Iterator[Marketplace]:
    with Marketplace(kind="shopify", token=TOKEN) as market:
        yield market


def shop_oms(tmp_path: Path, url: str, market: Marketplace, **account: Any) -> OMS:
    acc = {"adapter": "shopify", "url": market.url, "token_env": "SHOP_EU_TOKEN", "page_size": 3, **account}
    return build_oms(tmp_path, url, channel_accounts={"shop-eu": acc})


@pytest.fixture
def pulled(tmp_path: Path, db_url: str, shop: Marketplace, monkeypatch: pytest.MonkeyPatch) -> Iterator[OMS]:
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = shop_oms(tmp_path, db_url, shop)
    yield oms
    oms.close()


def test_a_pull_takes_every_page_once_and_the_next_only_what_changed(pulled: OMS, shop: Marketplace) -> None:
    for o in shopify_orders(7):
        shop.add(o)
    report = pulled.pulling.pull("shop-eu")
    assert (report.pages, report.orders, report.error) == (3, 7, "")
    assert orders_by_channel(pulled, "shop-eu") == [str(820000 + i) for i in range(7)]
    again = pulled.pulling.pull("shop-eu")
    # The last update's second comes again (both APIs filter "at or after"): known, not stored twice.
    assert again.orders == 0 and again.error == "" and again.repeated <= 1
    shop.change("820003", note="leave it with the neighbour")
    changed = pulled.pulling.pull("shop-eu")
    assert changed.orders == 0 and changed.error == ""
    assert len(orders_by_channel(pulled, "shop-eu")) == 7
    with pulled.db.session() as s:
        cur = s.get(ChannelCursor, "shop-eu")
        assert cur is not None and cur.orders == 7 and cur.last_error == ""
    # every page was asked for with the shop's token, the later ones by Shopify's page_info alone
    assert any("page_info=" in p and "updated_at_min" not in p for p in shop.requests)


def test_a_failed_pull_keeps_its_cursor_and_says_why_and_the_next_one_goes_on(pulled: OMS, shop: Marketplace) -> None:
    for o in shopify_orders(5):
        shop.add(o)
    first = pulled.pulling.pull("shop-eu", max_pages=1)
    assert first.orders == 3
    kept = pulled.pulling.cursor("shop-eu")
    assert kept is not None
    shop.fail(1)
    failed = pulled.pulling.pull("shop-eu")
    assert failed.orders == 0 and "503 Service Unavailable" in failed.error
    after = pulled.pulling.cursor("shop-eu")
    assert after is not None and after.cursor == kept.cursor and "503" in after.last_error
    rest = pulled.pulling.pull("shop-eu")
    assert rest.orders == 2 and rest.error == ""
    assert pulled.pulling.cursor("shop-eu").last_error == ""  # type: ignore[union-attr]
    assert len(orders_by_channel(pulled, "shop-eu")) == 5


def test_a_wrong_token_or_a_slow_channel_is_an_error_not_a_crash(tmp_path: Path, sqlite_url: str, shop: Marketplace,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    shop.add(shopify_orders(1)[0])
    monkeypatch.setenv("SHOP_EU_TOKEN", "not-the-token")
    oms = shop_oms(tmp_path, sqlite_url, shop, timeout=0.5)
    try:
        assert "401 Unauthorized" in oms.pulling.pull("shop-eu").error
        monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
        shop.delay = 2.0
        assert "no answer within the account's timeout" in oms.pulling.pull("shop-eu").error
        monkeypatch.delenv("SHOP_EU_TOKEN")
        with pytest.raises(AccountError, match="SHOP_EU_TOKEN, which is not set"):
            oms.pulling.pull("shop-eu")
        with pytest.raises(AccountError, match="'json' has no pull"):
            oms.pulling.pull("json")
    finally:
        oms.close()
    assert orders_by_channel(oms, "shop-eu") == []


def test_amazon_orders_are_pulled_with_their_items_and_address(tmp_path: Path, sqlite_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    header = json.loads((SAMPLES / "amazon" / "orders.json").read_text())[0]["payload"]["Orders"][0]
    items = json.loads((SAMPLES / "amazon" / "order_items.json").read_text())[0]["payload"]["OrderItems"]
    address = json.loads((SAMPLES / "amazon" / "order_address.json").read_text())[0]["payload"]["ShippingAddress"]
    monkeypatch.setenv("AMZ_TOKEN", "Atza|test")
    with Marketplace(kind="amazon", token="Atza|test") as market:
        market.add(header, items=items, address=address)
        oms = build_oms(tmp_path, sqlite_url, channel_accounts={"amazon-us": {
            "adapter": "amazon", "url": market.url, "token_env": "AMZ_TOKEN",
            "settings": {"marketplace_ids": ["ATVPDKIKX0DER"]}}})
        try:
            report = oms.pulling.pull("amazon-us")
            assert (report.orders, report.error) == (1, ""), report
            with oms.db.session() as s:
                order = s.scalar(select(Order).where(Order.channel == "amazon-us"))
                assert order is not None and order.external_id == header["AmazonOrderId"]
                assert order.ship_to["city"] == address["City"] and order.ship_to["postcode"] == address["PostalCode"]
                assert [(ln.channel_sku, ln.quantity) for ln in order.lines] == [("NABetaASINB00551Q3CS", 1)]
        finally:
            oms.close()
        assert {p.split("?")[0].rsplit("/", 1)[-1] for p in market.requests} >= {"orders", "orderItems", "address"}


def test_a_pull_killed_midway_resumes_without_losing_or_doubling_an_order(tmp_path: Path, shop: Marketplace) -> None:
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    build_oms(tmp_path, url).close()
    cli = Cli(tmp_path, url)
    cli.write_config(channel_accounts={"shop-eu": {"adapter": "shopify", "url": shop.url, "token_env": "SHOP_EU_TOKEN",
                                                   "page_size": 2}})
    for o in shopify_orders(30):
        shop.add(o)
    shop.delay = 0.15
    env = cli.env(SHOP_EU_TOKEN=TOKEN)
    probe = cli.oms()
    try:
        proc = subprocess.Popen([OMS_BIN, "channels", "pull", "shop-eu"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(orders_by_channel(probe, "shop-eu")) < 6 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        cut = len(orders_by_channel(probe, "shop-eu"))
        assert 6 <= cut < 30
        shop.delay = 0.0
        cli("channels", "pull", "shop-eu", env=env)
        assert orders_by_channel(probe, "shop-eu") == sorted(str(820000 + i) for i in range(30))
        with probe.db.session() as s:
            # each order once; a page fetched again may be kept raw again, but made no second order
            assert s.scalar(select(func.count()).select_from(Order).where(Order.channel == "shop-eu")) == 30
            assert s.scalar(select(func.count()).select_from(RawPayload)) >= 15
    finally:
        probe.close()
    listed = json.loads(cli("channels", "list", "--json", env=env).stdout)
    [row] = [r for r in listed if r["account"] == "shop-eu"]
    assert row["adapter"] == "shopify" and row["pulls"] and row["orders"] >= 24 and row["last_error"] == ""


def test_the_worker_pulls_an_account_when_its_turn_comes(tmp_path: Path, sqlite_url: str, shop: Marketplace,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = shop_oms(tmp_path, sqlite_url, shop, pull_every_seconds=300)
    try:
        assert oms.pulling.due() == ["shop-eu"]        # never pulled
        shop.add(shopify_orders(1)[0])
        assert oms.pulling.pull("shop-eu").orders == 1
        assert oms.pulling.due() == []
        oms.clock.advance(timedelta(seconds=299))  # type: ignore[attr-defined]
        assert oms.pulling.due() == []
        oms.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
        assert oms.pulling.due() == ["shop-eu"]
    finally:
        oms.close()

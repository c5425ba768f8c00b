"""Channel accounts: two shops on one channel keep their orders, SKU mappings and webhook secrets apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.channels.accounts import AccountError
from oms_engine.engine import OMS
from oms_engine.storage.models import Order, SkuMapping
from oms_engine.web.app import create_app
from tests.support import build_oms, order_json, payload
from tests.support.web import TOKENS, ApiServer, sign_webhook

TWO_SHOPS = {"shop-north": {"adapter": "json", "secret_env": "NORTH_HOOK_SECRET"},
             "shop-south": {"adapter": "json"}}


@pytest.fixture
def shops(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    oms = build_oms(tmp_path, db_url, channel_accounts=TWO_SHOPS)
    yield oms
    oms.close()


def test_one_external_id_in_two_shops_is_two_orders_each_of_its_shop(shops: OMS) -> None:
    [north] = shops.intake.ingest("shop-north", payload(order_json("1001")))
    [south] = shops.intake.ingest("shop-south", payload(order_json("1001")))
    [again] = shops.intake.ingest("shop-north", payload(order_json("1001")))
    assert north.number and south.number and north.number != south.number
    assert again.duplicate and again.number == north.number
    with shops.db.session() as s:
        stored = sorted((o.channel, o.external_id) for o in s.scalars(select(Order)))
    assert stored == [("shop-north", "1001"), ("shop-south", "1001")]


def test_each_shop_has_its_own_sku_mappings(shops: OMS) -> None:
    with shops.db.session() as s:
        s.add(SkuMapping(channel="shop-north", channel_sku="N-TEA", sku="TEA-1", active=True, version=1))
    [mapped] = shops.intake.ingest("shop-north", payload(order_json("2001", [("N-TEA", 1)], paid=False)))
    [unmapped] = shops.intake.ingest("shop-south", payload(order_json("2001", [("N-TEA", 1)], paid=False)))
    assert mapped.status == "pending_payment"
    assert unmapped.status == "on_hold"
    with shops.db.session() as s:
        assert "unmapped SKU 'N-TEA'" in (s.scalar(select(Order.hold_reason).where(Order.channel == "shop-south"))
                                          or "")
    with shops.db.session() as s:
        lines = {o.channel: [(ln.channel_sku, ln.sku) for ln in o.lines] for o in s.scalars(select(Order))}
    assert lines == {"shop-north": [("N-TEA", "TEA-1")], "shop-south": [("N-TEA", "N-TEA")]}


def test_each_shop_signs_its_webhooks_with_its_own_secret(shops: OMS, serve: Callable[..., ApiServer],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORTH_HOOK_SECRET", "north-secret")
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_SHOP_SOUTH", "south-secret")
    api = serve(create_app(shops, tokens=TOKENS))
    now = shops.clock.now()
    body = payload(order_json("3001"))
    assert api.post("/api/webhooks/shop-north", body=body,
                    headers=sign_webhook(body, timestamp=now, secret="north-secret")).status == 200
    # the other shop's secret is not this shop's
    assert api.post("/api/webhooks/shop-north", body=body,
                    headers=sign_webhook(body, timestamp=now, secret="south-secret")).status == 401
    assert api.post("/api/webhooks/shop-south", body=body,
                    headers=sign_webhook(body, timestamp=now, secret="south-secret")).status == 200
    assert api.post("/api/webhooks/shop-west", body=body,
                    headers=sign_webhook(body, timestamp=now, secret="south-secret")).status == 404
    with shops.db.session() as s:
        assert sorted(o.channel for o in s.scalars(select(Order))) == ["shop-north", "shop-south"]


@pytest.mark.parametrize(("accounts", "why"), [
    ({"shop-x": {"adapter": "ebay"}}, "channel account 'shop-x': no channel adapter 'ebay' (known: "),
    ({"shopify": {"adapter": "json"}}, "'shopify' is the name of another channel adapter"),
])
def test_an_account_that_cannot_work_stops_the_start(tmp_path: Path, sqlite_url: str, accounts: dict[str, object],
                                                     why: str) -> None:
    with pytest.raises(AccountError, match=why.replace("(", r"\(")):
        build_oms(tmp_path, sqlite_url, channel_accounts=accounts)


def test_an_account_name_that_cannot_be_a_channel_is_refused_in_the_config(tmp_path: Path, sqlite_url: str) -> None:
    from oms_engine.config import ConfigError
    with pytest.raises((ConfigError, ValueError), match="a name is 1 to 32 of a-z"):
        build_oms(tmp_path, sqlite_url, channel_accounts={"Shop North": {"adapter": "json"}})

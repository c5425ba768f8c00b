"""The admin API served on loopback (tests/support/web.py), for webhook deliveries to channel accounts, and a
Shopify shop played by the marketplace stand-in with an OMS account that reports to it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from oms_engine.channels.marketplace import Marketplace
from oms_engine.engine import OMS
from tests.support import build_oms
from tests.support.web import serve

__all__ = ["TOKEN", "serve", "shop", "shop_oms"]

TOKEN = "shpat_reports"


@pytest.fixture
def shop() -> Iterator[Marketplace]:
    with Marketplace(kind="shopify", token=TOKEN) as market:
        yield market


@pytest.fixture
def shop_oms(tmp_path: Path, db_url: str, shop: Marketplace, monkeypatch: pytest.MonkeyPatch) -> Iterator[OMS]:
    """An OMS whose account ``shop-eu`` is that shop: it pulls from it and reports to it."""
    monkeypatch.setenv("SHOP_EU_TOKEN", TOKEN)
    oms = build_oms(tmp_path, db_url, channel_accounts={"shop-eu": {
        "adapter": "shopify", "url": shop.url, "token_env": "SHOP_EU_TOKEN"}})
    yield oms
    oms.close()

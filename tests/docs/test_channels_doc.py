"""docs/channels.md: its account configuration is one an OMS starts with, and means what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from oms_engine.channels.accounts import secret_env
from tests.support import ROOT, build_oms

PAGE = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")


def accounts_blocks() -> list[str]:
    return [b for b in re.findall(r"```yaml\n(.*?)```", PAGE, re.S) if "channel_accounts:" in b]


def test_the_reporting_accounts_of_the_page_report_as_it_says(tmp_path: Path, sqlite_url: str) -> None:
    block = accounts_blocks()[1]
    oms = build_oms(tmp_path, sqlite_url, channel_accounts=yaml.safe_load(block)["channel_accounts"])
    try:
        reports = oms.reports
        assert reports is not None
        assert reports.reporting == {"shop-eu", "woo-cn", "amazon-us"}
        assert reports.at_channel == {"shop-eu", "woo-cn", "amazon-us"}
    finally:
        oms.close()


def test_the_stock_account_of_the_page_pushes_as_it_says(tmp_path: Path, sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, channel_accounts=yaml.safe_load(accounts_blocks()[2])["channel_accounts"])
    try:
        assert oms.stock_push.pushing() == ["shop-eu"]
        assert oms.config.channel_accounts["shop-eu"].push_stock_every_seconds == 60
    finally:
        oms.close()


def test_the_accounts_of_the_page_start_and_resolve_as_it_says(tmp_path: Path, sqlite_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    block = accounts_blocks()[0]
    accounts = yaml.safe_load(block)["channel_accounts"]
    monkeypatch.setenv("OMS_SHOP_EU_TOKEN", "shpat_x")
    oms = build_oms(tmp_path, sqlite_url, channel_accounts=accounts)
    try:
        assert oms.accounts.adapter_name("shop-eu") == "shopify"
        assert oms.accounts.adapter_name("amazon-us") == "amazon"
        shop = oms.accounts.account("shop-eu")
        assert (shop.url, shop.token, shop.pull_every_seconds) == ("https://shop-eu.myshopify.com", "shpat_x", 300)
        assert secret_env("shop-eu", oms.config.channel_accounts["shop-eu"]) == "OMS_SHOP_EU_WEBHOOK_SECRET"
        assert secret_env("shop-eu") == "OMS_WEBHOOK_SECRET_SHOP_EU"
        assert {"json", "shopify", "woocommerce", "amazon", "shop-eu", "amazon-us"} <= set(oms.accounts.names())
        assert oms.pulling.can_pull("shop-eu") and oms.pulling.can_pull("amazon-us")
        assert not oms.pulling.can_pull("json") and not oms.pulling.can_pull("woocommerce")
    finally:
        oms.close()

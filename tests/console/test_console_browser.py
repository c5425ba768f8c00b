"""The console in headless Chromium against a real server on loopback: sign in with a token, release a held order
from the queue and see its timeline change, upload a change of the blocking rules, dry-run it and see the decisions
it would change, store it and activate it; then the main pages at desktop and phone width, each checked to fit
and shot (``python -m tests.console.screenshots`` shoots the same pages, of a busier shop, for docs/console.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from tests.console.browser import DESKTOP, chromium, dry_run, fits, missing, open_tab, sign_in, tour
from tests.console.support import console_app
from tests.console.world import stage
from tests.support.web import ADMIN, ApiServer

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


def test_release_a_hold_and_activate_a_rules_change_in_the_browser(
        sqlite_oms: OMS, serve: Callable[..., ApiServer], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    world = stage(sqlite_oms)
    sqlite_oms.clock.advance(timedelta(minutes=30))  # type: ignore[attr-defined]  # the person comes to it later
    server = serve(console_app(sqlite_oms))
    base = f"http://127.0.0.1:{server.port}"
    with chromium() as browser:
        tab = open_tab(browser, base, DESKTOP)
        page = tab.page
        sign_in(tab, ADMIN)

        # the queue: the reason and the rule behind the hold; the order's timeline ends with the hold
        page.click("nav >> text=Holds")
        card = page.locator(f"#hold-{world.blacklisted}")
        expect(card).to_contain_text("customer is on the blacklist")
        expect(card).to_contain_text("blocking › blacklisted-customer")
        card.locator("a.num").click()
        timeline = page.locator("ol.timeline")
        expect(timeline).to_contain_text("hold: paid → on_hold")
        expect(timeline).not_to_contain_text("release")

        # released from the queue, with a note: out of the queue, and the newest step of its timeline
        page.go_back()
        card.locator('input[name="note"]').fill("called the customer")
        card.locator('button[data-action="release"]').click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Order {world.blacklisted} released: it is now paid.")
        expect(page.locator(f"#hold-{world.blacklisted}")).to_have_count(0)
        expect(page.locator(f"#hold-{world.big_first}")).to_have_count(1)
        page.click("nav >> text=Orders")
        page.fill('input[name="q"]', world.blacklisted)
        page.click('button:has-text("Search")')
        expect(page.locator("h1")).to_contain_text(world.blacklisted)
        latest = timeline.locator("> li").first
        expect(latest).to_contain_text("release: on_hold → paid")
        expect(latest).to_contain_text("called the customer")
        expect(page.locator(".held")).to_have_count(0)

        # a change of the blocking rules, uploaded and dry-run: the sofa's screening would now hold it
        page.click("nav >> text=Rules")
        page.click("#ruleset-blocking >> text=change…")
        dry_run(tab)
        report = page.locator("#report")
        expect(report.locator(".changed-count")).to_have_text("1 would change")
        expect(report.locator("ol.changed")).to_contain_text(world.sofa)
        expect(report.locator("ol.changed")).to_contain_text("big-first-order")
        assert sqlite_oms.rulebook.version("blocking") != re.sub(r".*@", "", report.locator("h2").inner_text())

        # stored, then activated from the versions list
        page.click('button[value="store"]')
        stored = page.locator(".flash.ok").inner_text()
        version = re.search(r"blocking@([0-9a-f]+) stored", stored)
        assert version, stored
        row = page.locator(f'tr[data-version="blocking@{version.group(1)}"]')
        row.locator('button:has-text("Activate")').click()
        expect(page.locator(".flash.ok")).to_contain_text(f"→ {version.group(1)}")
        expect(row).to_contain_text("active")
        assert sqlite_oms.rulebook.version("blocking") == version.group(1)
        fits(tab)
        tab.check()

        shots = tour(browser, base, ADMIN, world, tmp_path / "shots")
    assert sorted(p.name for p in shots) == sorted(f"{name}-{size}.png" for name in
                                                    ("dashboard", "holds", "order", "rules", "dry-run")
                                                    for size in ("desktop", "phone"))
    for shot in shots:
        header = shot.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(header[16:20], "big")
        assert width == (375 if "phone" in shot.name else 1280), shot.name

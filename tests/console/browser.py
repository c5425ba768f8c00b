"""The console in a real browser: the machine's Chromium (Debian's ``chromium``), driven by Playwright.

Never a downloaded browser: Playwright is pointed at ``/usr/bin/chromium`` and started with everything that
would reach out (updates, sync, background networking) off. Every page opened here is watched: each request
must go to the console's own server, and the browser must report no Content-Security-Policy violation (a
style or script the policy would block is a page that looks or works otherwise than it was written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.console.world import LOWER, World

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
# A page longer than this is cut in its screenshot: enough to show it, not a scroll of everything.
MAX_SHOT_HEIGHT = 2400
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"


def missing() -> str | None:
    """Why the browser cannot run here, or None. (Playwright itself is a dev dependency: without it the test fails.)"""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A browser tab whose requests and console messages are kept, to be checked."""

    page: Page
    base: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        elsewhere = [u for u in self.requests if not u.startswith((self.base + "/", "data:"))]
        assert not elsewhere, f"requests that left the console's server: {elsewhere}"
        assert not self.problems, f"the browser reported: {self.problems}"


def open_tab(browser: Browser, base: str, viewport: dict[str, int]) -> Watched:
    context = browser.new_context(viewport=viewport, device_scale_factor=1, locale="en-GB")  # type: ignore[arg-type]
    page = context.new_page()
    watched = Watched(page, base)
    page.on("request", lambda r: watched.requests.append(r.url))

    def console_message(m: Any) -> None:
        if m.type in ("error", "warning") or "Content Security Policy" in m.text:
            watched.problems.append(f"{m.type}: {m.text}")

    page.on("console", console_message)
    page.on("pageerror", lambda e: watched.problems.append(f"page error: {e}"))
    return watched


def sign_in(tab: Watched, token: str) -> None:
    page = tab.page
    page.goto(tab.base + "/console/login")
    page.fill('input[name="token"]', token)
    page.click('button:has-text("Sign in")')
    page.wait_for_url(tab.base + "/console/")


def dry_run(tab: Watched, text: str = LOWER) -> None:
    """Upload ``text`` as a change of the blocking rules and dry-run it."""
    page = tab.page
    page.goto(tab.base + "/console/rules/candidate?ruleset=blocking")
    page.set_input_files('input[name="upload"]',
                         files=[{"name": "blocking.yaml", "mimeType": "text/yaml", "buffer": text.encode()}])
    page.click('button[value="dry-run"]')
    page.wait_for_selector("#report")


def fits(tab: Watched) -> None:
    """Nothing is wider than the window (wide tables scroll inside their card) and every order number is whole on
    one line, inside the window or inside a container that scrolls."""
    page = tab.page
    width = page.evaluate("window.innerWidth")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{page.url} is {overflow}px wide in a {width}px window"
    cut = page.evaluate("""() => [...document.querySelectorAll('.num')].filter(el => {
        const rects = el.getClientRects();
        if (rects.length !== 1) return true;
        return !el.closest('.scroll') && rects[0].right > window.innerWidth + 0.5;
    }).map(el => el.textContent)""")
    assert not cut, f"order numbers broken or cut on {page.url}: {cut}"


def shoot(tab: Watched, path: Path) -> None:
    page = tab.page
    height = page.evaluate("document.documentElement.scrollHeight")
    width = page.viewport_size["width"] if page.viewport_size else DESKTOP["width"]
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": min(height, MAX_SHOT_HEIGHT)})


def tour(browser: Browser, base: str, token: str, world: World, out: Path) -> list[Path]:
    """The main pages at desktop and phone width, each checked for fit and shot into ``out``; the others checked
    for fit."""
    shots = []
    for size, viewport in SIZES.items():
        tab = open_tab(browser, base, viewport)
        sign_in(tab, token)
        pages = (("dashboard", "/console/"), ("holds", "/console/holds"),
                 ("order", f"/console/orders/{world.blacklisted}"), ("rules", "/console/rules?ruleset=blocking"),
                 ("dry-run", None))
        for name, path in pages:
            if path is None:
                dry_run(tab)
            else:
                tab.page.goto(base + path)
            fits(tab)
            shots.append(out / f"{name}-{size}.png")
            shoot(tab, shots[-1])
        # The other pages are not in the docs' pictures, but must fit the same windows.
        for path in ("/console/orders", "/console/stock", "/console/stock?warehouse=WH-SH", "/console/dead-letters",
                     "/console/rules"):
            tab.page.goto(base + path)
            fits(tab)
        tab.check()
        tab.page.context.close()
    return shots

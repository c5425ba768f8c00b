"""Screenshots of the console for docs/console.md: ``python -m tests.console.screenshots [--out DIR]``.

A fortnight of a small shop (tests/console/world.py) on a fresh SQLite database, served on loopback as
``oms serve`` serves it, and toured in the machine's headless Chromium at desktop (1280x800) and phone
(375x740) width, after an operator released one held order and a change of the blocking rules was stored: the
dashboard, the hold queue, that order's page, the rules, and a dry-run of that change. Each page is checked to
fit its window before it is shot. Writes ``<page>-desktop.png`` and ``<page>-phone.png`` into docs/console/
unless told otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.console.browser import DESKTOP, DOCS, chromium, dry_run, missing, open_tab, sign_in, tour
from tests.console.support import console_app
from tests.console.world import stage_showcase
from tests.support import build_oms
from tests.support.web import ADMIN, ApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.console.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help=f"where the PNGs go (default {DOCS})")
    args = parser.parse_args(argv)
    why = missing()
    if why is not None:
        print(why, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="oms-console-shots-") as tmp:
        oms = build_oms(Path(tmp), f"sqlite:///{Path(tmp) / 'oms.db'}")
        server: ApiServer | None = None
        try:
            world = stage_showcase(oms)
            server = ApiServer(console_app(oms))
            base = f"http://127.0.0.1:{server.port}"
            with chromium() as browser:
                tab = open_tab(browser, base, DESKTOP)
                sign_in(tab, ADMIN)
                tab.page.goto(f"{base}/console/holds")
                card = tab.page.locator(f"#hold-{world.blacklisted}")
                card.locator('input[name="note"]').fill("called the customer: the chargebacks were the bank's error")
                card.locator('button[data-action="release"]').click()
                tab.page.wait_for_selector(".flash.ok")
                # The worker takes the released order on, as `oms worker` would, between two requests.
                with server.app.extensions["oms_request_lock"]:
                    oms.pipeline.run_until_idle()
                # A change of the blocking rules stored, not yet active: the rules page offers to activate it.
                dry_run(tab)
                tab.page.click('button[value="store"]')
                tab.page.wait_for_selector(".flash.ok")
                tab.check()
                tab.page.context.close()
                shots = tour(browser, base, ADMIN, world, args.out)
        finally:
            if server is not None:
                server.close()
            oms.close()
    for shot in shots:
        compact(shot)
        print(shot)
    return 0


def compact(path: Path) -> None:
    """The PNG in 128 colours, undithered: a third of the bytes for a page of flat colours and text, which is what
    a repository keeps (Pillow comes with the dev extras' matplotlib; without it the shot stays as taken)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())

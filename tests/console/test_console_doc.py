"""docs/console.md shows every page it describes: each picture it names is in docs/console/, at the width it says,
and each picture there is shown."""

from __future__ import annotations

import re

from tests.console.browser import DOCS, SIZES

PAGE = DOCS.parent / "console.md"


def test_every_screenshot_of_the_page_is_there_at_its_width() -> None:
    shown = re.findall(r"!\[[^\]]*\]\(console/([^)]+\.png)\)", PAGE.read_text(encoding="utf-8"))
    assert shown, "the page shows no screenshots"
    for name in shown:
        png = (DOCS / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        size = name.removesuffix(".png").rsplit("-", 1)[1]
        assert int.from_bytes(png[16:20], "big") == SIZES[size]["width"], name
    assert sorted(shown) == sorted(p.name for p in DOCS.glob("*.png")), "a screenshot not shown, or shown twice"

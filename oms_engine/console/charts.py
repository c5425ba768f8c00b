"""The dashboard's charts, drawn on the server as inline SVG: no script, nothing fetched, readable at phone width.

A chart here is only numbers scaled for its SVG (the templates draw it,
``templates/console/_charts.html``): the labels and figures are HTML text
beside the shapes, so they stay legible however narrow the screen makes the
drawing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    width: float          # 0..100: the share of the track, the largest bar filling it
    text: str             # the value as printed
    href: str | None = None


def bars(items: Iterable[tuple[str, float]], *, text: Callable[[float], str] = lambda v: f"{v:,.0f}",
         href: Callable[[str], str | None] | None = None, limit: int = 12) -> list[Bar]:
    """Horizontal bars, largest first; past ``limit`` the rest are summed as "other"."""
    ranked = sorted(((label, value) for label, value in items if value), key=lambda lv: (-lv[1], lv[0]))
    if len(ranked) > limit:
        rest = sum(v for _, v in ranked[limit - 1:])
        ranked = [*ranked[:limit - 1], ("other", rest)]
    top = max((v for _, v in ranked), default=0)
    return [Bar(label, value, round(100 * value / top, 2) if top else 0.0, text(value),
                href(label) if href and label != "other" else None) for label, value in ranked]


@dataclass(frozen=True)
class Column:
    label: str
    value: int
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class Columns:
    columns: list[Column]
    width: int            # the SVG's viewBox width; its height is HEIGHT
    top: int              # the largest value, printed at the top of the scale
    total: int
    ticks: list[str]      # labels printed under the chart: the first, middle and last column's


HEIGHT = 100
_STEP = 10
_GAP = 2


def columns(points: list[tuple[str, int]]) -> Columns:
    """Vertical columns, one per point in order (days, say), scaled to the largest."""
    top = max((v for _, v in points), default=0)
    cols = []
    for i, (label, value) in enumerate(points):
        h = round(HEIGHT * value / top, 2) if top else 0.0
        # An empty day still shows a hairline, so a gap reads as "none" and not as a drawing fault.
        h = max(h, 0.8)
        cols.append(Column(label, value, i * _STEP + _GAP / 2, HEIGHT - h, h))
    n = len(points)
    ticks = [points[i][0] for i in sorted({0, n // 2, n - 1})] if n else []
    return Columns(cols, max(n * _STEP, _STEP), top, sum(v for _, v in points), ticks)

"""``oms report timeliness`` and ``oms report late``: how long warehouses and carriers take, and who is late now."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from ..fulfilment.timeliness import BY, INTERVALS, Period, open_alerts, timeliness
from .render import Col, Listing, emit, num, print_json, when, wide_option
from .root import Ctx, console, errors_to_exit, main


@main.group()
def report() -> None:
    """Reports for operations: the timeliness of warehouses and carriers, the orders late now."""


@report.command("timeliness")
@click.option("--since", default=None, help="orders paid from this date or time (UTC unless it says otherwise); "
                                           "default a week before --until")
@click.option("--until", default=None, help="... up to this date (the whole day) or time; default now")
@click.option("--by", type=click.Choice(BY), default="warehouse", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@wide_option
@click.pass_obj
@errors_to_exit
def report_timeliness(c: Ctx, since: str | None, until: str | None, by: str, as_json: bool, wide: bool) -> None:
    """Paid to sent, sent to shipped, shipped to delivered per warehouse or carrier: median, 95th percentile
    (hours) and the share alerted late, over the orders paid in the period.

    \b
    Examples:
      oms report timeliness --since 2026-11-01 --until 2026-11-08
      oms report timeliness --by carrier --json
    """
    oms = c.oms(require_rules=False)
    try:
        period = Period.parse(since, until, now=oms.clock.now(), names=("--since", "--until"))
        with oms.db.read() as s:
            data = timeliness(s, period, by, oms.machine.late)
    finally:
        oms.close()
    if as_json:
        print_json(data)
        return
    emit(Text(f"orders paid from {when(data['since'])} until {when(data['until'])}, by {by}: "
              f"{data['all']['orders']}"), console.width)
    for iv, about in zip(INTERVALS, data["intervals"], strict=True):
        limits = "; ".join(about["limits"]) or "no limit configured"
        t = Listing(by, num("orders"), num("done"), num("median h"), num("p95 h"), num("late"),
                    title=f"{iv.label} ({limits})")
        for g in data["groups"]:
            t.add_row(g["key"] or "-", *_cells(g[iv.name]))
        t.add_row("all", *_cells(data["all"][iv.name]), style="bold")
        t.print(wide=wide)


def _cells(f: dict[str, Any]) -> list[str]:
    def hours(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"
    late = "-" if f["late_share"] is None else f"{f['late_share']:.1%} ({f['late']})"
    return [str(f["started"]), str(f["count"]), hours(f["median_hours"]), hours(f["p95_hours"]), late]


@report.command("late")
@click.option("--warehouse", default=None)
@click.option("--carrier", default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@wide_option
@click.pass_obj
@errors_to_exit
def report_late(c: Ctx, warehouse: str | None, carrier: str | None, limit: int, as_json: bool, wide: bool) -> None:
    """Orders alerted for a late step and still short of it, longest overdue first.

    \b
    Examples:
      oms report late
      oms report late --warehouse WH-SH --json
    """
    oms = c.oms(require_rules=False)
    try:
        with oms.db.read() as s:
            data = open_alerts(s, oms.clock.now(), warehouse=warehouse, carrier=carrier, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(data)
        return
    t = Listing("order", Col("status", drop=4), "step", Col("after", drop=5), Col("limit", drop=6), Col("due", drop=3),
                "late by", Col("warehouse", drop=1), Col("carrier", drop=2), title=f"late steps open ({data['total']})")
    for a in data["alerts"]:
        t.add_row(a["order"], a["status"], a["step"], a["after"], a["limit"], when(a["due_at"]), a["late_by"],
                  a["warehouse"] or "-", a["carrier"] or "-")
    t.print(wide=wide)

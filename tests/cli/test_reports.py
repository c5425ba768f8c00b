"""``oms report timeliness`` and ``oms report late``, and the late steps in ``oms order show``, as run by a person."""

from __future__ import annotations

import json

from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from tests.fulfilment.test_timeliness import SILENT, six_orders
from tests.support import T0, make_config
from tests.support.cli import Cli

OPS = {"recipient": "ops@example.com"}
LIMITS = [{"after": "dispatched", "step": "picking", "hours": 24},
          {"after": "shipped", "step": "delivered", "hours": 120}]


def test_reports_from_the_command_line(cli: Cli) -> None:
    cli.write_config(late_steps=LIMITS, operations=OPS)
    oms = OMS(make_config(cli.tmp_path, cli.url, plugin_settings=SILENT), clock=SimulatedClock(T0))
    try:
        numbers = six_orders(oms)
    finally:
        oms.close()

    report = json.loads(cli("report", "timeliness", "--since", "2026-11-02", "--until", "2026-11-02", "--json").stdout)
    assert (report["since"], report["until"], report["by"]) == ("2026-11-02T00:00:00", "2026-11-03T00:00:00",
                                                                "warehouse")
    assert [g["key"] for g in report["groups"]] == ["WH-BJ", "WH-SH"]
    assert report["all"]["orders"] == 6
    assert report["all"]["sent_to_shipped"] == {"started": 6, "count": 5, "median_hours": 4.0, "p95_hours": 30.0,
                                                "late": 2, "late_share": 0.3333}
    # Only the limits of this config count: none has its step in paid -> sent.
    assert report["intervals"][0]["limits"] == [] and report["all"]["paid_to_sent"]["late_share"] is None

    text = cli("report", "timeliness", "--since", "2026-11-02", "--until", "2026-11-02T23:59:59").stdout
    assert "orders paid from 2026-11-02 00:00:00 UTC until 2026-11-02 23:59:59 UTC, by warehouse: 6" in text
    assert "paid → sent (no limit configured)" in text
    assert "sent → shipped (picking within 24h of dispatched)" in text
    sh = next(line for line in text.splitlines() if "WH-SH" in line and "40.0% (2)" in line)
    assert "5.00" in sh and "30.00" in sh
    assert "sim_carrier" in cli("report", "timeliness", "--since", "2026-11-02", "--until", "2026-11-02",
                                "--by", "carrier").stdout

    bad = cli("report", "timeliness", "--since", "last week", ok=False)
    assert "--since: 'last week' is neither a date such as 2026-11-02 nor a time such as" in bad.stderr
    bad = cli("report", "timeliness", "--since", "2026-11-05", "--until", "2026-11-04", ok=False)
    assert "--since (2026-11-05T00:00:00) must be before --until (2026-11-05T00:00:00)" in bad.stderr

    late = json.loads(cli("report", "late", "--json").stdout)
    assert late["total"] == 1 and late["alerts"][0]["order"] == numbers["O5"]
    text = cli("report", "late").stdout
    assert "late steps open (1)" in text and numbers["O5"] in text and "picking" in text
    assert "late steps open (0)" in cli("report", "late", "--warehouse", "WH-BJ").stdout

    shown = cli("order", "show", numbers["O4"]).stdout
    assert "late steps" in shown
    assert "picking within 24h of dispatched: due 2026-11-03T13:00:00, 0m late" in shown   # the incident
    # step, after, limit, due, raised (at the first pass past it), resolved (when it got there): times in UTC
    assert late_steps_table(shown) == [
        ["picking", "dispatched", "24h", "2026-11-03 13:00:00 UTC", "2026-11-03 13:00:00 UTC",
         "2026-11-03 19:00:00 UTC"],
        ["delivered", "shipped", "120h", "2026-11-08 19:00:00 UTC", "2026-11-09 05:00:00 UTC",
         "2026-11-09 05:00:00 UTC"]]
    assert late_steps_table(cli("order", "show", numbers["O5"]).stdout) == [
        ["picking", "dispatched", "24h", "2026-11-03 13:00:00 UTC", "2026-11-03 13:00:00 UTC", "open"]]


def late_steps_table(shown: str) -> list[list[str]]:
    table = shown[shown.index("late steps"):shown.index("incidents")]
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in table.splitlines() if line.startswith("│")]
    return [r for r in rows if len(r) == 6]

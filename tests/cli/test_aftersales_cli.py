"""``oms aftersales``: a case opened, decided and shown from the command line, an exchange with its replacement."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.engine import OMS
from oms_engine.plugin.testing import drive_until_state
from tests.support import NO_REFUSALS, make_config, order_json
from tests.support.cli import Cli


def test_an_exchange_is_opened_approved_and_shown_from_the_command_line(cli: Cli) -> None:
    # Placed now: the command line's clock is the wall clock, and the after-sales window runs from delivery.
    placed = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    [result] = cli.ingest(cli.write_orders("o.json", order_json("CLI-EX", [("TEA-1", 2)], placed_at=placed)))
    number = result["number"]
    # Driven to delivery in this process, by a simulated warehouse and carrier that never refuse.
    oms = OMS(make_config(cli.tmp_path, cli.url, plugin_settings=NO_REFUSALS), clock=SimulatedClock(utcnow()))
    try:
        drive_until_state(oms, number, "delivered")
    finally:
        oms.close()
    bad = cli("aftersales", "open", number, "--kind", "exchange", "--line", "1:1", "--to", "1", ok=False)
    assert "--to takes LINE_NO:SKU" in bad.stderr
    priced = cli("aftersales", "open", number, "--kind", "exchange", "--line", "1:1", "--to", "1:MUG-1", ok=False)
    assert "'MUG-1' is not priced as 'TEA-1'" in priced.stderr
    case = json.loads(cli("aftersales", "open", number, "--kind", "exchange", "--line", "1:1", "--reason",
                          "wrong size", "--json").stdout)
    assert (case["kind"], case["status"], case["lines"]) == ("exchange", "under_review",
                                                            [{"line_no": 1, "quantity": 1, "sku": "TEA-1"}])
    out = cli("aftersales", "approve", case["number"], "--actor", "support:ann").stdout
    shown = json.loads(cli("aftersales", "show", case["number"], "--json").stdout)
    assert shown["status"] == "awaiting_return" and shown["replacement"]
    assert f"replacement {shown['replacement']}" in out
    assert cli.show(shown["replacement"])["status"] == "on_hold"
    listed = json.loads(cli("aftersales", "list", "--order", number, "--json").stdout)
    assert [(c["number"], c["status"], c["replacement"]) for c in listed] == [
        (case["number"], "awaiting_return", shown["replacement"])]
    got = json.loads(cli("aftersales", "receive", case["number"], "--actor", "store:1", "--json").stdout)
    assert got["status"] == "exchange_shipping" and got["history"][-2]["actor"] == "store:1"
    assert cli.show(shown["replacement"])["status"] != "on_hold"
    assert "'receive' is not allowed" in cli("aftersales", "receive", case["number"], ok=False).stderr

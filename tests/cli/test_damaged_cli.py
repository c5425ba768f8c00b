"""Damaged goods from the command line: ``oms aftersales receive --damaged``, ``oms stock damaged``, ``oms stock scrap``
and ``oms stock regrade``, refusing more than is damaged in one clear line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.engine import OMS
from oms_engine.plugin.testing import drive_until_state
from tests.support import NO_REFUSALS, make_config, order_json
from tests.support.cli import Cli


def _on_hand(cli: Cli, sku: str) -> int:
    [row] = json.loads(cli("stock", "list", "--sku", sku, "--warehouse", "WH-SH", "--json").stdout)
    return int(row["on_hand"])


def test_damaged_units_received_listed_scrapped_and_regraded_from_the_command_line(cli: Cli) -> None:
    # Placed now: the command line's clock is the wall clock, and the after-sales window runs from delivery.
    placed = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    [result] = cli.ingest(cli.write_orders("o.json", order_json("CLI-DMG", [("TEA-1", 3)], placed_at=placed)))
    number = result["number"]
    oms = OMS(make_config(cli.tmp_path, cli.url, plugin_settings=NO_REFUSALS), clock=SimulatedClock(utcnow()))
    try:
        drive_until_state(oms, number, "delivered")
    finally:
        oms.close()
    case = json.loads(cli("aftersales", "open", number, "--kind", "return_refund", "--line", "1:3", "--json").stdout)
    cli("aftersales", "approve", case["number"])
    before = _on_hand(cli, "TEA-1")

    bad = cli("aftersales", "receive", case["number"], "--damaged", "TEA-1", ok=False)
    assert "--damaged takes SKU:QUANTITY" in bad.stderr
    over = cli("aftersales", "receive", case["number"], "--damaged", "TEA-1:2", "--damaged", "TEA-1:2", ok=False)
    assert "4 TEA-1 damaged, but RMA-" in over.stderr and "3 of it to receive" in over.stderr
    assert "No such option '--damaged'" in cli("aftersales", "approve", case["number"], "--damaged", "TEA-1:1",
                                              ok=False).stderr
    got = json.loads(cli("aftersales", "receive", case["number"], "--damaged", "TEA-1:2", "--actor", "store:1",
                         "--json").stdout)
    assert got["status"] in ("refund_pending", "refunded")
    [back] = [h for h in got["history"] if h["to"] == "return_received"]
    assert (back["actor"], back["cause"].endswith("(2 TEA-1 damaged)")) == ("store:1", True)
    assert _on_hand(cli, "TEA-1") == before + 1     # the good one back on sale, the damaged two apart

    assert json.loads(cli("stock", "damaged", "--json").stdout) == [{"warehouse": "WH-SH", "sku": "TEA-1",
                                                                     "quantity": 2}]
    table = cli("stock", "damaged", "--warehouse", "WH-SH").stdout
    assert "TEA-1" in table and "WH-SH" in table
    assert "TEA-1" not in cli("stock", "damaged", "--warehouse", "WH-BJ").stdout

    refused = cli("stock", "scrap", "WH-SH", "TEA-1", "3", "--note", "crushed", ok=False)
    assert refused.stderr.strip() == "error: scrap of 3 TEA-1 at WH-SH: only 2 damaged"
    assert "Missing option '--note'" in cli("stock", "regrade", "WH-SH", "TEA-1", "1", ok=False).stderr
    out = cli("stock", "scrap", "WH-SH", "TEA-1", "1", "--note", "crushed").stdout
    assert out.strip().startswith("scrap 1 TEA-1 at WH-SH: damaged 1, on hand")
    regraded = json.loads(cli("stock", "regrade", "WH-SH", "TEA-1", "1", "--note", "only the tin", "--json").stdout)
    assert (regraded["kind"], regraded["damaged"], regraded["on_hand"]) == ("regrade", 0, before + 2)
    assert json.loads(cli("stock", "damaged", "--json").stdout) == []
    ledger = json.loads(cli("stock", "ledger", "--sku", "TEA-1", "--limit", "3", "--json").stdout)
    assert [(m["kind"], m["on_hand_delta"], m["damaged_delta"]) for m in ledger] == [
        ("regrade", 1, -1), ("scrap", 0, -1), ("return_damaged", 0, 2)]
    assert cli("stock", "verify").stdout.startswith("stock verified: ")

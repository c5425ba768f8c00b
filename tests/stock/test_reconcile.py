"""Reconciliation against a WMS snapshot: planted differences, each reported with its cause; --post adjusts
only what documents in flight do not explain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, LineIn
from oms_engine.masterdata.files import Row, read_rows
from oms_engine.masterdata.service import ImportRefused
from oms_engine.plugin.testing import OrderBuilder, ingest_one, status
from tests.support.cli import OMS_BIN, Cli

# The test world at WH-SH: TEA-1 50, MUG-1 20, ICE-1 30, TV-1 5, RARE-1 1; at WH-GZ: PEN-1 100 ...
SNAPSHOT = [
    ("WH-SH", "TEA-1", 48),       # 2 shipped by the warehouse, SHIPPED not heard of yet: in flight
    ("WH-SH", "MUG-1", 23),       # 3 more than the OMS knows: a missing receipt
    ("WH-SH", "ICE-1", 27),       # 3 fewer: an unreported loss
    ("WH-SH", "TV-1", 5),         # the same
    ("WH-SH", "GHOST-9", 5),      # a SKU the catalogue does not know
    # RARE-1 left out: the snapshot is complete for WH-SH, so the WMS holds none
]


def _rows(*extra: tuple[str, str, int]) -> list[Row]:
    return [Row(f"snapshot.csv:{i}", {"warehouse": w, "sku": k, "quantity": q})
            for i, (w, k, q) in enumerate([*SNAPSHOT, *extra], start=2)]


def _world(oms: OMS) -> str:
    oms.masterdata.apply("suppliers", [Row("t", {"code": "SUP-1", "name": "Pens Ltd"})], actor="t", source="t")
    r = ingest_one(oms, OrderBuilder("REC-1").line("TEA-1", 2).build())
    oms.pipeline.run_until_idle()
    assert status(oms, r.number) == "dispatched"
    oms.documents.create(DocKind.PURCHASE_ORDER, "WH-GZ", [LineIn("PEN-1", 10, "1.00")], actor="t", supplier="SUP-1")
    return r.number


def test_each_planted_difference_is_reported_with_its_cause(oms: OMS) -> None:
    number = _world(oms)
    result = oms.reconciler.run(_rows(("WH-GZ", "PEN-1", 110), ("WH-GZ", "TEA-1", 50), ("WH-GZ", "ICE-1", 10),
                                      ("WH-GZ", "SOFA-1", 2)), source="snapshot.csv")
    found = {(d.warehouse, d.sku): (d.difference, d.cause, d.to_post) for d in result.differences}
    assert found == {
        ("WH-SH", "TEA-1"): (-2, "documents in flight", 0),
        ("WH-SH", "MUG-1"): (3, "missing receipt", 3),
        ("WH-SH", "ICE-1"): (-3, "unreported loss", -3),
        ("WH-SH", "GHOST-9"): (5, "unknown SKU", 0),
        ("WH-SH", "RARE-1"): (-1, "unreported loss", -1),
        ("WH-GZ", "PEN-1"): (10, "documents in flight", 0),
    }
    details = {(d.warehouse, d.sku): d.detail for d in result.differences}
    assert number in details[("WH-SH", "TEA-1")] and "PO-000001 (10)" in details[("WH-GZ", "PEN-1")]
    assert len(result.unexplained) == 4 and not any(d.posted for d in result.differences)
    assert oms.stock.verify().ok


def test_post_adjusts_what_nothing_explains_and_a_second_run_finds_only_documents_in_flight(oms: OMS) -> None:
    _world(oms)
    posted = oms.reconciler.run(_rows(), source="snapshot.csv", post=True, actor="ops:lee")
    assert sorted((d.sku, d.to_post) for d in posted.differences if d.posted) == \
        [("ICE-1", -3), ("MUG-1", 3), ("RARE-1", -1)]
    ledger = oms.stock.ledger(kind="adjustment")
    assert {(m["sku"], m["on_hand_delta"], m["actor"]) for m in ledger} == \
        {("ICE-1", -3, "ops:lee"), ("MUG-1", 3, "ops:lee"), ("RARE-1", -1, "ops:lee")}
    assert all(m["note"].startswith("reconciliation: ") for m in ledger)
    again = oms.reconciler.run(_rows(), source="snapshot.csv")
    assert sorted((d.sku, d.cause) for d in again.differences) == \
        [("GHOST-9", "unknown SKU"), ("TEA-1", "documents in flight")]
    assert oms.stock.verify().ok


def test_a_partial_snapshot_compares_only_what_it_lists_and_a_bad_row_compares_nothing(oms: OMS) -> None:
    partial = oms.reconciler.run([Row("s:2", {"warehouse": "WH-SH", "sku": "MUG-1", "quantity": 20})],
                                 source="s", partial=True)
    assert partial.compared == 1 and partial.differences == []
    with pytest.raises(ImportRefused) as refused:
        oms.reconciler.run([Row("s:2", {"warehouse": "WH-SH", "sku": "MUG-1", "quantity": 1}),
                            Row("s:3", {"warehouse": "WH-SH", "sku": "MUG-1", "quantity": 1}),
                            Row("s:4", {"warehouse": "WH-SH", "sku": "TEA-1", "quantity": -1})], source="s")
    assert [str(e) for e in refused.value.report.errors] == [
        "s:3: warehouse,sku: WH-SH/MUG-1 appears again (first at s:2)",
        "s:4: quantity: Input should be greater than or equal to 0"]
    with pytest.raises(ImportRefused, match="no warehouse 'WH-XX'"):
        oms.reconciler.run([Row("s:2", {"warehouse": "WH-XX", "sku": "MUG-1", "quantity": 1})], source="s")


def test_the_command_reports_and_exits_1_until_it_is_posted(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "wms-stock.csv"
    path.write_text("warehouse,sku,quantity\nWH-BJ,TEA-1,50\nWH-BJ,MUG-1,4\nWH-BJ,TV-1,5\nWH-BJ,SOFA-1,3\n",
                    encoding="utf-8")
    assert [r.data["sku"] for r in read_rows(path)] == ["TEA-1", "MUG-1", "TV-1", "SOFA-1"]
    first = cli("stock", "reconcile", str(path), "--json", ok=False)
    report = json.loads(first.stdout)
    assert [(d["sku"], d["cause"], d["unexplained"]) for d in report["differences"]] == \
        [("MUG-1", "unreported loss", -1)]
    cli("stock", "reconcile", str(path), "--post")
    assert cli("stock", "reconcile", str(path)).stdout.startswith("4 balances of WH-BJ compared: 0 difference(s)")
    assert subprocess.run([OMS_BIN, "stock", "verify"], env=cli.env(), capture_output=True).returncode == 0

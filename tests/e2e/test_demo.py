"""The main job, small: `oms demo` drives generated orders through their whole life."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from oms_engine.demo.driver import run_demo
from oms_engine.plugin.testing import drive
from tests.support import ROOT, build_oms, make_config, order_json, payload


def test_demo_runs_every_order_to_an_end_and_keeps_the_books(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}")
    out = io.StringIO()
    summary = run_demo(cfg, orders=150, skus=200, seed=3, console=Console(file=out, width=120))
    text = out.getvalue()
    for heading in ("Orders by final state", "Holds and why", "Routing and stock", "Notifications sent",
                    "Interceptions asked", "Merged:", "Kits sold", "Warehouse moves", "Payments:", "Done in"):
        assert heading in text
    states = set(summary["orders"]) | set(summary["children"])
    # Three simulated weeks later nothing is left in flight: only ends, held orders and split parents.
    assert states <= {"closed", "cancelled", "on_hold", "split", "completed"}, states
    assert summary["orders"].get("closed", 0) > 100
    assert summary["negative_available"] == 0
    assert summary["outbox_unsent"] == 0
    assert summary["notifications"].get("sms", 0) > 0 and summary["notifications"].get("email", 0) > 0
    # Stock only left the warehouses through shipments of orders that were not returned.
    shipped_out = sum(b[0] - summary["stock_after"][w][0] for w, b in summary["stock_before"].items())
    assert shipped_out > 0
    assert sum(summary["holds"].values()) > 0 and summary["split_parents"] > 0
    # The fulfilment decisions all happen: merged parcels, couriers by rules among three (the cheapest one
    # refusing now and then, the next taking the parcel), kits, lot-tracked goods, moves, late-step alerts.
    f = summary["fulfilment"]
    assert f["merged_orders"] >= 2 * f["merged_parcels"] > 0
    assert {"SF", "ZTO", "DEPPON"} <= set(f["carriers"]) and f["courier_fallbacks"] > 0
    assert f["kit_lines"] > 0 and f["lot_units_shipped"] > 0
    assert f["moves"].get("moved", 0) > 0 and f["moves"].get("routed again", 0) > 0
    assert sum(f["late_steps"].values()) > 0
    # Every order paid has its payment on record; cancelled and refused paid orders were paid back, through
    # the payment provider; what the ledger took in less what it gave back is what the orders kept.
    m = summary["money"]
    assert m["payments"] > 100 and m["refunds"].get("refunded", (0, 0))[0] > 0
    assert set(m["refunds"]) <= {"refunded"} and m["balanced"] and "holds" in text
    # Customers opened after-sales cases on what they received: paid back, some denied for good.
    assert m["cases"].get("refunded", 0) > 0 and "After-sales cases" in text
    # Some customers exchanged what they got; some paid partly with the shop's gift cards and points, whose
    # balances moved with the orders and the refunds.
    assert m["case_kinds"].get("exchange", 0) > 0 and m["cases"].get("done", 0) > 0
    assert m["wallet_movements"].get("redeem", 0) > 0 and m["wallets_off"] == 0
    # The merchants' settlement statements add up to the invoices and credit notes.
    assert m["merchants_settled"] > 1 and m["commission"] > 0 and m["settlement_off"] == []
    assert "Settlement:" in text
    # Every order paid in full is invoiced; every refund of its money has a credit note; they add up.
    assert m["invoices"] > 100 and m["credit_notes"] > 0 and m["invoices_off"] == 0
    # Each of them was submitted to the (simulated) tax platform and issued there.
    assert m["einvoices"] == {"accepted": m["invoices"] + m["credit_notes"]} and "E-invoices at the tax" in text
    # The closing line gives the rate: every order, child orders included, per second of the run.
    total = sum(summary["orders"].values()) + sum(summary["children"].values())
    assert summary["orders_per_s"] == pytest.approx(total / summary["seconds"], rel=0.01)
    assert f"{summary['orders_per_s']} orders and" in text
    # Every balance the demo leaves is what its ledger says (oms stock verify exits 0 after the demo).
    from oms_engine.engine import OMS
    with OMS(cfg) as oms:
        result = oms.stock.verify()
        assert result.ok, result.differences[:5]
        assert result.movements > 1000


def _oms_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "oms"), *args], capture_output=True, text=True,
                          timeout=300)


def test_the_demo_uses_a_database_of_its_own_and_never_wipes_real_orders(tmp_path: Path) -> None:
    main = tmp_path / "main.db"
    config = tmp_path / "config.yaml"
    config.write_text(f"database_url: sqlite:///{main}\nrules_dir: {ROOT / 'rules'}\n"
                      f"templates_dir: {ROOT / 'templates'}\noutbox_dir: {tmp_path / 'outbox'}\n", encoding="utf-8")
    assert _oms_cli("--config", str(config), "init").returncode == 0
    oms = build_oms(tmp_path, f"sqlite:///{main}")
    [real] = oms.intake.ingest("json", payload(order_json("REAL-1")))
    drive(oms)
    oms.close()
    # The real notifications, as the file senders delivered them.
    sent = {f.name: f.read_bytes() for f in (tmp_path / "outbox").glob("*.jsonl")}
    assert sent and all(sent.values())

    ran = _oms_cli("--config", str(config), "demo", "--orders", "20", "--skus", "50")
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "var" / "demo.db").exists()        # next to config.yaml, not the configured database
    verified = _oms_cli("--config", str(config), "--db", f"sqlite:///{tmp_path / 'var' / 'demo.db'}", "stock",
                        "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("stock verified: "), verified.stderr
    assert build_counts(main)["orders"] == 1
    again = _oms_cli("--config", str(config), "demo", "--orders", "20", "--skus", "50")
    assert again.returncode == 0, again.stderr              # its own database: reset without asking
    # ... and its own outbox: the configured one still holds exactly the real deliveries.
    assert {f.name: f.read_bytes() for f in (tmp_path / "outbox").glob("*.jsonl")} == sent
    assert list((tmp_path / "var" / "demo-outbox").glob("*.jsonl"))

    refused = _oms_cli("--config", str(config), "--db", f"sqlite:///{main}", "demo", "--orders", "20")
    assert refused.returncode != 0
    assert "holds orders the demo did not make" in refused.stderr and "Traceback" not in refused.stderr
    assert build_counts(main)["orders"] == 1 and real.number

    forced = _oms_cli("--config", str(config), "--db", f"sqlite:///{main}", "demo", "--orders", "20", "--skus", "50",
                      "--force")
    assert forced.returncode == 0, forced.stderr
    assert build_counts(main)["orders"] > 1
    assert {f.name: f.read_bytes() for f in (tmp_path / "outbox").glob("*.jsonl")} == sent


def build_counts(path: Path) -> dict[str, int]:
    from tests.support.pipeline import table_counts_url
    return table_counts_url(f"sqlite:///{path}")

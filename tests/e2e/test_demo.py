"""The main job, small: `oms demo` drives generated orders through their whole life."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from oms_engine.demo.driver import run_demo
from tests.support import make_config


def test_demo_runs_every_order_to_an_end_and_keeps_the_books(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}")
    out = io.StringIO()
    summary = run_demo(cfg, orders=150, skus=200, seed=3, console=Console(file=out, width=120))
    text = out.getvalue()
    for heading in ("Orders by final state", "Holds and why", "Routing and stock", "Notifications sent",
                    "Interceptions asked", "Done in"):
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

"""The benchmark's baseline: the run's own rows, written again by plain sqlite3 into the OMS's schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from oms_engine.bench import baseline
from oms_engine.bench.baseline import WRITTEN, Copies, Replay, schema_of
from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import upgrade
from tests.support import build_oms, order_json, payload

STOCK = "SELECT warehouse, sku, on_hand, reserved FROM stock ORDER BY warehouse, sku"


def test_the_baseline_writes_into_the_same_tables_and_indexes_as_the_oms(tmp_path: Path) -> None:
    """The baseline's floor is the OMS's own schema, indexes included: without them it writes faster
    than the pipeline's storage ever could, and the ratio understates the pipeline."""
    upgrade(make_engine(f"sqlite:///{tmp_path / 'oms.db'}"))
    listing = "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    oms = sqlite3.connect(tmp_path / "oms.db")
    copy = sqlite3.connect(tmp_path / "copy.db")
    try:
        for sql in schema_of(oms):
            copy.execute(sql)
        wanted = oms.execute(listing).fetchall()
        assert ("index", "ix_orders_customer", "orders") in wanted   # the listing does hold the indexes
        assert copy.execute(listing).fetchall() == wanted
    finally:
        oms.close()
        copy.close()


def test_each_copy_holds_exactly_the_rows_the_run_wrote_and_ends_with_its_stock(tmp_path: Path) -> None:
    """Payload by payload, what the pipeline inserted (and nothing from before the run) goes into every
    copy, and the stock movements replayed in ledger order leave each copy's stock as the run left it."""
    oms = build_oms(tmp_path, f"sqlite:///{tmp_path / 'oms.db'}")
    source = sqlite3.connect(tmp_path / "oms.db")
    try:
        oms.intake.ingest("json", payload(order_json("B-0")), source="test")   # before the run: not counted
        oms.pipeline.run_until_idle()
        before = {t: source.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{t}"').fetchone()[0] for t in WRITTEN}
        copies = Copies(tmp_path / "oms.db", 2)
        try:
            for n in range(3):
                body = payload(order_json(f"B-{n}-1", [("TEA-1", 1), ("MUG-1", 2)]),
                               order_json(f"B-{n}-2", [("TEA-1", 2)], customer=f"C-NEW-{n}"))
                oms.intake.ingest("json", body, source="test")
                oms.pipeline.run_until_idle()
                copies.payload()
            written = {t: source.execute(f'SELECT * FROM "{t}" WHERE rowid > ? ORDER BY rowid', (before[t],))
                       .fetchall() for t in WRITTEN}
            assert len(written["orders"]) >= 6 and written["stock_movements"] and written["order_history"]
            assert copies.rows == sum(map(len, written.values())) + len(written["stock_movements"])
            for path in copies.paths:
                copy = sqlite3.connect(path)
                try:
                    for t in WRITTEN:
                        assert copy.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() == written[t], t
                    assert copy.execute(STOCK).fetchall() == source.execute(STOCK).fetchall()
                finally:
                    copy.close()
        finally:
            copies.close()
    finally:
        source.close()
        oms.close()


def test_the_baseline_counts_the_median_of_its_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One copy slowed or sped by the host does not become the floor the run is compared with."""
    upgrade(make_engine(f"sqlite:///{tmp_path / 'oms.db'}"))
    times = iter([0.5, 0.05, 0.1,    # first payload: copies 0, 1, 2
                  0.4, 0.05, 0.1])   # second: totals 0.9, 0.1 and 0.2
    monkeypatch.setattr(baseline, "_write", lambda *_args: next(times))
    copies = Copies(tmp_path / "oms.db", 3)
    try:
        copies.payload()
        copies.payload()
        assert copies.result() == (pytest.approx(0.2), 0)
    finally:
        copies.close()


def test_the_replaying_process_answers_for_the_run_and_a_failed_one_is_an_error(tmp_path: Path) -> None:
    upgrade(make_engine(f"sqlite:///{tmp_path / 'oms.db'}"))
    replay = Replay(tmp_path / "oms.db")
    try:
        replay.payload()
        seconds, rows = replay.result()
        assert seconds > 0 and rows == 0   # a transaction was written and timed, with no row in it
    finally:
        replay.close()
    (tmp_path / "not-a-database").write_text("plain text\n" * 100, encoding="utf-8")
    with pytest.raises(RuntimeError, match="the baseline's replay stopped"):
        Replay(tmp_path / "not-a-database").close()

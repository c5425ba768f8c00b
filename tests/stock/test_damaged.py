"""Damaged stock: goods a customer sends back damaged go to a status of their own, never sellable, every change a
ledger row; verify recomputes it; scrap writes it off, regrade puts it back on hand at average cost; a receipt line
says its condition, and anything else is refused naming the line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from oms_engine.aftersales.receipt import ReceiptError
from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, DocumentError, LineIn, apply_report
from oms_engine.masterdata.files import Row
from oms_engine.plugin.testing import T0, drive, drive_until_state, ingest_one, status
from oms_engine.stock import damaged
from oms_engine.stock.batch import StockError, stock_batch
from oms_engine.stock.ledger import post
from oms_engine.stock.movements import DAMAGED, EFFECTS, Movement, damaged_delta, deltas, value_in
from oms_engine.storage.models import DamagedStock, InboxMessage, Stock, StockMovement
from tests.support import NO_REFUSALS, build_oms, order_json


@pytest.fixture
def paced(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    """No refusals, and the simulated warehouse at its own pace: a return it was sent is received only once the
    clock gets there, so a test's own receipt report comes first."""
    settings = {"sim_wms": {**NO_REFUSALS["sim_wms"], "time_scale": 1.0},
                "sim_carrier": {**NO_REFUSALS["sim_carrier"], "time_scale": 1.0}}
    o = build_oms(tmp_path, db_url, plugin_settings=settings)
    yield o
    o.close()


def _figures(oms: OMS, warehouse: str, sku: str) -> tuple[int, int, int, int]:
    """on hand, available, value, damaged."""
    with oms.db.read() as s:
        row = s.get(Stock, (warehouse, sku))
        broken = damaged.quantity(s, warehouse, sku)
    assert row is not None
    return row.on_hand, row.on_hand - row.reserved, row.value, broken


def _return_approved(oms: OMS, external_id: str, qty: int) -> tuple[str, str]:
    """A delivered order of ``qty`` TEA-1, a return of all of it approved: (case, return document)."""
    number = ingest_one(oms, order_json(external_id, [("TEA-1", qty)])).number
    drive_until_state(oms, number, "delivered")
    case = oms.aftersales.open(number, "return_refund", {1: qty}, "arrived crushed", actor="customer:C-OLD")
    case = oms.aftersales.act(case["number"], "approve", actor="support:ann")
    oms.pipeline.run_until_idle()    # the return document goes to the warehouse
    return case["number"], case["return_document"]


def test_the_movement_table_gives_each_damaged_kind_its_effect() -> None:
    assert {Movement.RETURN_DAMAGED, Movement.SCRAP, Movement.REGRADE} == DAMAGED
    assert [damaged_delta(k, 3) for k in (Movement.RETURN_DAMAGED, Movement.SCRAP, Movement.REGRADE)] == [3, -3, -3]
    assert deltas(Movement.RETURN_DAMAGED, 3) == (0, 0) and deltas(Movement.REGRADE, 3) == (3, 0)
    assert all(EFFECTS[k].damaged == 0 for k in Movement if k not in DAMAGED)
    for kind in DAMAGED:
        with pytest.raises(ValueError):
            damaged_delta(kind, 0)
        with pytest.raises(ValueError):
            damaged_delta(kind, -1)


def test_a_return_reported_damaged_stays_out_of_sellable_stock_and_the_case_completes(paced: OMS) -> None:
    oms = paced
    case, rma = _return_approved(oms, "DMG-1", 3)
    before = _figures(oms, "WH-SH", "TEA-1")
    with oms.db.session() as s:
        oms.callbacks.receive(s, "sim_wms", {"kind": "receipt", "document": rma, "lines": [
            {"sku": "TEA-1", "quantity": 1}, {"sku": "TEA-1", "quantity": 2, "condition": "damaged"}]})
    oms.pipeline.run_until_idle()
    on_hand, available, value, broken = _figures(oms, "WH-SH", "TEA-1")
    # One unit back on sale at the average cost; the two damaged ones apart, without value.
    assert (on_hand, available, broken) == (before[0] + 1, before[1] + 1, before[3] + 2)
    doc = oms.documents.get(rma)
    assert (doc["status"], doc["lines"][0]["done"]) == ("done", 3)
    with oms.db.read() as s:
        outcome = s.scalars(select(InboxMessage.outcome).where(InboxMessage.outcome.like(f"{rma} received%"))).one()
        rows = s.scalars(select(StockMovement).where(StockMovement.document == rma).order_by(StockMovement.id)).all()
    assert "2 TEA-1 damaged" in outcome and "2 unit(s) damaged, kept apart from sellable stock" in outcome
    assert [(m.kind, m.on_hand_delta, m.damaged_delta, m.lot) for m in rows] == [
        ("customer_return", 1, 0, None), ("return_damaged", 0, 2, None)]
    assert rows[1].value_delta == 0 and value == before[2] + rows[0].value_delta
    assert oms.aftersales.get(case)["status"] in ("refund_pending", "refunded")   # received: the case goes on
    assert oms.stock.verify().ok
    assert oms.stock.damaged(sku="TEA-1") == [{"warehouse": "WH-SH", "sku": "TEA-1", "quantity": 2}]
    drive(oms)    # the simulated warehouse's own report of the same return comes later: nothing twice
    assert _figures(oms, "WH-SH", "TEA-1")[3] == 2
    assert oms.stock.verify().ok


def test_damaged_units_recorded_at_the_counter_go_apart_and_more_than_comes_back_is_refused(paced: OMS) -> None:
    oms = paced
    case, rma = _return_approved(oms, "DMG-2", 2)
    before = _figures(oms, "WH-SH", "TEA-1")
    for broken, words in (({"TEA-1": 3}, "3 TEA-1 damaged, but RMA-"), ({"MUG-1": 1}, "none of it to receive"),
                          ({"TEA-1": 0}, "whole number above 0")):
        with pytest.raises(ReceiptError, match=words):
            oms.aftersales.act(case, "receive", actor="store:1", damaged=broken)
    with pytest.raises(ReceiptError, match="only 'receive' records damaged units"):
        oms.aftersales.act(case, "refund", actor="store:1", damaged={"TEA-1": 1})
    assert _figures(oms, "WH-SH", "TEA-1") == before and oms.documents.get(rma)["status"] == "open"
    got = oms.aftersales.act(case, "receive", actor="store:1", damaged={"TEA-1": 2})
    assert got["history"][-2]["to"] == "return_received" and "(2 TEA-1 damaged)" in got["history"][-2]["cause"]
    on_hand, available, value, broken = _figures(oms, "WH-SH", "TEA-1")
    assert (on_hand, available, value, broken) == (before[0], before[1], before[2], 2)
    assert oms.documents.get(rma)["status"] == "done"
    assert oms.stock.verify().ok


def test_scrap_and_regrade_clear_damaged_stock_never_past_what_is_damaged(oms: OMS) -> None:
    with oms.db.session() as s:
        post(s, Movement.PURCHASE_RECEIPT, "WH-SH", "MUG-1", 7, document="PO-X", at=T0, unit_cost=1999)
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "MUG-1", 5, document="RMA-X", at=T0, actor="t")
    on_hand, available, value, broken = _figures(oms, "WH-SH", "MUG-1")
    assert broken == 5
    scrapped = oms.stock.clear_damaged(Movement.SCRAP, "WH-SH", "MUG-1", 2, document="SCRAP-1", actor="t",
                                       note="glass broken")
    assert (scrapped.damaged, scrapped.on_hand, scrapped.value) == (3, on_hand, 0)
    # Back on hand at the average cost: sellable again.
    regraded = oms.stock.clear_damaged(Movement.REGRADE, "WH-SH", "MUG-1", 1, document="RG-1", actor="t",
                                       note="only the box was dented")
    assert (regraded.damaged, regraded.on_hand, regraded.available) == (2, on_hand + 1, available + 1)
    assert regraded.value == value_in(value, on_hand, 1, None) > 0
    for kind in (Movement.SCRAP, Movement.REGRADE):
        with pytest.raises(StockError, match=f"{kind.value} of 3 MUG-1 at WH-SH: only 2 damaged"):
            oms.stock.clear_damaged(kind, "WH-SH", "MUG-1", 3, document="X", actor="t", note="too many")
    with pytest.raises(StockError, match="needs a note"):
        oms.stock.clear_damaged(Movement.SCRAP, "WH-SH", "MUG-1", 1, document="X", actor="t", note=" ")
    with pytest.raises(StockError, match="only 0 damaged"):
        oms.stock.clear_damaged(Movement.SCRAP, "WH-BJ", "MUG-1", 1, document="X", actor="t", note="none here")
    assert _figures(oms, "WH-SH", "MUG-1") == (on_hand + 1, available + 1, value + regraded.value, 2)
    with oms.db.read() as s:
        rows = s.scalars(select(StockMovement).where(StockMovement.sku == "MUG-1", StockMovement.kind.in_(
            [k.value for k in DAMAGED])).order_by(StockMovement.id)).all()
    assert [(m.kind, m.on_hand_delta, m.damaged_delta, m.document, m.note) for m in rows] == [
        ("return_damaged", 0, 5, "RMA-X", ""), ("scrap", 0, -2, "SCRAP-1", "glass broken"),
        ("regrade", 1, -1, "RG-1", "only the box was dented")]
    assert oms.stock.verify().ok


def test_damaged_stock_is_never_posted_through_the_sellable_batch(sqlite_oms: OMS) -> None:
    for kind in DAMAGED:
        with pytest.raises(StockError, match=r"posted by stock/damaged\.py"), sqlite_oms.db.session() as s:
            stock_batch(s).post(kind, "WH-SH", "TEA-1", 1, document="x", at=T0)
    with pytest.raises(StockError, match="not a movement of damaged stock"), sqlite_oms.db.session() as s:
        damaged.post(s, Movement.ADJUSTMENT, "WH-SH", "TEA-1", 1, document="x", at=T0)
    with pytest.raises(StockError, match="without a lot"), sqlite_oms.db.session() as s:
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "TEA-1", 1, document="x", at=T0, lot="L1")
    assert sqlite_oms.stock.damaged() == []


def test_verify_finds_damaged_stock_its_ledger_does_not_explain(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    with oms.db.session() as s:
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "TEA-1", 2, document="RMA-Y", at=T0)
    assert oms.stock.verify().ok
    with oms.db.session() as s:
        s.execute(update(DamagedStock).values(quantity=5))
    found = oms.stock.verify()
    assert [(d.warehouse, d.sku, d.figure, d.stored, d.recomputed) for d in found.differences] == [
        ("WH-SH", "TEA-1", "damaged", 5, 2)]
    assert "damaged is 5 in the damaged_stock table, 2 recomputed" in str(found.differences[0])


def _report(oms: OMS, document: str, lines: list[dict[str, Any]]) -> str:
    with oms.db.session() as s:
        return apply_report(s, warehouse=None, document=document, lines=lines, at=T0)


def test_a_report_line_with_another_condition_is_refused_naming_it(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    oms.masterdata.apply("suppliers", [Row("t", {"code": "SUP-1", "name": "Tea Farm"})], actor="t", source="t")
    number = ingest_one(oms, order_json("DMG-3", [("TEA-1", 2)])).number
    rma = oms.documents.create(DocKind.CUSTOMER_RETURN, "WH-SH", [LineIn("TEA-1", 2)], actor="t",
                               order_number=number)["number"]
    po = oms.documents.create(DocKind.PURCHASE_ORDER, "WH-SH", [LineIn("TEA-1", 2, "10.00")], actor="t",
                              supplier="SUP-1")["number"]
    before = _figures(oms, "WH-SH", "TEA-1")
    for document, lines, words in [
        (rma, [{"sku": "TEA-1", "quantity": 1}, {"sku": "TEA-1", "quantity": 1, "condition": "broken"}],
         "line 2 (TEA-1): the condition must be 'good' or 'damaged', got 'broken'"),
        (rma, [{"sku": "TEA-1", "quantity": 1, "condition": None}], "line 1 (TEA-1): the condition must be "),
        (po, [{"sku": "TEA-1", "quantity": 2, "condition": "damaged"}],
         "line 1 (TEA-1): only a customer return takes goods back damaged"),
    ]:
        with pytest.raises(DocumentError, match=re.escape(words)):
            _report(oms, document, lines)
    assert _figures(oms, "WH-SH", "TEA-1") == before
    assert oms.documents.get(rma)["status"] == "open"
    outcome = _report(oms, rma, [{"sku": "TEA-1", "quantity": 1, "condition": "good"},
                                 {"sku": "TEA-1", "quantity": 1, "condition": "damaged"}])
    assert outcome == (f"{rma} received 1 TEA-1, 1 TEA-1 damaged -> done "
                       "(1 unit(s) damaged, kept apart from sellable stock)")


def test_damaged_units_of_a_lot_tracked_product_need_no_lot_and_a_regrade_names_one(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    oms.masterdata.apply("products", [Row("t", {"sku": "FISH-1", "name": "Frozen cod", "currency": "CNY",
                                                "price": "29.00", "merchant": "M-02", "cold_chain": True,
                                                "lot_tracked": True})], actor="t", source="t")
    number = ingest_one(oms, order_json("DMG-4", [("TEA-1", 1)])).number
    rma = oms.documents.create(DocKind.CUSTOMER_RETURN, "WH-SH", [LineIn("FISH-1", 2)], actor="t",
                               order_number=number)["number"]
    # A lot reported with damaged units is not kept: damaged goods have none.
    _report(oms, rma, [{"sku": "FISH-1", "quantity": 2, "condition": "damaged", "lot": "L-1"}])
    assert oms.stock.damaged(sku="FISH-1") == [{"warehouse": "WH-SH", "sku": "FISH-1", "quantity": 2}]
    with pytest.raises(StockError, match="kept in lots: name the lot"):
        oms.stock.clear_damaged(Movement.REGRADE, "WH-SH", "FISH-1", 1, document="RG", actor="t", note="fine")
    with pytest.raises(StockError, match="without a lot"):
        oms.stock.clear_damaged(Movement.SCRAP, "WH-SH", "FISH-1", 1, document="S", actor="t", note="x", lot="L-1")
    posted = oms.stock.clear_damaged(Movement.REGRADE, "WH-SH", "FISH-1", 1, document="RG", actor="t",
                                     note="still frozen", lot="L-RG", expires_on=T0.date())
    assert (posted.on_hand, posted.damaged) == (1, 1)
    assert oms.stock.verify().ok


def test_a_regrade_releases_an_order_waiting_for_the_sku(quiet: OMS) -> None:
    oms = quiet
    with oms.db.session() as s:
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "RARE-1", 3, document="RMA-Z", at=T0)
    held = ingest_one(oms, order_json("DMG-5", [("RARE-1", 3)]))
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) == "on_hold"     # damaged units are never available
    oms.stock.clear_damaged(Movement.REGRADE, "WH-SH", "RARE-1", 2, document="RG-2", actor="t", note="repaired")
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) != "on_hold"
    assert oms.stock.verify().ok


def test_a_wms_count_holding_the_damaged_units_is_explained_not_posted(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    with oms.db.session() as s:
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-GZ", "PEN-1", 4, document="RMA-W", at=T0)
        on_hand = stock_batch(s).on_hand("WH-GZ", "PEN-1")
    rows = [Row("snap:2", {"warehouse": "WH-GZ", "sku": "PEN-1", "quantity": on_hand + 4})]
    result = oms.reconciler.run(rows, source="snap.csv", partial=True, post=True, actor="t")
    [d] = result.differences
    assert (d.cause, d.to_post, d.posted, result.unexplained) == ("damaged stock", 0, False, [])
    more = [Row("snap:2", {"warehouse": "WH-GZ", "sku": "PEN-1", "quantity": on_hand + 6})]
    [d] = oms.reconciler.run(more, source="snap.csv", partial=True).differences
    assert (d.cause, d.to_post) == ("missing receipt", 2) and "(damaged, set apart: 4)" in d.detail


def test_the_ledger_listing_and_export_show_the_damaged_change(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    with oms.db.session() as s:
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "TEA-1", 2, document="RMA-V", at=T0, actor="t")
        post(s, Movement.ADJUSTMENT, "WH-SH", "TEA-1", 1, document="ADJ", at=T0, actor="t", note="found")
    [row] = oms.stock.ledger(kind="return_damaged")
    assert (row["damaged_delta"], row["on_hand_delta"], row["value_delta"]) == (2, 0, 0)
    text = oms.closings.movements_csv(T0.date())
    header, *lines = text.splitlines()
    assert header.endswith(",note,damaged_delta")
    assert any(",return_damaged,0,0,0," in ln and ln.endswith(",2") for ln in lines)


def test_two_scraps_at_once_never_take_more_than_is_damaged(oms: OMS) -> None:
    with oms.db.session() as s:
        damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "TV-1", 3, document="RMA-T", at=T0)

    def scrap(n: int) -> str:
        try:
            oms.stock.clear_damaged(Movement.SCRAP, "WH-SH", "TV-1", 2, document=f"S-{n}", actor="t", note="cracked")
        except StockError as exc:
            return str(exc)
        return "scrapped"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(scrap, range(2)))
    assert outcomes == ["scrap of 2 TV-1 at WH-SH: only 1 damaged", "scrapped"]
    assert _figures(oms, "WH-SH", "TV-1")[3] == 1
    assert oms.stock.verify().ok

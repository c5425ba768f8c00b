"""Lots with expiry: routing takes the earliest-expiring lot that still has the channel's shelf life; the lot
goes to the warehouse on the document, leaves with the parcel, and comes back into the lots it left."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, LineIn, parse_line
from oms_engine.masterdata.files import Row
from oms_engine.masterdata.service import ImportRefused
from oms_engine.plugin.testing import T0, drive, drive_until_state, show_order, status
from oms_engine.stock.batch import StockError
from oms_engine.stock.ledger import post
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import Order, OutboxMessage, Reservation, StockLot, StockMovement
from tests.support import build_oms, order_json, payload

DAY = timedelta(days=1)


def _lotted(oms: OMS) -> None:
    oms.masterdata.apply("products", [Row("t", {"sku": "FISH-1", "name": "Frozen cod", "currency": "CNY",
                                                "price": "29.00", "merchant": "M-02", "cold_chain": True,
                                                "lot_tracked": True})], actor="t", source="t")
    rows = [("L-SOON", 10, 5), ("L-MID", 60, 5), ("L-LATE", 200, 10)]
    oms.openings.import_rows([Row(f"t:{lot}", {"warehouse": "WH-SH", "sku": "FISH-1", "quantity": q, "lot": lot,
                                               "expires_on": (T0 + days * DAY).date().isoformat()})
                              for lot, days, q in rows], actor="t", source="t")


def _order(oms: OMS, external_id: str, qty: int) -> str:
    amount = 2900 * qty + 1000
    paid = {"transaction_id": f"PAY-{external_id}", "amount": f"{amount // 100}.{amount % 100:02d}"}
    order = order_json(external_id, [("FISH-1", qty)], payment=paid)
    [result] = oms.intake.ingest("json", payload(order))
    assert result.number
    return result.number


def _lots(oms: OMS) -> dict[str, tuple[int, int]]:
    with oms.db.read() as s:
        return {r.lot: (r.on_hand, r.reserved) for r in s.scalars(select(StockLot).where(StockLot.sku == "FISH-1"))}


def _taken(oms: OMS, number: str) -> list[tuple[str | None, int]]:
    with oms.db.read() as s:
        oid = s.scalar(select(Order.id).where(Order.number == number))
        return sorted((r.lot, r.quantity) for r in s.scalars(select(Reservation).where(Reservation.order_id == oid)))


def test_the_earliest_lot_with_enough_shelf_life_is_taken_and_travels_with_the_parcel(oms: OMS) -> None:
    _lotted(oms)
    number = _order(oms, "LOT-1", 7)
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    # L-SOON has 10 days left, under the 30 config.yaml asks: the next lots, earliest first.
    assert _taken(oms, number) == [("L-LATE", 2), ("L-MID", 5)]
    assert _lots(oms) == {"L-SOON": (5, 0), "L-MID": (5, 5), "L-LATE": (10, 2)}
    with oms.db.read() as s:
        doc = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "wms.create",
                                                    OutboxMessage.order_number == number)).one()
    [line] = doc.payload["lines"]
    assert [(x["lot"], x["quantity"]) for x in line["lots"]] == [("L-MID", 5), ("L-LATE", 2)]
    assert line["lots"][0]["expires_on"] == (T0 + 60 * DAY).date().isoformat()
    drive_until_state(oms, number, "delivered")
    assert _lots(oms) == {"L-SOON": (5, 0), "L-MID": (0, 0), "L-LATE": (8, 0)}
    with oms.db.read() as s:
        out = sorted((m.lot, m.on_hand_delta) for m in s.scalars(
            select(StockMovement).where(StockMovement.kind == "sale_out", StockMovement.sku == "FISH-1")))
    assert out == [("L-LATE", -2), ("L-MID", -5)]
    # Back from the customer, with no lot on the receipt: into the lots it left, the latest first.
    doc = oms.documents.create(DocKind.CUSTOMER_RETURN, "WH-SH", [LineIn("FISH-1", 3)], actor="support",
                               order_number=number)
    drive(oms)
    assert _lots(oms) == {"L-SOON": (5, 0), "L-MID": (1, 0), "L-LATE": (10, 0)}
    assert oms.stock.verify().ok, oms.stock.verify().differences
    assert doc["number"]


def test_a_channel_asking_for_more_shelf_life_than_any_lot_has_holds_the_order(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, min_shelf_life_days={"default": 30, "json": 365})
    try:
        _lotted(oms)
        number = _order(oms, "LOT-2", 1)
        oms.pipeline.run_until_idle()
        with oms.db.read() as s:
            order = s.scalars(select(Order).where(Order.number == number)).one()
            assert order.status == "on_hold" and order.hold_stage == "routing"
        assert _lots(oms) == {"L-SOON": (5, 0), "L-MID": (5, 0), "L-LATE": (10, 0)}
        # The routing decision says why the warehouse with the goods could not take it.
        [routing] = [d for d in show_order(oms, number)["decisions"] if d["point"] == "routing"]
        assert any("lots expiring on or after" in t["reason"] for t in routing["outcome"]["tried"]), routing
    finally:
        oms.close()


def test_goods_of_a_lot_tracked_product_name_their_lot(oms: OMS) -> None:
    _lotted(oms)
    with pytest.raises(StockError, match="kept in lots: name the lot"), oms.db.session() as s:
        post(s, Movement.ADJUSTMENT, "WH-SH", "FISH-1", 2, document="adj", at=T0)
    with pytest.raises(ImportRefused, match="give each row its lot"):
        oms.openings.import_rows([Row("t:nolot", {"warehouse": "WH-GZ", "sku": "FISH-1", "quantity": 3})],
                                 actor="t", source="t")
    assert parse_line("FISH-1:20:11.50@L-NEW/2027-05-01") == LineIn("FISH-1", 20, "11.50", "L-NEW",
                                                                     (T0.replace(year=2027, month=5, day=1)).date())


def test_a_person_adjusts_counts_and_transfers_a_lot_by_name(oms: OMS) -> None:
    _lotted(oms)
    with pytest.raises(StockError, match="kept in lots: name the lot"):
        oms.stock.post(Movement.ADJUSTMENT, "WH-SH", "FISH-1", -1, document="adj", actor="t", note="thawed")
    oms.stock.post(Movement.ADJUSTMENT, "WH-SH", "FISH-1", -2, document="adj", actor="t", note="thawed", lot="L-MID")
    fresh = (T0 + 300 * DAY).date()
    oms.stock.post(Movement.PURCHASE_RECEIPT, "WH-SH", "FISH-1", 12, document="PO-9", actor="t", lot="L-NEW",
                   expires_on=fresh)
    oms.stock.count("WH-SH", "FISH-1", 4, document="count", actor="t", lot="L-LATE")
    posted = oms.stock.transfer("FISH-1", 3, "WH-SH", "WH-GZ", document="TO-1", actor="t", lot="L-NEW")
    assert (posted.warehouse, posted.on_hand) == ("WH-GZ", 3)
    with oms.db.read() as s:
        assert {(r.warehouse, r.lot): (r.on_hand, r.expires_on) for r in s.scalars(select(StockLot))} == {
            ("WH-SH", "L-SOON"): (5, (T0 + 10 * DAY).date()), ("WH-SH", "L-MID"): (3, (T0 + 60 * DAY).date()),
            ("WH-SH", "L-LATE"): (4, (T0 + 200 * DAY).date()), ("WH-SH", "L-NEW"): (9, fresh),
            ("WH-GZ", "L-NEW"): (3, fresh)}
    assert oms.stock.verify().ok

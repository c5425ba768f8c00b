"""Kits: sold as one line, reserved, split, sent, shipped and returned as their components; the money stays
on the kit line."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, LineIn
from oms_engine.masterdata.files import Row
from oms_engine.orders.kits import component_values
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import drive, drive_until_state, status
from oms_engine.storage.models import OutboxMessage, Reservation, Stock, StockMovement
from tests.support import order_json, payload

GIFT = {"sku": "GIFT-1", "name": "Tea gift box", "currency": "CNY", "price": "149.00", "merchant": "M-01",
        "components": "TEA-1:2;MUG-1:1"}


def _kit(oms: OMS, **extra: object) -> None:
    oms.masterdata.apply("products", [Row("t", {**GIFT, **extra})], actor="t", source="t")


def _stock(oms: OMS, warehouse: str, sku: str) -> tuple[int, int]:
    with oms.db.read() as s:
        row = s.get(Stock, (warehouse, sku))
        return (row.on_hand, row.reserved) if row else (0, 0)


PRICES = {"GIFT-1": 14900, "RARE-KIT": 14900, "TEA-1": 5900, "MUG-1": 3900, "ICE-1": 2900}


def kit_order(external_id: str, lines: list[tuple[str, int]]) -> dict[str, object]:
    """A paid order over the test catalogue and the kits made here (order_json prices the catalogue only)."""
    payable = sum(PRICES[sku] * q for sku, q in lines) + 1000
    return order_json(external_id, lines, payment={"transaction_id": f"PAY-{external_id}",
                                                   "amount": f"{payable // 100}.{payable % 100:02d}"})


def _ingest(oms: OMS, *orders: dict[str, object]) -> list[str]:
    return [r.number for r in oms.intake.ingest("json", payload(*orders)) if r.number]


def test_a_kit_is_reserved_and_sent_as_its_components_and_keeps_its_money(oms: OMS) -> None:
    _kit(oms)
    tea, mug = _stock(oms, "WH-SH", "TEA-1"), _stock(oms, "WH-SH", "MUG-1")
    [number] = _ingest(oms, kit_order("KIT-1", [("GIFT-1", 3)]))
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    with oms.db.read() as s:
        order = get_order(s, number)
        [line] = order.lines
        # The money stays on the kit line; the line keeps the bill as it was sold.
        assert (line.sku, line.quantity, line.goods) == ("GIFT-1", 3, 3 * 14900)
        assert line.components == [{"sku": "TEA-1", "quantity": 2}, {"sku": "MUG-1", "quantity": 1}]
        held = sorted((r.warehouse, r.sku, r.quantity) for r in s.scalars(
            select(Reservation).where(Reservation.order_id == order.id)))
        doc = s.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id,
                                                    OutboxMessage.topic == "wms.create")).one()
    assert held == [("WH-SH", "MUG-1", 3), ("WH-SH", "TEA-1", 6)]
    assert _stock(oms, "WH-SH", "TEA-1") == (tea[0], tea[1] + 6)
    assert _stock(oms, "WH-SH", "MUG-1") == (mug[0], mug[1] + 3)
    assert [(ln["sku"], ln["quantity"], ln.get("kit")) for ln in doc.payload["lines"]] == [
        ("TEA-1", 6, "GIFT-1"), ("MUG-1", 3, "GIFT-1")]
    drive_until_state(oms, number, "shipped")
    # Shipped as components: both leave the shelf.
    assert _stock(oms, "WH-SH", "TEA-1") == (tea[0] - 6, tea[1])
    assert _stock(oms, "WH-SH", "MUG-1") == (mug[0] - 3, mug[1])


def test_a_kit_returned_comes_back_as_its_components(oms: OMS) -> None:
    _kit(oms)
    [number] = _ingest(oms, kit_order("KIT-2", [("GIFT-1", 1)]))
    drive_until_state(oms, number, "delivered")
    tea, mug = _stock(oms, "WH-SH", "TEA-1"), _stock(oms, "WH-SH", "MUG-1")
    doc = oms.documents.create(DocKind.CUSTOMER_RETURN, "WH-SH", [LineIn("GIFT-1", 1)], actor="support",
                               order_number=number, note="box unopened")
    assert [(ln["sku"], ln["quantity"]) for ln in doc["lines"]] == [("TEA-1", 2), ("MUG-1", 1)]
    drive(oms)
    assert _stock(oms, "WH-SH", "TEA-1") == (tea[0] + 2, tea[1])
    assert _stock(oms, "WH-SH", "MUG-1") == (mug[0] + 1, mug[1])
    with oms.db.read() as s:
        back = sorted((m.sku, m.on_hand_delta) for m in s.scalars(
            select(StockMovement).where(StockMovement.kind == "customer_return",
                                        StockMovement.document == doc["number"])))
    assert back == [("MUG-1", 1), ("TEA-1", 2)]


def test_a_kit_that_no_warehouse_can_make_up_waits_for_its_components(oms: OMS) -> None:
    """RARE-1 is one unit in Shanghai only: a kit needing two is held for stock of the component."""
    oms.masterdata.apply("products", [Row("t", {**GIFT, "sku": "RARE-KIT", "components": "RARE-1:2"})],
                         actor="t", source="t")
    [number] = _ingest(oms, kit_order("KIT-3", [("RARE-KIT", 1)]))
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        order = get_order(s, number)
        assert order.status == "on_hold" and "RARE-1" in (order.hold_reason or "")


def test_a_kit_line_splits_with_its_components(oms: OMS) -> None:
    """Cold-chain goods travel apart: a kit and an ice line make two children, each holding its own units."""
    _kit(oms)
    [number] = _ingest(oms, kit_order("KIT-4", [("GIFT-1", 2), ("ICE-1", 1)]))
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        parent = get_order(s, number)
        assert parent.status == "split"
        kids = {c.lines[0].sku: c for c in parent.children}
        held = sorted((r.sku, r.quantity) for r in s.scalars(
            select(Reservation).where(Reservation.order_id == kids["GIFT-1"].id)))
        assert kids["GIFT-1"].lines[0].components == [{"sku": "TEA-1", "quantity": 2}, {"sku": "MUG-1", "quantity": 1}]
    assert held == [("MUG-1", 2), ("TEA-1", 4)]


def test_a_kit_with_a_missing_component_is_refused_at_import(oms: OMS) -> None:
    import pytest

    from oms_engine.masterdata.service import ImportRefused
    with pytest.raises(ImportRefused, match="no product 'NOPE-1'"):
        oms.masterdata.apply("products", [Row("t", {**GIFT, "components": "TEA-1:1;NOPE-1:1"})], actor="t",
                             source="t")
    with pytest.raises(ImportRefused, match="is a kit itself"):
        _kit(oms)
        oms.masterdata.apply("products", [Row("t", {**GIFT, "sku": "BIG-KIT", "components": "GIFT-1:2"})],
                             actor="t", source="t")


def test_component_values_share_the_kit_line_to_the_cent() -> None:
    line = SimpleNamespace(sku="GIFT-1", quantity=3, goods=44700, discount=1001,
                           components=[{"sku": "TEA-1", "quantity": 2}, {"sku": "MUG-1", "quantity": 1}])
    parts = component_values(line, {"TEA-1": 5900, "MUG-1": 3900})
    assert [(sku, q) for sku, q, _ in parts] == [("TEA-1", 6), ("MUG-1", 3)]
    assert sum(v for _, _, v in parts) == 44700 - 1001
    # TEA-1 weighs 6 x 59.00 against 3 x 39.00
    assert parts[0][2] > parts[1][2] * 2

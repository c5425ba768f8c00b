"""Every stock ledger row is a ``stock.movement`` event, whoever writes it: not only the stock ledger's verbs, but the
stock batch's own rows (reservations, their release, sale-outs), openings and reconciliation adjustments posted
through the batch directly, and damaged stock; one event per row, in the transaction that wrote it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from oms_engine.masterdata.files import Row
from oms_engine.plugin.testing import T0, drive, status
from oms_engine.stock import damaged
from oms_engine.stock.movements import EFFECTS, Movement, deltas
from oms_engine.storage.models import StockMovement
from tests.support import build_oms, order_json, payload

from .support import Broker, assert_in_order_per_order, deduplicated, event_rows, events_config, expected, told


def moves(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "stock.movement"]


def assert_quantities_as_posted(events: list[dict[str, Any]]) -> None:
    """Each movement's deltas are what its kind does with its quantity (movements.py)."""
    for e in moves(events):
        d = e["data"]
        kind = Movement(d["kind"])
        assert (d["on_hand_delta"], d["reserved_delta"], d["damaged_delta"]) == (
            *deltas(kind, d["quantity"]), EFFECTS[kind].damaged * d["quantity"]), e


def test_reservations_their_release_and_sale_outs_are_told_in_their_orders_queue(tmp_path: Path, db_url: str,
                                                                                  broker: Broker) -> None:
    oms = build_oms(tmp_path, db_url, **events_config(broker.exchange))
    try:
        results = oms.intake.ingest("json", payload(order_json("SM-1", [("TEA-1", 2)]),
                                                    order_json("SM-2", [("MUG-1", 1)])))
        shipped, cancelled = (r.number for r in results)
        oms.commands.cancel(cancelled, actor="ops:test", reason="changed their mind")
        drive(oms)
        assert (status(oms, shipped), status(oms, cancelled)) == ("closed", "cancelled")

        events, times = deduplicated(broker.take())
        rows = event_rows(oms)
        assert set(times.values()) == {1} and {r.status for r in rows} == {"sent"}
        assert sorted(e["sequence"] for e in events) == [r.id for r in rows]
        # Every ledger row of the database is one event (the test world's openings too), and no other.
        assert told(events) == expected(oms)
        with oms.db.read() as s:
            assert len(moves(events)) == len(s.scalars(select(StockMovement.id)).all())
        assert_quantities_as_posted(events)

        def life(number: str) -> list[tuple[Any, ...]]:
            """The order's transitions and stock movements, as they arrived."""
            return [(d["event"],) if e["type"] == "order.transition" else (d["kind"], d["sku"], d["quantity"])
                    for e in events if e["key"] == number and e["type"] in ("order.transition", "stock.movement")
                    for d in [e["data"]]]

        # In the order's own queue, each after the transition that caused it.
        assert [m for m in life(shipped) if len(m) > 1] == [("reserve", "TEA-1", 2), ("sale_out", "TEA-1", 2)]
        assert life(shipped)[:2] == [("create",), ("reserve", "TEA-1", 2)]
        assert life(shipped)[life(shipped).index(("ship",)) + 1] == ("sale_out", "TEA-1", 2)
        assert [m for m in life(cancelled) if len(m) > 1] == [("reserve", "MUG-1", 1), ("release", "MUG-1", 1)]
        assert life(cancelled)[-2:] == [("cancel",), ("release", "MUG-1", 1)]
        assert all(e["data"]["order_number"] == e["key"] for e in moves(events) if e["data"]["kind"] != "opening")
        assert_in_order_per_order(events)
    finally:
        oms.close()


def test_openings_reconciliation_adjustments_and_damaged_stock_are_told_by_their_document(
        tmp_path: Path, db_url: str, broker: Broker) -> None:
    oms = build_oms(tmp_path, db_url, **events_config(broker.exchange))    # seeds the test world's openings
    try:
        with oms.db.session() as s:
            damaged.post(s, Movement.RETURN_DAMAGED, "WH-SH", "MUG-1", 3, document="RMA-1", at=T0, actor="t")
        oms.stock.clear_damaged(Movement.SCRAP, "WH-SH", "MUG-1", 1, document="SC-1", actor="t", note="broken")
        oms.stock.clear_damaged(Movement.REGRADE, "WH-SH", "MUG-1", 2, document="RG-1", actor="t", note="mended")
        result = oms.reconciler.run([Row("snap:2", {"warehouse": "WH-GZ", "sku": "PEN-1", "quantity": 97})],
                                    source="snap.csv", partial=True, post=True, actor="t")
        assert [(d.to_post, d.posted) for d in result.differences] == [(-3, True)]
        oms.pipeline.run_until_idle()

        events, times = deduplicated(broker.take())
        assert set(times.values()) == {1} and len(events) == len(event_rows(oms))
        assert told(events) == expected(oms)
        assert_quantities_as_posted(events)
        with oms.db.read() as s:
            openings = s.scalars(select(StockMovement.document).where(StockMovement.kind == "opening")).all()
            adjusted = s.scalar(select(StockMovement.document).where(StockMovement.kind == "adjustment"))
        told_openings = [e for e in events if e["data"]["kind"] == "opening"]
        assert openings and sorted(e["key"] for e in told_openings) == sorted(openings)
        rest = [(e["key"], d["kind"], d["warehouse"], d["sku"], d["quantity"], d["on_hand_delta"], d["damaged_delta"])
                for e in sorted(events, key=lambda e: e["sequence"]) for d in [e["data"]] if d["kind"] != "opening"]
        # One event per row: the regrade (posted through the ledger's verb, damaged.py) once, not twice.
        assert rest == [("RMA-1", "return_damaged", "WH-SH", "MUG-1", 3, 0, 3),
                        ("SC-1", "scrap", "WH-SH", "MUG-1", 1, 0, -1),
                        ("RG-1", "regrade", "WH-SH", "MUG-1", 2, 2, -2),
                        (adjusted, "adjustment", "WH-GZ", "PEN-1", -3, -3, 0)]
        assert all(e["data"]["order_number"] is None for e in events)
    finally:
        oms.close()

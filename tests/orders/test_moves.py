"""Moving an order to another warehouse: by a person (before and while picking) and on a warehouse's shortage."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.orders.moves import MoveRefused
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import drive, drive_until_state, show_order, status
from oms_engine.storage.models import OutboxMessage, Reservation, Stock, StockMovement
from tests.support import order_json, payload


def _one(oms: OMS, external_id: str, lines: list[tuple[str, int]] | None = None) -> str:
    [result] = oms.intake.ingest("json", payload(order_json(external_id, lines)))
    assert result.number
    return result.number


def _held(oms: OMS, number: str) -> list[tuple[str, str, int]]:
    with oms.db.read() as s:
        oid = get_order(s, number).id
        return sorted((r.warehouse, r.sku, r.quantity) for r in s.scalars(
            select(Reservation).where(Reservation.order_id == oid)))


def _sent(oms: OMS, number: str) -> list[tuple[str, str]]:
    with oms.db.read() as s:
        return [(m.topic, m.payload.get("warehouse")) for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.order_number == number, OutboxMessage.kind == "connector")
            .order_by(OutboxMessage.id)) if m.topic.startswith("wms.")]


def _moves(oms: OMS, number: str) -> list[dict[str, object]]:
    return [d["outcome"] for d in show_order(oms, number)["decisions"] if d["point"] == "move"]


def test_a_dispatched_order_moves_and_the_first_warehouse_is_told(quiet: OMS) -> None:
    oms = quiet
    number = _one(oms, "MV-1")
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched" and _held(oms, number) == [("WH-SH", "TEA-1", 2)]
    outcome = oms.commands.move(number, "WH-BJ", actor="support:li", reason="Shanghai flooded")
    assert "moved from WH-SH to WH-BJ" in outcome
    assert _held(oms, number) == [("WH-BJ", "TEA-1", 2)]
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    assert _sent(oms, number) == [("wms.create", "WH-SH"), ("wms.cancel", "WH-SH"), ("wms.create", "WH-BJ")]
    [move] = _moves(oms, number)
    assert (move["from"], move["to"], move["by"], move["result"]) == ("WH-SH", "WH-BJ", "support:li", "moved")
    drive_until_state(oms, number, "delivered")
    with oms.db.read() as s:
        assert get_order(s, number).warehouse == "WH-BJ"   # where it finally shipped from
        out = s.scalars(select(StockMovement.warehouse).where(StockMovement.kind == "sale_out")).all()
    assert out == ["WH-BJ"]


def test_a_move_while_picking_stops_it_first_then_moves_it(quiet: OMS) -> None:
    oms = quiet
    number = _one(oms, "MV-2")
    drive_until_state(oms, number, "picking")
    outcome = oms.commands.move(number, "WH-GZ", actor="support:li", reason="closer to the customer")
    assert "asked to stop" in outcome
    assert status(oms, number) == "intercept_requested"
    assert _held(oms, number) == [("WH-SH", "TEA-1", 2)]   # nothing moves before Shanghai has stopped it
    drive_until_state(oms, number, "dispatched")
    assert _held(oms, number) == [("WH-GZ", "TEA-1", 2)]
    story = show_order(oms, number)
    events = [h["event"] for h in story["history"]]
    assert events[-3:] == ["intercept", "move", "dispatch"]
    assert [m["result"] for m in _moves(oms, number)] == ["asked", "moved"]
    assert ("wms.intercept", "WH-SH") in _sent(oms, number) and _sent(oms, number)[-1] == ("wms.create", "WH-GZ")
    drive_until_state(oms, number, "delivered")


def test_a_move_the_warehouse_cannot_take_changes_nothing(quiet: OMS) -> None:
    oms = quiet
    number = _one(oms, "MV-3", [("RARE-1", 1)])
    oms.pipeline.run_until_idle()
    with pytest.raises(MoveRefused, match="WH-BJ cannot take"):
        oms.commands.move(number, "WH-BJ", actor="support:li")
    ice = _one(oms, "MV-4", [("ICE-1", 1)])
    oms.pipeline.run_until_idle()
    with pytest.raises(MoveRefused, match="not equipped for cold_chain"):
        oms.commands.move(ice, "WH-BJ", actor="support:li")
    assert _held(oms, number) == [("WH-SH", "RARE-1", 1)] and status(oms, number) == "dispatched"
    assert _moves(oms, number) == []


def test_a_shortage_reroutes_the_order_and_writes_the_missing_units_off(quiet: OMS) -> None:
    oms = quiet
    number = _one(oms, "MV-5")
    drive_until_state(oms, number, "accepted")
    with oms.db.read() as s:
        before = s.get(Stock, ("WH-SH", "TEA-1")).on_hand
    with oms.db.session() as s:
        oms.callbacks.receive(s, "sim_wms", {"order_number": number, "status": "SHORTAGE", "note": "bin empty",
                                             "lines": [{"sku": "TEA-1", "quantity": 2}]})
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    [(warehouse, _, _)] = _held(oms, number)
    assert warehouse != "WH-SH"
    with oms.db.read() as s:
        assert s.get(Stock, ("WH-SH", "TEA-1")).on_hand == before - 2
        [adj] = s.scalars(select(StockMovement).where(StockMovement.kind == "adjustment")).all()
    assert (adj.warehouse, adj.sku, adj.on_hand_delta) == ("WH-SH", "TEA-1", -2)
    [move] = _moves(oms, number)
    assert move["result"] == "routed again" and "bin empty" in move["why"]
    assert ("wms.cancel", "WH-SH") in _sent(oms, number)


def test_a_shortage_no_other_warehouse_covers_holds_the_order(quiet: OMS) -> None:
    oms = quiet
    number = _one(oms, "MV-6", [("RARE-1", 1)])
    drive_until_state(oms, number, "accepted")
    with oms.db.session() as s:
        oms.callbacks.receive(s, "sim_wms", {"order_number": number, "status": "SHORTAGE",
                                             "lines": [{"sku": "RARE-1", "quantity": 1}]})
    drive(oms)
    with oms.db.read() as s:
        order = get_order(s, number)
        assert (order.status, order.hold_stage) == ("on_hold", "routing")
    assert _held(oms, number) == []

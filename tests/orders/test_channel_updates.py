"""A channel's changed word about an order it sent before becomes an update the OMS answers, never dropped."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.orders.explain import explain
from oms_engine.storage.models import Incident, Order, OrderUpdate, OutboxMessage
from tests.support import order_json, payload
from tests.support.web import status_of


def _send(oms: OMS, o: dict[str, Any]) -> Any:
    [res] = oms.intake.ingest("json", payload(o))
    assert res.error is None, res.error
    return res


def _changed(o: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out = copy.deepcopy(o)
    out.update(fields)
    return out


def _updates(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.session() as s:
        return explain(s, number)["updates"]


def test_an_order_cancelled_at_the_channel_is_cancelled_here_and_the_resend_is_then_a_duplicate(oms: OMS) -> None:
    o = order_json("UPD-1")
    first = _send(oms, o)
    cancelled = _changed(o, cancelled=True, channel_status="cancelled")
    res = _send(oms, cancelled)
    assert res.duplicate and res.update is not None and res.number == first.number
    assert res.status == "cancelled" and "cancelled: order cancelled" in (res.message or "")
    assert status_of(oms, first.number) == "cancelled"
    [upd] = _updates(oms, first.number)
    assert upd["status"] == "done"
    assert [(c["kind"], c["outcome"]) for c in upd["changes"]] == [
        ("cancelled", "order cancelled"), ("channel_status", "recorded")]
    again = _send(oms, cancelled)
    assert again.duplicate and again.update is None and not again.content_differs
    assert len(_updates(oms, first.number)) == 1


def test_an_order_paid_at_the_channel_after_it_was_sent_unpaid_goes_on(oms: OMS) -> None:
    unpaid = order_json("UPD-2", paid=False)
    first = _send(oms, unpaid)
    assert first.status == "pending_payment"
    paid = order_json("UPD-2")       # the same order, now with its payment
    res = _send(oms, paid)
    assert res.status == "paid", res.message
    [upd] = _updates(oms, first.number)
    assert [c["kind"] for c in upd["changes"]] == ["paid"]
    assert upd["changes"][0]["outcome"] == "payment PAY-UPD-2 recorded; order paid"


def test_a_new_address_is_taken_before_the_warehouse_has_the_order_and_asked_of_the_warehouse_after(
        oms: OMS) -> None:
    before = order_json("UPD-3", paid=False)
    first = _send(oms, before)
    moved = copy.deepcopy(before)
    moved["ship_to"]["line1"] = "88 Nanjing Road"
    _send(oms, moved)
    with oms.db.session() as s:
        assert s.scalar(select(Order.ship_to).where(Order.number == first.number))["line1"] == "88 Nanjing Road"
    dispatched = order_json("UPD-4")
    number = _send(oms, dispatched).number
    oms.pipeline.run_until_idle()
    assert status_of(oms, number) == "dispatched"
    late = copy.deepcopy(dispatched)
    late["ship_to"]["line1"] = "1 Elsewhere Street"
    res = _send(oms, late)
    assert "ship_to: asked of WH-SH (address request " in (res.message or "")
    with oms.db.session() as s:
        # The warehouse holds it: the order keeps its address until the warehouse answers (tests/fulfilment/
        # test_address_requests.py follows the answer), and nothing is left for a person meanwhile.
        order = s.scalar(select(Order).where(Order.number == number))
        assert order is not None and order.ship_to["line1"] == "1 Century Avenue"
        [asked] = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "wms.readdress"))
        assert (asked.order_number, asked.payload["ship_to"]["line1"]) == (number, "1 Elsewhere Street")
        assert s.scalars(select(Incident).where(Incident.order_id == order.id)).all() == []
    [upd] = _updates(oms, number)
    assert upd["changes"][0]["kind"] == "ship_to" and upd["changes"][0]["outcome"].startswith("asked of WH-SH")


def test_changed_lines_are_refused_for_a_person_and_nothing_is_reshaped(oms: OMS) -> None:
    o = order_json("UPD-5", [("TEA-1", 2), ("TEA-2", 1)], paid=False)
    first = _send(oms, o)
    fewer = copy.deepcopy(o)
    fewer["lines"] = [{"sku": "TEA-1", "quantity": 1}, {"sku": "TEA-2", "quantity": 1}]
    res = _send(oms, fewer)
    assert "lines: refused: the channel changed the lines" in (res.message or "")
    with oms.db.session() as s:
        order = s.scalar(select(Order).where(Order.number == first.number))
        assert order is not None and [(ln.sku, ln.quantity) for ln in order.lines] == [("TEA-1", 2), ("TEA-2", 1)]


def test_an_order_that_arrives_cancelled_is_stored_then_cancelled_not_dropped(oms: OMS) -> None:
    res = _send(oms, order_json("UPD-6", cancelled=True, refunded="0.00"))
    assert res.number and not res.duplicate and res.status == "cancelled"
    [upd] = _updates(oms, res.number)
    assert upd["changes"][0]["kind"] == "cancelled"


def test_a_refund_at_the_channel_is_recorded_for_a_person(oms: OMS) -> None:
    o = order_json("UPD-7")
    number = _send(oms, o).number
    oms.pipeline.run_until_idle()
    res = _send(oms, _changed(o, refunded="10.00"))
    assert "refunded: recorded: the channel paid the customer back" in (res.message or "")
    with oms.db.session() as s:
        order_id = s.scalar(select(Order.id).where(Order.number == number))
        assert s.scalar(select(func.count()).select_from(Incident)
                        .where(Incident.order_id == order_id, Incident.stage == "channel update")) == 1


def test_an_update_left_pending_by_a_stopped_intake_is_applied_once_by_the_next_pass(oms: OMS) -> None:
    o = order_json("UPD-8", paid=False)
    number = _send(oms, o).number
    updates, oms.intake.updates = oms.intake.updates, None     # intake stopped before applying
    res = _send(oms, _changed(o, cancelled=True))
    assert res.update is not None and res.status == "pending_payment"
    oms.intake.updates = updates
    assert oms.updates.apply_pending() == {res.update: "cancelled: order cancelled"}
    assert oms.updates.apply_pending() == {}
    assert status_of(oms, number) == "cancelled"
    with oms.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OrderUpdate).where(OrderUpdate.status == "pending")) == 0

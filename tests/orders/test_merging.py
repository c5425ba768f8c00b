"""Merging: orders of one customer to one address ship as one document and one parcel, each keeping its own
identity, lines, money and story; one of them cancelled or stopped leaves the parcel alone."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import drive, drive_until_state, show_order, status
from oms_engine.storage.models import MergeGroup, Order, OutboxMessage, Stock
from tests.support import NO_REFUSALS, build_oms, order_json, payload


def _ingest(oms: OMS, *orders: dict[str, Any]) -> list[str]:
    numbers = [r.number for r in oms.intake.ingest("json", payload(*orders))]
    assert all(numbers)
    return numbers  # type: ignore[return-value]


def _documents(oms: OMS, topic: str = "wms.create") -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return [{"number": m.order_number, "status": m.status, **m.payload} for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id))]


def _merges(oms: OMS, number: str) -> list[dict[str, Any]]:
    return [d["outcome"] for d in show_order(oms, number)["decisions"] if d["point"] == "merging"]


def test_two_orders_to_one_address_go_as_one_document_and_keep_their_own_story(quiet: OMS) -> None:
    oms = quiet
    a, b = _ingest(oms, order_json("M-1", [("TEA-1", 1)], flat="7"), order_json("M-2", [("MUG-1", 2)], flat="7"))
    oms.pipeline.run_until_idle()
    assert status(oms, a) == status(oms, b) == "dispatched"
    [doc] = _documents(oms)
    assert doc["number"] == f"{a}-M1" and doc["orders"] == [a, b]
    assert [(ln["order_number"], ln["sku"], ln["quantity"]) for ln in doc["lines"]] == [(a, "TEA-1", 1),
                                                                                       (b, "MUG-1", 2)]
    assert _merges(oms, a)[-1]["orders"] == [a, b] and "ships as one parcel" in _merges(oms, b)[-1]["why"]
    # Same courier for the parcel; every order keeps its own money.
    with oms.db.read() as s:
        oa, ob = get_order(s, a), get_order(s, b)
        assert (oa.carrier, oa.merge_group_id) == (ob.carrier, ob.merge_group_id)
        assert (oa.payable, ob.payable) == (5900 + 1000, 2 * 3900 + 1000)
    # The warehouse and the carrier speak of the parcel; both orders are delivered by it.
    drive_until_state(oms, b, "delivered")
    assert status(oms, a) == "delivered"
    registered = _documents(oms, "carrier.register")
    assert [r["orders"] for r in registered] == [[a, b]]


def test_orders_to_different_addresses_or_paid_by_cash_on_delivery_ship_alone(quiet: OMS) -> None:
    oms = quiet
    cod = order_json("M-4", [("TEA-1", 1)], flat="9")
    cod["payment"]["method"] = "cod"
    numbers = _ingest(oms, order_json("M-3", [("TEA-1", 1)], flat="8"), order_json("M-3B", [("TEA-1", 1)], flat="9"),
                      cod)
    oms.pipeline.run_until_idle()
    assert {d["number"] for d in _documents(oms)} == set(numbers)
    assert _merges(oms, numbers[2])[0] == {"merged": False, "why": "cash on delivery is collected order by order"}


def test_a_merged_order_cancelled_alone_leaves_the_parcel_and_the_rest_goes_on(quiet: OMS) -> None:
    oms = quiet
    a, b, c = _ingest(oms, *(order_json(f"M-{n}", [("TEA-1", 1)], flat="5") for n in (5, 6, 7)))
    drive_until_state(oms, a, "accepted")
    with oms.db.read() as s:
        tea = s.get(Stock, ("WH-SH", "TEA-1"))
        held_before = tea.reserved
    oms.commands.cancel(b, actor="customer", reason="changed my mind")
    assert status(oms, b) == "cancelled"
    with oms.db.read() as s:
        cancelled = get_order(s, b)
        assert cancelled.refund_amount == cancelled.payable and cancelled.merge_group_id is None
        assert s.get(Stock, ("WH-SH", "TEA-1")).reserved == held_before - 1
    [cancel] = _documents(oms, "wms.cancel")
    assert cancel["number"] == f"{a}-M1" and cancel["orders"] == [b, a, c]
    again = [d for d in _documents(oms) if d.get("replaces")]
    assert [(d["number"], d["orders"], d["replaces"]) for d in again] == [(f"{a}-M2", [a, c], f"{a}-M1")]
    drive(oms)
    assert (status(oms, a), status(oms, b), status(oms, c)) == ("closed", "cancelled", "closed")
    with oms.db.read() as s:
        group = s.scalars(select(MergeGroup)).one()
        assert (group.number, group.version) == (f"{a}-M2", 2)


def test_a_merged_order_stopped_while_picking_comes_out_of_the_parcel(quiet: OMS) -> None:
    oms = quiet
    a, b = _ingest(oms, order_json("M-8", [("TEA-1", 1)], flat="3"), order_json("M-9", [("MUG-1", 1)], flat="3"))
    drive_until_state(oms, a, "picking")
    oms.commands.cancel(b, actor="customer", reason="stop it please")
    assert status(oms, b) == "intercept_requested"
    [ask] = _documents(oms, "wms.intercept")
    assert (ask["order_number"], ask["document"]) == (b, f"{a}-M1")
    assert [(ln["sku"], ln["quantity"]) for ln in ask["lines"]] == [("MUG-1", 1)]
    drive_until_state(oms, a, "delivered")
    assert status(oms, b) == "cancelled"
    with oms.db.read() as s:
        assert get_order(s, b).merge_group_id is None


# -- property: merging never changes any order's money or lines -------------------------------
_MONEY = ("goods", "freight", "tax", "coupon", "gift_card", "points", "payable", "paid_amount")
_SKUS = ("TEA-1", "MUG-1", "PEN-1", "TV-1")


def _picture(oms: OMS) -> dict[str, Any]:
    with oms.db.read() as s:
        out = {}
        for o in s.scalars(select(Order).where(Order.parent_id.is_(None)).order_by(Order.id)):
            out[o.external_id] = ({k: getattr(o, k) for k in _MONEY},
                                  [(ln.sku, ln.quantity, ln.unit_price, ln.goods, ln.discount) for ln in o.lines])
        return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["1", "2"]),
                          st.lists(st.tuples(st.sampled_from(_SKUS), st.integers(1, 3)), min_size=1, max_size=3,
                                   unique_by=lambda x: x[0]),
                          st.sampled_from(["0.00", "5.00"])), min_size=2, max_size=5))
def test_merging_never_changes_any_orders_money_or_lines(orders: list[tuple[str, list[tuple[str, int]], str]]
                                                         ) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        oms = build_oms(Path(tmp), f"sqlite:///{tmp}/oms.db", plugin_settings=NO_REFUSALS)
        try:
            _ingest(oms, *(order_json(f"P-{i}", lines, flat=flat, coupon=coupon)
                           for i, (flat, lines, coupon) in enumerate(orders)))
            before = _picture(oms)
            drive(oms)
            assert _picture(oms) == before
            # Every line of every order shipped is in exactly one document that went to the warehouse (an order
            # the stock cannot cover waits on hold).
            sent = Counter((ln["order_number"], ln["order_line"]) for d in _documents(oms)
                           if d["status"] == "sent" for ln in d["lines"])
            with oms.db.read() as s:
                wanted = Counter((o.number, ln.line_no) for o in s.scalars(select(Order))
                                 if not o.children and o.status != "on_hold" for ln in o.lines)
            assert sent == wanted
        finally:
            oms.close()

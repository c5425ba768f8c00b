"""Backorders: an order held for missing stock or an unmapped SKU goes on by itself, oldest paid first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.orders.flow import HoldStage
from oms_engine.orders.machine import Event
from oms_engine.orders.queries import get_order
from oms_engine.orders.waits import Wait, record_waits
from oms_engine.plugin.testing import OrderBuilder, ingest_one, status
from oms_engine.stock.movements import Movement
from oms_engine.storage.models import OrderWait
from tests.support.pipeline import history, reservations


def _waits(oms: OMS, number: str) -> list[tuple[str, str, bool]]:
    with oms.db.read() as s:
        oid = get_order(s, number).id
        return [(w.kind, w.key, w.ready) for w in s.scalars(select(OrderWait).where(OrderWait.order_id == oid)
                                                             .order_by(OrderWait.kind, OrderWait.key))]


def _receive(oms: OMS, warehouse: str, sku: str, qty: int, document: str = "PO-1") -> None:
    oms.stock.post(Movement.PURCHASE_RECEIPT, warehouse, sku, qty, document=document, actor="wms:test")


def test_a_purchase_receipt_releases_the_order_it_covers_without_anyone_acting(oms: OMS) -> None:
    held = ingest_one(oms, OrderBuilder("BO-1").line("RARE-1", 3).build())
    assert held.status == "on_hold"
    assert reservations(oms, held.number) == [("WH-SH", "RARE-1", 1)]    # the one unit there is kept
    assert _waits(oms, held.number) == [("stock", "RARE-1", False)]
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) == "on_hold"                         # nothing came in: nothing happens

    _receive(oms, "WH-GZ", "RARE-1", 1)                                  # not enough yet
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) == "on_hold"
    assert sorted(reservations(oms, held.number)) == [("WH-GZ", "RARE-1", 1), ("WH-SH", "RARE-1", 1)]
    assert _waits(oms, held.number) == [("stock", "RARE-1", False)]

    _receive(oms, "WH-SH", "RARE-1", 5, "PO-2")
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) == "dispatched"
    release = [h for h in history(oms, held.number) if h.event == "release"]
    assert [(h.actor, h.to_state) for h in release] == [("oms:backorders", "paid")]
    assert "every unit reserved" in release[0].cause
    assert _waits(oms, held.number) == []
    assert oms.stock.verify().ok


def test_stock_that_comes_in_serves_the_order_paid_first(oms: OMS) -> None:
    # Both want 2 RARE-1; the one unit there goes to the first. B is paid before A.
    a = ingest_one(oms, OrderBuilder("BO-A").line("RARE-1", 2).unpaid().build())
    b = ingest_one(oms, OrderBuilder("BO-B").line("RARE-1", 2).build())
    assert status(oms, a.number) == status(oms, b.number) == "on_hold"
    oms.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    oms.commands.pay(a.number, 2 * 9900 + 1000, "PAY-A-LATE", actor="payment")   # A is paid after B
    _receive(oms, "WH-GZ", "RARE-1", 2)    # enough for one of them
    oms.pipeline.run_until_idle()
    assert status(oms, b.number) != "on_hold", "B was paid first"
    assert status(oms, a.number) == "on_hold"
    # A got nothing yet from the receipt (B took both units), and still waits.
    assert reservations(oms, a.number) == [("WH-SH", "RARE-1", 1)]
    _receive(oms, "WH-BJ", "RARE-1", 1, "PO-2")
    oms.pipeline.run_until_idle()
    assert status(oms, a.number) != "on_hold"


def test_an_unmapped_sku_goes_on_once_it_is_mapped_then_waits_for_stock(oms: OMS) -> None:
    held = ingest_one(oms, OrderBuilder("BO-MAP").line("SHOP-RARE", 4, unit_price=9900).build())
    assert status(oms, held.number) == "on_hold"
    assert _waits(oms, held.number) == [("sku", "SHOP-RARE", False)]
    oms.masterdata.apply("skus", [Row("t", {"channel": "json", "channel_sku": "SHOP-RARE", "sku": "RARE-1"})],
                         actor="catalogue:kim", source="t")
    oms.pipeline.run_until_idle()
    # mapped now, but 1 of 4 in stock: it waits for stock instead, with the reason to match
    assert status(oms, held.number) == "on_hold"
    assert _waits(oms, held.number) == [("stock", "RARE-1", False)]
    with oms.db.read() as s:
        order = get_order(s, held.number)
        assert order.hold_reason == "insufficient stock for SKU 'RARE-1'"
        assert [(ln.sku, ln.mapped) for ln in order.lines] == [("RARE-1", True)]
    _receive(oms, "WH-SH", "RARE-1", 3)
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) != "on_hold"


def test_a_reason_a_person_must_judge_is_never_released_by_stock(oms: OMS) -> None:
    order = OrderBuilder("BO-TOTAL").line("RARE-1", 3).with_(declared_total="1.00").build()
    held = ingest_one(oms, order)
    assert status(oms, held.number) == "on_hold" and _waits(oms, held.number) == []
    _receive(oms, "WH-SH", "RARE-1", 10)
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) == "on_hold"


def test_a_routing_hold_is_released_once_a_warehouse_can_ship_it_whole(oms: OMS) -> None:
    # 22 mugs: 20 held at WH-SH and 2 at WH-BJ, no warehouse has them all.
    r = ingest_one(oms, OrderBuilder("BO-ROUTE").line("MUG-1", 22).unpaid().build())
    assert sorted(reservations(oms, r.number)) == [("WH-BJ", "MUG-1", 2), ("WH-SH", "MUG-1", 20)]
    # Held for routing as the route stage holds an order no warehouse can take whole (stock moved away
    # between split and route, say), with what it then waits for.
    with oms.db.session() as s:
        order = get_order(s, r.number, lock=True)
        order.status, order.paid_amount, order.payment_txn = "paid", order.payable, "PAY-BO-ROUTE"
        order.hold_reason, order.hold_stage = "no warehouse can ship the whole order", HoldStage.ROUTING.value
        oms.machine.fire(s, order, Event.HOLD, actor="rules:routing", cause=order.hold_reason)
        record_waits(s, order.id, [(Wait.STOCK, "MUG-1")], oms.clock.now())
    oms.pipeline.run_until_idle()
    assert status(oms, r.number) == "on_hold"
    _receive(oms, "WH-GZ", "MUG-1", 5)      # WH-GZ has 5 now: not 22
    oms.pipeline.run_until_idle()
    assert status(oms, r.number) == "on_hold" and _waits(oms, r.number) == [("stock", "MUG-1", False)]
    _receive(oms, "WH-SH", "MUG-1", 2, "PO-2")   # 20 held there + 2 in: WH-SH can ship it whole
    oms.pipeline.run_until_idle()
    [release] = [h for h in history(oms, r.number) if h.event == "release"]
    assert (release.actor, release.cause) == ("oms:backorders", "released: WH-SH can ship the whole order now")
    assert status(oms, r.number) == "dispatched"
    assert {(w, sku) for w, sku, _ in reservations(oms, r.number)} == {("WH-SH", "MUG-1")}
    assert sum(q for _, _, q in reservations(oms, r.number)) == 22


def test_a_recheck_that_fails_unexpectedly_parks_the_order_once(sqlite_oms: OMS,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    held = ingest_one(sqlite_oms, OrderBuilder("BO-BUG").line("RARE-1", 3).build())
    import oms_engine.pipeline.backorders as stage

    def bug(*_: object, **__: object) -> list[object]:
        raise KeyError("a bug met the order")

    monkeypatch.setattr(stage, "recheck_intake", bug)
    _receive(sqlite_oms, "WH-SH", "RARE-1", 5)
    done = sqlite_oms.pipeline.run_until_idle(max_passes=20)   # idle again: not claimed pass after pass
    assert done.get("set aside") == 1 and sqlite_oms.pipeline.faults == 1
    assert status(sqlite_oms, held.number) == "on_hold" and _waits(sqlite_oms, held.number) == []

"""Finance's day: the closing stock of a day, valued, worked out exactly whenever it is taken, and the day's
movements exported with what each moved in value."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from oms_engine.engine import OMS
from oms_engine.stock.closing import totals
from oms_engine.stock.movements import Movement
from tests.support import T0


def _post(oms: OMS, kind: Movement, warehouse: str, sku: str, qty: int, cost: str | None = None) -> None:
    oms.stock.post(kind, warehouse, sku, qty, document="DOC", actor="finance:test", note="n", unit_cost=cost)


def test_a_closing_is_the_days_close_whenever_it_is_taken(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    day = T0.date()
    _post(oms, Movement.PURCHASE_RECEIPT, "WH-GZ", "PEN-1", 20, "2.50")        # 100 at no cost + 20 at 2.50
    _post(oms, Movement.RETURN_TO_VENDOR, "WH-GZ", "PEN-1", 60)                 # half of the 120 leave
    oms.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    _post(oms, Movement.PURCHASE_RECEIPT, "WH-GZ", "PEN-1", 40, "3.00")         # the next day
    _post(oms, Movement.ADJUSTMENT, "WH-SH", "TEA-1", -5)
    rows = {(r["warehouse"], r["sku"]): r for r in oms.closings.close(day)}
    assert rows[("WH-GZ", "PEN-1")] == {"warehouse": "WH-GZ", "sku": "PEN-1", "on_hand": 60, "reserved": 0,
                                        "value": 2500}
    assert rows[("WH-SH", "TEA-1")]["on_hand"] == 50
    assert oms.closings.stored(day)[0]["taken_at"]
    assert totals(rows.values())["WH-GZ"]["value"] == 2500
    with pytest.raises(ValueError, match="not over yet"):
        oms.closings.close(oms.clock.now().date())
    # the worker's due closing: yesterday, once
    oms.closings.close_due()
    assert {r["sku"] for r in oms.closings.stored(day)} == {sku for _, sku in rows}


def test_the_days_movements_export_with_their_value(sqlite_oms: OMS) -> None:
    oms = sqlite_oms
    _post(oms, Movement.PURCHASE_RECEIPT, "WH-GZ", "PEN-1", 20, "2.50")
    _post(oms, Movement.RETURN_TO_VENDOR, "WH-GZ", "PEN-1", 60)
    text = oms.closings.movements_csv(T0.date())
    rows = list(csv.DictReader(io.StringIO(text)))
    mine = [(r["kind"], r["on_hand_delta"], r["value_delta"], r["unit_cost"]) for r in rows if r["document"] == "DOC"]
    assert mine == [("purchase_receipt", "20", "5000", "250"), ("return_to_vendor", "-60", "-2500", "")]
    assert all(r["on_hand_delta"] != "0" for r in rows)              # reservations left out unless asked
    assert oms.closings.movements_csv(date(2020, 1, 1)).count("\n") == 1   # a day without movements: the header

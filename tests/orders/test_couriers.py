"""Courier matching: rules/carriers.yaml picks carrier and service among the carriers each warehouse has, by
the parcel's goods, weight, destination and the date booked; a refusal passes to the next candidate; the
choice, every quote and the rules that fired are stored and explained."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import T0, show_order, status
from oms_engine.storage.models import OutboxMessage
from tests.support import NO_REFUSALS, build_oms, copy_rules, order_json, payload

CARRIERS = [
    {"code": "SF", "name": "SF Express", "connector": "sim_carrier",
     "settings": {"base_price": 1800, "price_per_kg": 500, "transit_hours": 24},
     "services": [{"code": "STANDARD", "name": "SF Standard", "attributes": {"max_weight_g": 30000, "cod": True}},
                  {"code": "COLD", "name": "SF Cold", "attributes": {"cold_chain": True, "max_weight_g": 20000}}]},
    {"code": "ZTO", "name": "ZTO Express", "connector": "sim_carrier",
     "settings": {"base_price": 900, "price_per_kg": 300, "transit_hours": 60, "refuse_regions": ["Xinjiang"]},
     "services": [{"code": "ECONOMY", "name": "ZTO Economy", "attributes": {"max_weight_g": 20000}}]},
    {"code": "DEPPON", "name": "Deppon", "connector": "sim_carrier",
     "settings": {"base_price": 4500, "price_per_kg": 150, "transit_hours": 72},
     "services": [{"code": "HEAVY", "name": "Deppon Heavy", "attributes": {"max_weight_g": 500000, "oversize": True}}]},
]


def _collect_from(oms: OMS, carriers: list[str]) -> None:
    oms.masterdata.apply("warehouses", [Row(f"t:{w}", {"code": w, "carriers": carriers})
                                        for w in ("WH-SH", "WH-BJ", "WH-GZ")], actor="t", source="t", merge=True)


@pytest.fixture
def oms(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    o = build_oms(tmp_path, db_url, plugin_settings=NO_REFUSALS)
    o.masterdata.apply("carriers", [Row(f"t:{c['code']}", c) for c in CARRIERS], actor="t", source="t")
    _collect_from(o, ["SF", "ZTO", "DEPPON"])
    yield o
    o.close()


def _one(oms: OMS, order: dict[str, Any]) -> str:
    [result] = oms.intake.ingest("json", payload(order))
    assert result.number, result.error
    return result.number


def _courier(oms: OMS, number: str) -> dict[str, Any]:
    [decision] = [d for d in show_order(oms, number)["decisions"] if d["point"] == "carriers"][-1:]
    return decision


def _tried(decision: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(t["carrier"], t["service"], t["result"]) for t in decision["outcome"]["tried"]]


def _document(oms: OMS, number: str) -> dict[str, Any]:
    with oms.db.read() as s:
        [doc] = s.scalars(select(OutboxMessage.payload).where(OutboxMessage.order_number == number,
                                                                OutboxMessage.topic == "wms.create")).all()
        return doc


def test_the_cheapest_quote_wins_and_the_warehouse_and_the_order_are_told(oms: OMS) -> None:
    number = _one(oms, order_json("CR-1", [("TEA-1", 1)]))
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    decision = _courier(oms, number)
    assert [f["rule"] for f in decision["fired"]] == ["cheapest"]
    assert (decision["outcome"]["carrier"], decision["outcome"]["service"], decision["outcome"]["price"]) == (
        "ZTO", "ECONOMY", 900)
    assert decision["outcome"]["why"].startswith("ZTO/ECONOMY by rule cheapest at 9.00 CNY")
    # Every candidate is on record: the cold service passed over, the dearer ones ranked after.
    tried = _tried(decision)
    assert tried[0] == ("ZTO", "ECONOMY", "chosen")
    assert ("SF", "STANDARD", "quoted, ranked after the one chosen") in tried
    assert ("DEPPON", "HEAVY", "quoted, ranked after the one chosen") in tried
    assert _document(oms, number)["carrier"] == "ZTO" and _document(oms, number)["service"] == "ECONOMY"
    with oms.db.read() as s:
        assert (get_order(s, number).carrier, get_order(s, number).service) == ("ZTO", "ECONOMY")


def test_a_carrier_that_refuses_passes_the_parcel_to_the_next(oms: OMS) -> None:
    order = order_json("CR-2", [("TEA-1", 1)])
    order["ship_to"].update(region="Xinjiang", city="Urumqi", district="Tianshan")
    number = _one(oms, order)
    oms.pipeline.run_until_idle()
    decision = _courier(oms, number)
    assert (decision["outcome"]["carrier"], decision["outcome"]["service"]) == ("SF", "STANDARD")
    assert ("ZTO", "ECONOMY", "refused: ZTO does not deliver to Xinjiang") in _tried(decision)


def test_cold_chain_and_heavy_parcels_go_by_the_carrier_their_rule_names(oms: OMS) -> None:
    cold = _one(oms, order_json("CR-3", [("ICE-1", 1)]))
    heavy = _one(oms, order_json("CR-4", [("SOFA-1", 1)]))
    ambient = _one(oms, order_json("CR-4B", [("TEA-1", 1)]))
    oms.pipeline.run_until_idle()
    c, h = _courier(oms, cold), _courier(oms, heavy)
    assert (c["fired"][0]["rule"], c["outcome"]["carrier"], c["outcome"]["service"]) == (
        "cold-chain", "SF", "COLD")
    assert (h["fired"][0]["rule"], h["outcome"]["carrier"], h["outcome"]["service"]) == (
        "heavy-or-oversize", "DEPPON", "HEAVY")
    # An ambient parcel never takes the cold-chain service, however cheap.
    assert ("SF", "COLD", "passed over: a cold-chain service, kept for cold-chain goods") in _tried(
        _courier(oms, ambient))


def test_a_booked_delivery_goes_with_the_carrier_that_keeps_it_and_reaches_warehouse_and_carrier(oms: OMS) -> None:
    by = T0 + timedelta(hours=48)
    order = order_json("CR-5", [("TEA-1", 1)], deliver_from=(T0 + timedelta(hours=40)).isoformat() + "Z",
                       deliver_by=by.isoformat() + "Z")
    number = _one(oms, order)
    oms.pipeline.run_until_idle()
    decision = _courier(oms, number)
    assert decision["fired"][0]["rule"] == "booked-delivery"
    # ZTO is cheaper, but delivers after the date booked (ready in 24 h, then 30 h within Shanghai).
    assert decision["outcome"]["carrier"] == "SF" and decision["outcome"]["promised_by"] == by.isoformat() + "Z"
    assert _tried(decision)[:2] == [("SF", "STANDARD", "chosen"),
                                    ("ZTO", "ECONOMY", "quoted, ranked after the one chosen")]
    doc = _document(oms, number)
    assert (doc["carrier"], doc["deliver_by"]) == ("SF", by.isoformat() + "Z")


def test_the_cheapest_that_keeps_the_date_beats_a_cheaper_one_that_is_late(tmp_path: Path, db_url: str) -> None:
    rules = copy_rules(tmp_path)
    text = (rules / "carriers.yaml").read_text(encoding="utf-8")
    start = text.index("  - name: booked-delivery")
    (rules / "carriers.yaml").write_text(text[:start] + text[text.index("  - name: cheapest"):], encoding="utf-8")
    o = build_oms(tmp_path, db_url, rules_dir=rules, plugin_settings=NO_REFUSALS)
    try:
        o.masterdata.apply("carriers", [Row(f"t:{c['code']}", c) for c in CARRIERS], actor="t", source="t")
        _collect_from(o, ["SF", "ZTO", "DEPPON"])
        number = _one(o, order_json("CR-7", [("TEA-1", 1)], deliver_by=(T0 + timedelta(hours=48)).isoformat() + "Z"))
        o.pipeline.run_until_idle()
        decision = _courier(o, number)
        assert [f["rule"] for f in decision["fired"]] == ["cheapest"]
        assert _tried(decision)[:2] == [("ZTO", "ECONOMY", "kept back: delivers after the date promised"),
                                        ("SF", "STANDARD", "chosen")]
    finally:
        o.close()


def test_no_carrier_takes_it_holds_the_order_with_each_refusal_and_release_asks_again(oms: OMS) -> None:
    _collect_from(oms, ["ZTO"])
    order = order_json("CR-6", [("TEA-1", 1)])
    order["ship_to"].update(region="Xinjiang", city="Urumqi", district="Tianshan")
    number = _one(oms, order)
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        held = get_order(s, number)
        assert (held.status, held.hold_stage) == ("on_hold", "courier")
        assert "ZTO/ECONOMY: refused: ZTO does not deliver to Xinjiang" in held.hold_reason
        assert not held.carrier
    _collect_from(oms, ["ZTO", "SF"])
    oms.commands.release(number, actor="ops:li", note="SF collects from here now")
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched" and _courier(oms, number)["outcome"]["carrier"] == "SF"


def _dimensions(oms: OMS, sku: str, mm: tuple[int, int, int]) -> None:
    oms.masterdata.apply("products", [Row(f"t:{sku}", {"sku": sku, "length_mm": mm[0], "width_mm": mm[1],
                                                        "height_mm": mm[2]})], actor="t", source="t", merge=True)


def test_a_parcel_is_as_bulky_as_its_lines_were_when_ordered(oms: OMS) -> None:
    """A service's volume limit weighs the parcel by the dimensions its products had when the order came in,
    as its weight: a catalogue edit afterwards does not change what is in the box."""
    oms.masterdata.apply("carriers", [Row("t:ZTO", {**CARRIERS[1], "services": [
        {"code": "ECONOMY", "name": "ZTO Economy", "attributes": {"max_weight_g": 20000, "max_volume_cm3": 3000}}]})],
        actor="t", source="t", merge=True)
    _dimensions(oms, "TEA-1", (200, 100, 100))          # 2,000 cm3 a unit
    number = _one(oms, order_json("CR-V", [("TEA-1", 2)]))
    _dimensions(oms, "TEA-1", (10, 10, 10))             # re-measured after the order came in
    oms.pipeline.run_until_idle()
    decision = _courier(oms, number)
    assert decision["outcome"]["volume_cm3"] == 4000
    assert ("ZTO", "ECONOMY", "passed over: volume 4,000cm3 over its limit of 3,000cm3") in _tried(decision)
    assert decision["outcome"]["carrier"] == "SF"

from __future__ import annotations

from collections import Counter
from typing import Any

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_engine import OrderView, StockView
from oms_engine.plugin import hookspecs
from oms_plugins.strategies import routing as rs
from oms_plugins.strategies import split as ss

from .builders import CODES, effective, line, order, order_and_stock, stock, wh

LOCATIONS = {"Hangzhou": [30.27, 120.15], "guangdong": [23.13, 113.26], "Shenzhen": [22.54, 114.06]}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("priority", {}),
    ("priority", {"order": ["W3", "W1"]}),
    ("region", {"map": {"zhejiang": ["W2", "W1"], "CN": ["W4"]}, "fallback": ["W3"]}),
    ("nearest", {"locations": LOCATIONS}),
    ("fewest_parcels", {}),
    ("fixed", {"warehouse": "W2"}),
]


@settings(max_examples=100, deadline=None)
@given(case=st.sampled_from(CASES), require_stock=st.sampled_from([None, True, False]),
       data=order_and_stock())
def test_choice_is_always_eligible_and_covers_when_required(
        case: tuple[str, dict[str, Any]], require_stock: bool | None,
        data: tuple[OrderView, StockView]) -> None:
    name, params = case
    if require_stock is not None:
        params = {**params, "require_stock": require_stock}
    o, s = data
    plan = rs.STRATEGIES[name](o, s, params)
    assert rs.STRATEGIES[name](o, s, params) == plan
    if plan is None:
        return
    assert plan.strategy == name and plan.reason
    w = s.warehouse(plan.warehouse)
    for ln in o.lines:
        for cap in ("cold_chain", "oversize"):
            if ln.attributes.get(cap):
                assert cap in w.capabilities, f"{cap} line routed to {w.code}"
    need: Counter[str] = Counter()
    for ln in o.lines:
        need[ln.sku] += ln.quantity
    covering = all(effective(o, s, w.code, sku) >= q for sku, q in need.items())
    if require_stock is not False:
        assert covering


@settings(max_examples=100, deadline=None)
@given(data=order_and_stock())
def test_priority_is_the_first_eligible_covering_warehouse(data: tuple[OrderView, StockView]) -> None:
    o, s = data
    caps = {c for ln in o.lines for c in ("cold_chain", "oversize") if ln.attributes.get(c)}
    need: Counter[str] = Counter()
    for ln in o.lines:
        need[ln.sku] += ln.quantity
    expected = next((w.code for w in sorted(s.warehouses, key=lambda w: (w.priority, w.code))
                     if caps <= w.capabilities
                     and all(effective(o, s, w.code, k) >= q for k, q in need.items())), None)
    plan = rs.priority(o, s, {})
    assert (plan.warehouse if plan else None) == expected


# --------------------------------------------------------------------------- priority


def three_warehouses() -> list:
    return [wh("WH-BJ", 2, lat=39.90, lon=116.40),
            wh("WH-SH", 1, caps=("cold_chain",), lat=31.23, lon=121.47),
            wh("WH-GZ", 3, caps=("oversize",), lat=23.13, lon=113.26)]


def full_stock(*codes: str, skus: tuple[str, ...] = ("A", "B", "MILK", "SOFA")) -> dict[tuple[str, str], int]:
    return {(c, k): 100 for c in codes for k in skus}


def test_priority_default_order_skips_a_warehouse_without_stock() -> None:
    o = order(line(1, "A", 2), line(2, "B", 1), line(3, "A", 1))
    s = stock(three_warehouses(), {**full_stock("WH-BJ", "WH-GZ"), ("WH-SH", "A"): 2, ("WH-SH", "B"): 9})
    plan = rs.priority(o, s, {"strategy": "priority"})
    # WH-SH comes first but has 2 of the 3 A's that lines 1 and 3 need together.
    assert plan is not None and plan.warehouse == "WH-BJ"
    assert plan.reason == "first warehouse in priority list covering all 3 lines"


def test_priority_explicit_order() -> None:
    o = order(line(1, "A", 1))
    s = stock(three_warehouses(), full_stock("WH-BJ", "WH-SH", "WH-GZ"))
    plan = rs.priority(o, s, {"order": ["WH-XX", "WH-GZ", "WH-SH"]})
    assert plan is not None and plan.warehouse == "WH-GZ"


def test_priority_none_when_no_warehouse_has_the_stock() -> None:
    o = order(line(1, "A", 1000))
    assert rs.priority(o, stock(three_warehouses(), full_stock("WH-BJ", "WH-SH", "WH-GZ")), {}) is None


def test_priority_without_require_stock_still_prefers_stock_then_falls_back() -> None:
    whs = three_warehouses()
    o = order(line(1, "A", 5))
    assert rs.priority(o, stock(whs, {("WH-BJ", "A"): 5}), {"require_stock": False}).warehouse == "WH-BJ"
    plan = rs.priority(o, stock(whs, {}), {"require_stock": False})
    assert plan is not None and plan.warehouse == "WH-SH"
    assert "stock not required" in plan.reason


def test_cold_chain_order_never_goes_to_a_warehouse_without_cold_chain() -> None:
    o = order(line(1, "MILK", 1, cold_chain=True), line(2, "A", 1))
    s = stock(three_warehouses(), {**full_stock("WH-BJ", "WH-GZ"), ("WH-SH", "A"): 1})
    # Only WH-SH is cold chain and it has no milk: every strategy must decline.
    everywhere = {"region": {"map": {"CN": ["WH-BJ", "WH-GZ", "WH-SH"]}},
                  "nearest": {"locations": LOCATIONS}, "fixed": {"warehouse": "WH-BJ"},
                  "priority": {}, "fewest_parcels": {}}
    o_hz = order(*o.lines, city="Hangzhou")
    for name, params in everywhere.items():
        for require_stock in (True, False):
            plan = rs.STRATEGIES[name](o_hz, s, {**params, "require_stock": require_stock})
            assert plan is None or plan.warehouse == "WH-SH", (name, require_stock, plan)
    plan = rs.priority(o_hz, s, {"require_stock": False})
    assert plan is not None and plan.warehouse == "WH-SH" and "cold_chain" in plan.reason


def test_oversize_needs_an_oversize_warehouse() -> None:
    o = order(line(1, "SOFA", 1, oversize=True))
    s = stock(three_warehouses(), full_stock("WH-BJ", "WH-SH", "WH-GZ"))
    assert rs.priority(o, s, {}).warehouse == "WH-GZ"


def test_own_reservation_counts_as_stock() -> None:
    o = order(line(1, "A", 3), reserved={"WH-GZ": {1: 3}})
    s = stock(three_warehouses(), {("WH-BJ", "A"): 2})
    plan = rs.priority(o, s, {})
    assert plan is not None and plan.warehouse == "WH-GZ"


# --------------------------------------------------------------------------- region


REGION_MAP = {"Zhejiang": ["WH-SH", "WH-BJ"], "guangdong": ["WH-GZ"], "cn": ["WH-BJ"]}


def test_region_matches_region_case_insensitively() -> None:
    o = order(line(1, "A", 1), region="ZHEJIANG")
    s = stock(three_warehouses(), full_stock("WH-BJ", "WH-SH", "WH-GZ"))
    plan = rs.region(o, s, {"map": REGION_MAP})
    assert plan is not None and plan.warehouse == "WH-SH"
    assert "mapped to ZHEJIANG" in plan.reason


def test_region_falls_back_to_country_then_fallback_list() -> None:
    s = stock(three_warehouses(), full_stock("WH-GZ"))
    o = order(line(1, "A", 1), region="Sichuan", country="CN")
    assert rs.region(o, s, {"map": REGION_MAP}) is None  # WH-BJ has nothing
    plan = rs.region(o, s, {"map": REGION_MAP, "fallback": ["WH-GZ"]})
    assert plan is not None and plan.warehouse == "WH-GZ" and "fallback" in plan.reason
    plan = rs.region(order(line(1, "A", 1), region="Sichuan", country="CN"),
                     stock(three_warehouses(), full_stock("WH-BJ")), {"map": REGION_MAP})
    assert plan is not None and plan.warehouse == "WH-BJ" and "mapped to CN" in plan.reason


def test_region_no_match_and_no_fallback_is_none() -> None:
    o = order(line(1, "A", 1), region="Bavaria", country="DE")
    assert rs.region(o, stock(three_warehouses(), full_stock("WH-BJ")), {"map": REGION_MAP}) is None


# --------------------------------------------------------------------------- nearest


def test_nearest_by_city_then_region() -> None:
    s = stock(three_warehouses(), full_stock("WH-BJ", "WH-SH", "WH-GZ"))
    plan = rs.nearest(order(line(1, "A", 1), city="hangzhou", region="Guangdong"), s,
                      {"locations": LOCATIONS})
    assert plan is not None and plan.warehouse == "WH-SH"
    assert "km from hangzhou" in plan.reason
    plan = rs.nearest(order(line(1, "A", 1), city="Foshan", region="Guangdong"), s, {"locations": LOCATIONS})
    assert plan is not None and plan.warehouse == "WH-GZ" and plan.reason.endswith("0 km from Guangdong")


def test_nearest_skips_the_nearest_without_stock_and_is_none_when_not_located() -> None:
    s = stock(three_warehouses(), full_stock("WH-BJ", "WH-GZ"))
    plan = rs.nearest(order(line(1, "A", 1), city="Hangzhou"), s, {"locations": LOCATIONS})
    assert plan is not None and plan.warehouse == "WH-GZ"  # ~1,050 km beats Beijing's ~1,120 km
    assert rs.nearest(order(line(1, "A", 1), city="Lhasa"), s, {"locations": LOCATIONS}) is None


def test_nearest_ties_go_to_priority() -> None:
    whs = [wh("W-B", 2, lat=30.0, lon=120.0), wh("W-A", 1, lat=30.0, lon=120.0)]
    plan = rs.nearest(order(line(1, "A", 1), city="X"), stock(whs, full_stock("W-A", "W-B")),
                      {"locations": {"x": [31, 121]}})
    assert plan is not None and plan.warehouse == "W-A"


def test_haversine_known_distance() -> None:
    # Shanghai to Beijing is about 1,067 km along the great circle.
    assert rs.haversine_km(31.23, 121.47, 39.90, 116.40) == pytest.approx(1067, abs=5)


# --------------------------------------------------------------------------- fewest_parcels


def test_fewest_parcels_prefers_full_cover_over_priority() -> None:
    o = order(line(1, "A", 1), line(2, "B", 1))
    s = stock(three_warehouses(), {("WH-SH", "A"): 5, **full_stock("WH-GZ", skus=("A", "B"))})
    plan = rs.fewest_parcels(o, s, {})
    assert plan is not None and plan.warehouse == "WH-GZ"


def test_fewest_parcels_without_cover_takes_the_most_units_when_allowed() -> None:
    o = order(line(1, "A", 4), line(2, "B", 4))
    s = stock(three_warehouses(), {("WH-SH", "A"): 4, ("WH-BJ", "A"): 3, ("WH-BJ", "B"): 3})
    assert rs.fewest_parcels(o, s, {}) is None
    plan = rs.fewest_parcels(o, s, {"require_stock": False})
    assert plan is not None and plan.warehouse == "WH-BJ" and "6 of 8" in plan.reason
    assert rs.fewest_parcels(o, stock(three_warehouses(), {}), {"require_stock": False}) is None


# --------------------------------------------------------------------------- fixed


def test_fixed_uses_the_warehouse_when_eligible_and_stocked() -> None:
    o = order(line(1, "MILK", 1, cold_chain=True))
    s = stock(three_warehouses(), full_stock("WH-SH", "WH-BJ"))
    assert rs.fixed(o, s, {"warehouse": "WH-SH"}).warehouse == "WH-SH"
    assert rs.fixed(o, s, {"warehouse": "WH-BJ"}) is None           # not cold chain
    assert rs.fixed(o, s, {"warehouse": "WH-NOPE"}) is None         # unknown code
    empty = stock(three_warehouses(), {})
    assert rs.fixed(o, empty, {"warehouse": "WH-SH"}) is None
    assert rs.fixed(o, empty, {"warehouse": "WH-SH", "require_stock": False}).warehouse == "WH-SH"


# --------------------------------------------------------------------------- params


@pytest.mark.parametrize(("name", "params", "message"), [
    ("priority", {"order": "WH-SH"}, "'order' must be a non-empty list of warehouse codes"),
    ("priority", {"order": ["WH-SH", "WH-SH"]}, "lists a warehouse twice"),
    ("priority", {"require_stock": "false"}, "'require_stock' must be true or false"),
    ("priority", {"warehouse": "WH-SH"}, "unknown parameter 'warehouse' (allowed: order, require_stock)"),
    ("region", {}, "parameter 'map' is required"),
    ("region", {"map": {}}, "'map' must be a non-empty mapping"),
    ("region", {"map": {"CN": "WH-SH"}}, "'map.CN' must be a non-empty list of warehouse codes"),
    ("region", {"map": {"CN": ["WH-SH"], "cn": ["WH-BJ"]}}, "are the same region"),
    ("region", {"map": {"CN": ["WH-SH"]}, "fallback": []}, "'fallback' must be a non-empty list"),
    ("region", {"map": {"CN": ["WH-SH"]}, "fallbak": ["WH-BJ"]}, "did you mean 'fallback'?"),
    ("nearest", {}, "parameter 'locations' is required"),
    ("nearest", {"locations": {"Hangzhou": [30.27]}}, "location 'Hangzhou' must be [lat, lon]"),
    ("nearest", {"locations": {"Hangzhou": [120.15, 30.27]}}, "-90 <= lat <= 90"),
    ("nearest", {"locations": {"Hangzhou": ["30", "120"]}}, "must be [lat, lon]"),
    ("fewest_parcels", {"max_parcels": 2}, "unknown parameter 'max_parcels'"),
    ("fixed", {}, "parameter 'warehouse' is required"),
    ("fixed", {"warehouse": ["WH-SH"]}, "'warehouse' must be a non-empty string"),
])
def test_validators_reject_bad_params(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="routing strategy '" + name) as err:
        rs.PARAMS[name](params)
    assert message in str(err.value)


@pytest.mark.parametrize(("name", "params"), [
    ("priority", {"strategy": "priority"}),
    ("priority", {"strategy": "priority", "order": ["WH-SH"], "require_stock": False}),
    ("region", {"strategy": "region", "map": REGION_MAP, "fallback": ["WH-BJ"]}),
    ("nearest", {"strategy": "nearest", "locations": LOCATIONS, "require_stock": True}),
    ("fewest_parcels", {"strategy": "fewest_parcels", "require_stock": False}),
    ("fixed", {"strategy": "fixed", "warehouse": "WH-SH"}),
])
def test_validators_accept_good_params(name: str, params: dict[str, Any]) -> None:
    rs.PARAMS[name](params)


def test_every_strategy_has_a_validator() -> None:
    assert set(rs.PARAMS) == set(rs.STRATEGIES)


# --------------------------------------------------------------------------- registration


def test_both_modules_register_every_strategy_through_pluggy() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(ss, name="oms_plugins.strategies.split")
    pm.register(rs, name="oms_plugins.strategies.routing")
    pm.check_pending()

    split: dict[str, tuple[Any, Any]] = {}
    routing: dict[str, tuple[Any, Any]] = {}
    pm.hook.oms_register_split_strategies(
        register=lambda n, fn, validate=None: split.setdefault(n, (fn, validate)), config=None)
    pm.hook.oms_register_routing_strategies(
        register=lambda n, fn, validate=None: routing.setdefault(n, (fn, validate)), config=None)
    assert set(split) == {"single", "by_merchant", "by_attribute", "by_warehouse_stock", "max_parcel"}
    assert set(routing) == {"priority", "region", "nearest", "fewest_parcels", "fixed"}
    # Each comes with its validator, so the rule loader can check params at load time.
    assert {n: v for n, (_, v) in split.items()} == ss.PARAMS
    assert {n: v for n, (_, v) in routing.items()} == rs.PARAMS
    assert all(callable(fn) for fn, _ in (*split.values(), *routing.values()))


def test_builtins_are_trylast_so_a_third_party_plugin_registers_first() -> None:
    class ThirdParty:
        @hookspecs.hookimpl
        def oms_register_routing_strategies(self, register: Any, config: Any) -> None:
            register("priority", "third-party")

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(rs)
    pm.register(ThirdParty())
    calls: list[tuple[str, Any]] = []
    pm.hook.oms_register_routing_strategies(register=lambda name, fn, validate=None: calls.append((name, fn)),
                                            config=None)
    assert calls[0] == ("priority", "third-party")


def test_codes_used_by_the_generators_are_distinct() -> None:
    # Guards the property tests above: duplicate codes would make s.warehouse() ambiguous.
    assert len(set(CODES)) == len(CODES)

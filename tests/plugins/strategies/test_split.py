from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_engine import OrderView, SplitPlan, StockView
from oms_plugins.strategies import split as ss

from .builders import effective, line, order, order_and_stock, stock, wh

# --------------------------------------------------------------------------- invariants


def assert_invariants(o: OrderView, plan: SplitPlan) -> None:
    """What child-order creation relies on, whatever the strategy."""
    totals: Counter[int] = Counter()
    for g in plan.groups:
        assert g.lines, "empty group"
        for line_no, q in g.lines.items():
            assert isinstance(q, int) and q > 0, f"line {line_no} has quantity {q!r}"
            totals[line_no] += q
        assert g.reason
    assert dict(totals) == {ln.line_no: ln.quantity for ln in o.lines}


CASES: list[tuple[str, dict[str, Any]]] = [
    ("single", {}),
    ("by_merchant", {"strategy": "by_merchant"}),
    ("by_attribute", {"attribute": "cold_chain"}),
    ("by_attribute", {"attribute": "flag", "by_value": True}),
    ("by_attribute", {"attribute": "flag", "by_value": False}),
    ("by_warehouse_stock", {}),
]


@settings(max_examples=100, deadline=None)
@given(case=st.sampled_from(CASES), data=order_and_stock())
def test_every_unit_in_exactly_one_group(case: tuple[str, dict[str, Any]],
                                         data: tuple[OrderView, StockView]) -> None:
    name, params = case
    o, s = data
    plan = ss.STRATEGIES[name](o, s, params)
    assert plan.strategy == name
    assert_invariants(o, plan)
    assert ss.STRATEGIES[name](o, s, dict(params)) == plan, "same input, different plan"


@st.composite
def parcel_limits(draw: Any) -> dict[str, int]:
    params = {}
    if draw(st.booleans()):
        params["max_items"] = draw(st.integers(1, 25))
    if not params or draw(st.booleans()):
        params["max_weight_g"] = draw(st.integers(1, 20_000))
    return params


@settings(max_examples=100, deadline=None)
@given(data=order_and_stock(), params=parcel_limits())
def test_max_parcel_invariants_and_limits(data: tuple[OrderView, StockView], params: dict[str, int]) -> None:
    o, s = data
    plan = ss.max_parcel(o, s, params)
    assert_invariants(o, plan)
    assert ss.max_parcel(o, s, params) == plan
    weight = {ln.line_no: ln.weight_g for ln in o.lines}
    for g in plan.groups:
        items = sum(g.lines.values())
        grams = sum(weight[n] * q for n, q in g.lines.items())
        if "max_weight_g" in params and grams > params["max_weight_g"]:
            # The only allowed excess: one unit too heavy to ship with anything.
            assert items == 1 and "ships alone" in g.reason
            continue
        assert items <= params.get("max_items", items)
    fits = (sum(ln.quantity for ln in o.lines) <= params.get("max_items", 10**9)
            and o.weight_g <= params.get("max_weight_g", 10**9))
    if fits:
        assert len(plan.groups) == 1


@settings(max_examples=100, deadline=None)
@given(data=order_and_stock())
def test_by_warehouse_stock_groups_ship_from_their_hint(data: tuple[OrderView, StockView]) -> None:
    o, s = data
    plan = ss.by_warehouse_stock(o, s, {})
    lines = {ln.line_no: ln for ln in o.lines}
    hints = [g.warehouse_hint for g in plan.groups if g.warehouse_hint]
    assert len(hints) == len(set(hints)), "a warehouse appears in two groups"
    for g in plan.groups:
        if g.warehouse_hint is None:
            assert g.reason == "no stock"
            continue
        w = s.warehouse(g.warehouse_hint)
        need: Counter[str] = Counter()
        for n, q in g.lines.items():
            need[lines[n].sku] += q
            for cap in ("cold_chain", "oversize"):
                if lines[n].attributes.get(cap):
                    assert cap in w.capabilities
        for sku, q in need.items():
            assert q <= effective(o, s, w.code, sku)
    unhinted = [g for g in plan.groups if g.warehouse_hint is None]
    assert len(unhinted) <= 1 and (not unhinted or plan.groups[-1] is unhinted[0])


@settings(max_examples=100, deadline=None)
@given(data=order_and_stock())
def test_by_warehouse_stock_single_group_when_one_warehouse_covers(data: tuple[OrderView, StockView]) -> None:
    o, s = data
    caps = {c for ln in o.lines for c in ("cold_chain", "oversize") if ln.attributes.get(c)}
    need = Counter()
    for ln in o.lines:
        need[ln.sku] += ln.quantity
    coverers = [w for w in s.warehouses if caps <= w.capabilities
                and all(effective(o, s, w.code, k) >= q for k, q in need.items())]
    plan = ss.by_warehouse_stock(o, s, {})
    if coverers:
        assert len(plan.groups) == 1
        assert plan.groups[0].warehouse_hint in {w.code for w in coverers}
    else:
        assert len(plan.groups) >= 2 or plan.groups[0].warehouse_hint is None


@settings(max_examples=100, deadline=None)
@given(data=order_and_stock())
def test_no_split_when_nothing_differs(data: tuple[OrderView, StockView]) -> None:
    o, s = data
    if len({ln.merchant for ln in o.lines}) == 1:
        assert len(ss.by_merchant(o, s, {}).groups) == 1
    if len({bool(ln.attributes.get("cold_chain")) for ln in o.lines}) == 1:
        assert len(ss.by_attribute(o, s, {"attribute": "cold_chain"}).groups) == 1
    assert len(ss.single(o, s, {}).groups) == 1


# --------------------------------------------------------------------------- by_merchant


def test_by_merchant_groups_in_order_of_first_appearance() -> None:
    o = order(line(1, "A", 1, merchant="shop-b"), line(2, "B", 2, merchant="shop-a"),
              line(3, "C", 3, merchant="shop-b"))
    plan = ss.by_merchant(o, stock([], {}), {})
    assert [dict(g.lines) for g in plan.groups] == [{1: 1, 3: 3}, {2: 2}]
    assert "shop-b" in plan.groups[0].reason


# --------------------------------------------------------------------------- by_attribute


def test_by_attribute_ships_cold_chain_apart() -> None:
    o = order(line(1, "MILK", 2, cold_chain=True), line(2, "BOOK", 1), line(3, "CHEESE", 1, cold_chain=True),
              line(4, "PEN", 5, cold_chain=False))
    plan = ss.by_attribute(o, stock([], {}), {"strategy": "by_attribute", "attribute": "cold_chain"})
    assert [dict(g.lines) for g in plan.groups] == [{1: 2, 3: 1}, {2: 1, 4: 5}]
    assert plan.groups[0].reason == "cold_chain items ship apart"


def test_by_attribute_by_value_groups_each_presale_date() -> None:
    o = order(line(1, "A", 1, presale="2024-06-01"), line(2, "B", 1), line(3, "C", 1, presale="2024-07-01"),
              line(4, "D", 1, presale="2024-06-01"))
    plan = ss.by_attribute(o, stock([], {}), {"attribute": "presale", "by_value": True})
    assert [dict(g.lines) for g in plan.groups] == [{1: 1, 4: 1}, {2: 1}, {3: 1}]


def test_by_attribute_by_value_keeps_true_and_1_apart() -> None:
    o = order(line(1, "A", 1, size=True), line(2, "B", 1, size=1))
    assert len(ss.by_attribute(o, stock([], {}), {"attribute": "size", "by_value": True}).groups) == 2


# --------------------------------------------------------------------------- by_warehouse_stock


def test_by_warehouse_stock_equal_units_go_to_the_lower_priority() -> None:
    o = order(line(1, "A", 5), line(2, "B", 1))
    s = stock([wh("W2", 2), wh("W1", 1)], {("W1", "A"): 5, ("W2", "A"): 5})
    plan = ss.by_warehouse_stock(o, s, {})
    assert [(dict(g.lines), g.warehouse_hint) for g in plan.groups] == [({1: 5}, "W1"), ({2: 1}, None)]


def test_by_warehouse_stock_one_warehouse_covering_wins_by_priority_then_stock() -> None:
    o = order(line(1, "A", 2), line(2, "B", 1))
    whs = [wh("WH-BJ", 2), wh("WH-SH", 1), wh("WH-GZ", 1)]
    s = stock(whs, {("WH-BJ", "A"): 9, ("WH-BJ", "B"): 9, ("WH-SH", "A"): 2, ("WH-SH", "B"): 1,
                    ("WH-GZ", "A"): 5, ("WH-GZ", "B"): 5})
    plan = ss.by_warehouse_stock(o, s, {})
    assert len(plan.groups) == 1
    assert plan.groups[0].warehouse_hint == "WH-GZ"  # priority 1 like WH-SH, but more stock
    assert dict(plan.groups[0].lines) == {1: 2, 2: 1}


def test_by_warehouse_stock_greedy_cover_divides_a_line_and_keeps_the_rest() -> None:
    o = order(line(1, "A", 5), line(2, "B", 2), line(3, "C", 1))
    s = stock([wh("W1", 1), wh("W2", 2)],
              {("W1", "A"): 4, ("W2", "A"): 3, ("W2", "B"): 2})
    plan = ss.by_warehouse_stock(o, s, {})
    assert [(dict(g.lines), g.warehouse_hint) for g in plan.groups] == [
        ({1: 3, 2: 2}, "W2"),       # 5 units beat W1's 4, whatever the priority
        ({1: 2}, "W1"),             # the rest of line 1
        ({3: 1}, None),
    ]
    assert plan.groups[-1].reason == "no stock"


def test_by_warehouse_stock_counts_this_orders_own_reservation() -> None:
    # Available excludes the 2 units reserved for this very order at W2, which
    # are its to use: W2 covers the order and no split is needed.
    o = order(line(1, "A", 3), reserved={"W2": {1: 2}})
    s = stock([wh("W1", 1), wh("W2", 5)], {("W1", "A"): 2, ("W2", "A"): 1})
    plan = ss.by_warehouse_stock(o, s, {})
    assert [(dict(g.lines), g.warehouse_hint) for g in plan.groups] == [({1: 3}, "W2")]


def test_by_warehouse_stock_keeps_cold_chain_lines_on_cold_chain_warehouses() -> None:
    o = order(line(1, "MILK", 1, cold_chain=True), line(2, "BOOK", 1))
    s = stock([wh("WH-BJ", 1), wh("WH-SH", 2, caps=("cold_chain",))],
              {("WH-BJ", "MILK"): 5, ("WH-BJ", "BOOK"): 5, ("WH-SH", "MILK"): 5})
    plan = ss.by_warehouse_stock(o, s, {})
    assert {g.warehouse_hint: dict(g.lines) for g in plan.groups} == {"WH-SH": {1: 1}, "WH-BJ": {2: 1}}


def test_by_warehouse_stock_with_no_warehouses_is_one_no_stock_group() -> None:
    o = order(line(1, "A", 1))
    plan = ss.by_warehouse_stock(o, stock([], {}), {})
    assert [(dict(g.lines), g.warehouse_hint, g.reason) for g in plan.groups] == [({1: 1}, None, "no stock")]


# --------------------------------------------------------------------------- max_parcel


def test_max_parcel_by_items() -> None:
    o = order(line(1, "A", 5), line(2, "B", 3))
    plan = ss.max_parcel(o, stock([], {}), {"max_items": 4})
    assert [dict(g.lines) for g in plan.groups] == [{1: 4}, {1: 1, 2: 3}]


def test_max_parcel_first_fit_decreasing_by_weight() -> None:
    o = order(line(1, "LIGHT", 4, weight_g=500), line(2, "HEAVY", 2, weight_g=4000))
    plan = ss.max_parcel(o, stock([], {}), {"max_weight_g": 5000})
    # Heavy units first, one per parcel; the light ones fill the gaps (1000 g each).
    assert [dict(g.lines) for g in plan.groups] == [{1: 2, 2: 1}, {1: 2, 2: 1}]


def test_max_parcel_unit_over_the_limit_ships_alone() -> None:
    o = order(line(1, "SOFA", 2, weight_g=40_000), line(2, "CUSHION", 1, weight_g=1000))
    plan = ss.max_parcel(o, stock([], {}), {"max_weight_g": 30_000})
    assert [dict(g.lines) for g in plan.groups] == [{1: 1}, {1: 1}, {2: 1}]
    assert "ships alone" in plan.groups[0].reason


def test_max_parcel_large_quantity_is_fast() -> None:
    o = order(line(1, "A", 100_000, weight_g=1))
    plan = ss.max_parcel(o, stock([], {}), {"max_items": 30_000})
    assert [dict(g.lines) for g in plan.groups] == [{1: 30_000}] * 3 + [{1: 10_000}]


# --------------------------------------------------------------------------- params


@pytest.mark.parametrize(("name", "params", "message"), [
    ("by_attribute", {}, "parameter 'attribute' is required"),
    ("by_attribute", {"attribute": ""}, "'attribute' must be a non-empty string"),
    ("by_attribute", {"attribute": 3}, "'attribute' must be a non-empty string, got 3 (int)"),
    ("by_attribute", {"attribute": "cold_chain", "by_value": "yes"}, "'by_value' must be true or false"),
    ("by_attribute", {"attribute": "cold_chain", "atribute": "x"}, "did you mean 'attribute'?"),
    ("by_merchant", {"merchant": "x"}, "unknown parameter 'merchant' (allowed: none)"),
    ("single", {"max_items": 3}, "unknown parameter 'max_items'"),
    ("by_warehouse_stock", {"prefer": "WH-SH"}, "unknown parameter 'prefer'"),
    ("max_parcel", {}, "give max_items, max_weight_g or both"),
    ("max_parcel", {"max_items": 0}, "'max_items' must be a whole number greater than 0"),
    ("max_parcel", {"max_items": True}, "'max_items' must be a whole number greater than 0"),
    ("max_parcel", {"max_weight_g": 1.5}, "'max_weight_g' must be a whole number greater than 0"),
    ("max_parcel", {"max_items": 3, "max_weight": 10}, "did you mean 'max_weight_g'?"),
    ("max_parcel", ["max_items"], "parameters must be a mapping"),
])
def test_validators_reject_bad_params(name: str, params: Any, message: str) -> None:
    with pytest.raises(ValueError, match="split strategy '" + name) as err:
        ss.PARAMS[name](params)
    assert message in str(err.value)


@pytest.mark.parametrize(("name", "params"), [
    ("single", {"strategy": "single"}),
    ("by_merchant", {}),
    ("by_attribute", {"strategy": "by_attribute", "attribute": "oversize", "by_value": False}),
    ("by_warehouse_stock", {"strategy": "by_warehouse_stock"}),
    ("max_parcel", {"strategy": "max_parcel", "max_items": 10, "max_weight_g": 20_000}),
])
def test_validators_accept_good_params_and_the_strategy_key(name: str, params: dict[str, Any]) -> None:
    ss.PARAMS[name](params)


def test_every_strategy_has_a_validator() -> None:
    assert set(ss.PARAMS) == set(ss.STRATEGIES)


def test_strategy_refuses_bad_params_too() -> None:
    # A rule that slipped past the loader must fail loudly, not split by accident.
    with pytest.raises(ValueError, match="unknown parameter"):
        ss.max_parcel(order(line(1, "A", 1)), stock([], {}), {"max_item": 3})

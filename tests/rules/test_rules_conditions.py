"""Condition semantics through the real durable_rules engine (and the reference evaluator)."""

from __future__ import annotations

from typing import Any

import pytest

from oms_engine.rules import RuleEngine, evaluate_reference

FACTS: dict[str, Any] = {
    "order": {"payable": 120000, "weight": 2.5, "currency": "CNY", "channel": "json"},
    "customer": {"level": "gold", "blacklisted": False, "order_count": 3, "tags": ["b2b"]},
    "ship_to": {"country": "CN", "region": "Shanghai", "city": "Shanghai"},
    "lines": [
        {"sku": "A1", "quantity": 2, "attributes": {"cold_chain": True}},
        {"sku": "B2", "quantity": 5, "attributes": {"cold_chain": False}},
    ],
}


def fires(load: Any, engine: RuleEngine, when: str, facts: dict[str, Any] = FACTS, schema: Any = "default") -> bool:
    text = f"ruleset: t\nrules:\n  - name: r\n    when: {when}\n    then: [flag]\n"
    kwargs = {} if schema == "default" else {"schema": schema}
    ruleset = load(text, **kwargs)
    engine.load(ruleset)
    actual = engine.evaluate("t", facts).fired_names == ["r"]
    assert (evaluate_reference(ruleset, facts).fired_names == ["r"]) == actual
    return actual


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{customer.level: gold}", True),
        ("{customer.level: silver}", False),
        ("{customer.level: {eq: gold}}", True),
        ("{customer.level: {ne: gold}}", False),
        ("{customer.level: {ne: silver}}", True),
        ("{order.payable: {gt: 119999}}", True),
        ("{order.payable: {gt: 120000}}", False),
        ("{order.payable: {gte: 120000}}", True),
        ("{order.payable: {lt: 120000}}", False),
        ("{order.payable: {lte: 120000}}", True),
        ("{order.payable: {gt: 100000, lt: 130000}}", True),
        ("{order.payable: {gt: 100000, lt: 110000}}", False),
        ("{order.weight: {gt: 2}}", True),
        ("{order.weight: {lt: 2.5}}", False),
        ("{customer.level: {in: [silver, gold]}}", True),
        ("{customer.level: {in: [silver, bronze]}}", False),
        ("{customer.level: {not_in: [silver, bronze]}}", True),
        ("{customer.level: {not_in: [gold]}}", False),
        ("{customer.order_count: {in: [1, 2, 3]}}", True),
        ("{customer.blacklisted: false}", True),
        ("{customer.blacklisted: true}", False),
        ("{order.channel: {exists: true}}", True),
        ("{order.coupon: {exists: true}}", False),
        ("{order.coupon: {exists: false}}", True),
        ("{customer: {exists: true}}", True),
        ("{ship_to.city: {matches: 'ang'}}", True),
        ("{ship_to.city: {matches: '^Shang'}}", True),
        ("{ship_to.city: {matches: '^hai'}}", False),
        ("{ship_to.city: {matches: 'hai$'}}", True),
        ("{ship_to.city: {matches: '^S[a-z]+i$'}}", True),
        ("{ship_to.city: {matches: '(Bei|Shang)hai'}}", True),
        ("{ship_to.city: {matches: 'Beijing|Tianjin'}}", False),
        # durable's own $mt gets these wrong (".*([gh]a).*" vs "Shanghai"); ours is re.search
        ("{ship_to.city: {matches: '[gh]a'}}", True),
        ("{ship_to.city: {matches: '(i|ai)$'}}", True),
        ("{ship_to.city: {matches: '^\\w+$'}}", True),
        ("{ship_to.city: {matches: '(?i)^shanghai$'}}", True),
        ("{not: {ship_to.city: {matches: '^Bei'}}}", True),
        ("{not: {ship_to.city: {matches: 'hai'}}}", False),
        ("{customer.level: gold, ship_to.country: CN}", True),
        ("{customer.level: gold, ship_to.country: US}", False),
    ],
)
def test_operator(load: Any, engine: RuleEngine, when: str, expected: bool) -> None:
    assert fires(load, engine, when) is expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{all: [{customer.level: gold}, {order.payable: {gt: 1000}}]}", True),
        ("{all: [{customer.level: gold}, {order.payable: {gt: 999999}}]}", False),
        ("{any: [{customer.level: silver}, {order.payable: {gt: 1000}}]}", True),
        ("{any: [{customer.level: silver}, {order.currency: USD}]}", False),
        ("{not: {customer.level: silver}}", True),
        ("{not: {customer.level: gold}}", False),
        ("{not: {any: [{customer.level: silver}, {order.currency: USD}]}}", True),
        ("{not: {all: [{customer.level: gold}, {order.currency: CNY}]}}", False),
        ("{not: {not: {customer.level: gold}}}", True),
        ("{not: {order.payable: {gt: 200000}}}", True),
        ("{not: {customer.level: {in: [gold, silver]}}}", False),
    ],
)
def test_combinators(load: Any, engine: RuleEngine, when: str, expected: bool) -> None:
    assert fires(load, engine, when) is expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{any_line: {sku: B2}}", True),
        ("{any_line: {sku: C3}}", False),
        ("{any_line: {attributes.cold_chain: true}}", True),
        ("{any_line: {sku: A1, quantity: {gt: 2}}}", False),  # both on the same line
        ("{any_line: {sku: B2, quantity: {gt: 2}}}", True),
        ("{any_line: {any: [{sku: Z9}, {quantity: {gte: 5}}]}}", True),
        ("{all_lines: {quantity: {gt: 1}}}", True),
        ("{all_lines: {quantity: {gt: 2}}}", False),
        ("{all_lines: {sku: {in: [A1, B2]}}}", True),
        ("{all_lines: {sku: {in: [A1, C3]}}}", False),
        ("{all_lines: {attributes.cold_chain: true}}", False),
        ("{not: {any_line: {sku: C3}}}", True),
        ("{any_line: {sku: {matches: '^B\\d$'}, quantity: 5}}", True),
        ("{any_line: {sku: {matches: '^B'}, quantity: 2}}", False),
        ("{all_lines: {not: {sku: {matches: '^C'}}}}", True),
        ("{not: {all_lines: {sku: {matches: '1$'}}}}", True),
        ("{not: {all_lines: {quantity: {gt: 2}}}}", True),
        ("{all: [{any_line: {sku: A1}}, {any_line: {sku: B2}}]}", True),
    ],
)
def test_line_quantifiers(load: Any, engine: RuleEngine, when: str, expected: bool) -> None:
    assert fires(load, engine, when) is expected


def test_empty_and_missing_lines(load: Any, engine: RuleEngine) -> None:
    for facts in ({"lines": []}, {}):
        assert fires(load, engine, "{any_line: {sku: A1}}", facts) is False
        assert fires(load, engine, "{all_lines: {sku: A1}}", facts) is True  # vacuous truth
        assert fires(load, engine, "{not: {any_line: {sku: A1}}}", facts) is True


@pytest.mark.parametrize(
    "when",
    [
        "{order.coupon_code: X}",
        "{order.coupon_code: {ne: X}}",
        "{order.coupon_code: {not_in: [X]}}",
        "{not: {order.coupon_code: X}}",
        "{order.discount: {lt: 5}}",
        "{not: {order.discount: {lt: 5}}}",
        "{order.coupon_code: {matches: X}}",
        "{not: {order.coupon_code: {matches: X}}}",
    ],
)
def test_missing_field_never_satisfies_a_comparison(load: Any, engine: RuleEngine, when: str) -> None:
    # Missing (or null) is unknown, in both polarities; only `exists` tests presence.
    assert fires(load, engine, when, schema=None) is False
    assert fires(load, engine, when, {"order": {"coupon_code": None, "discount": None}}, schema=None) is False


def test_missing_line_field_is_unknown(load: Any, engine: RuleEngine) -> None:
    facts = {"lines": [{"sku": "A1"}, {"sku": "B2", "quantity": 1}]}
    assert fires(load, engine, "{all_lines: {quantity: {lt: 10}}}", facts) is False
    assert fires(load, engine, "{any_line: {quantity: {lt: 10}}}", facts) is True
    assert fires(load, engine, "{any_line: {quantity: {exists: false}}}", facts) is True


def test_state_document_does_not_loop(load: Any, engine: RuleEngine) -> None:
    # durable re-asserts its state document after each action; `exists: false` must not match it.
    assert fires(load, engine, "{order.id: {exists: false}}", {"order": {}}, schema=None) is True
    assert fires(load, engine, "{sid: {exists: false}}", {}, schema=None) is True


def test_user_fields_named_like_durable_internals(load: Any, engine: RuleEngine) -> None:
    assert fires(load, engine, "{id: 7, sid: x}", {"id": 7, "sid": "x"}, schema=None) is True


def test_strict_types_without_schema(load: Any, engine: RuleEngine) -> None:
    # durable alone would match "1" == 1 and 1 == true; implied types make these errors instead.
    from oms_engine.rules import FactError

    ruleset = load("ruleset: t\nrules:\n  - name: r\n    when: {a: 1, b: true}\n    then: [flag]\n", schema=None)
    engine.load(ruleset)
    with pytest.raises(FactError, match="fact 'a': expected int, got str"):
        engine.evaluate("t", {"a": "1", "b": True})
    with pytest.raises(FactError, match="fact 'b': expected bool, got int"):
        engine.evaluate("t", {"a": 1, "b": 1})
    with pytest.raises(FactError, match="fact 'b'"):
        evaluate_reference(ruleset, {"a": 1, "b": 1})


def test_any_item_and_all_items_over_other_lists(load: Any, engine: RuleEngine) -> None:
    facts = {"order": {"packages": [{"weight": 3.5, "kind": "box"}, {"weight": 12, "kind": "pallet"}]}}
    any_heavy = "{any_item: {list: order.packages, where: {weight: {gt: 10.0}}}}"
    all_boxes = "{all_items: {list: order.packages, where: {kind: box}}}"
    assert fires(load, engine, any_heavy, facts, schema=None) is True
    assert fires(load, engine, all_boxes, facts, schema=None) is False
    assert fires(load, engine, all_boxes, {"order": {"packages": []}}, schema=None) is True


def test_exists_on_the_list_itself_keeps_elements_checked(load: Any, engine: RuleEngine) -> None:
    from oms_engine.rules import FactError

    when = "{lines: {exists: true}, any_line: {quantity: {gt: 1}}}"
    assert fires(load, engine, when, {"lines": [{"quantity": 2}]}, schema=None) is True
    with pytest.raises(FactError, match=r"fact 'lines\[0\].quantity': expected int, got str"):
        fires(load, engine, when, {"lines": [{"quantity": "2"}]}, schema=None)

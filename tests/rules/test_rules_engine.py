"""RuleEngine facade: ordering, modes, hot reload, state cleanup, errors, threads."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import pytest

from oms_engine.rules import FactError, RuleEngine, RuleEngineError, evaluate_reference
from oms_engine.rules.model import And, AnyItem, Compare

BLOCKING = """\
ruleset: blocking
description: Hold risky orders before they are split
mode: {mode}
rules:
  - name: big-order
    priority: 20
    when: {{order.payable: {{gt: 500000}}}}
    then:
      - hold: {{reason: big order}}
      - notify: {{team: risk}}
  - name: blacklisted-customer
    priority: 10
    when: {{customer.blacklisted: true}}
    then:
      - hold: {{reason: customer is on the blacklist}}
  - name: tie-a
    priority: 20
    when: {{order.currency: CNY}}
    then: [flag]
  - name: always
    priority: -5
    then: [flag]
"""

RISKY = {"order": {"payable": 900000, "currency": "CNY"}, "customer": {"blacklisted": True}}


def test_priority_then_file_order(load: Any, engine: RuleEngine) -> None:
    engine.load(load(BLOCKING.format(mode="all")))
    decision = engine.evaluate("blocking", RISKY)
    assert decision.fired_names == ["always", "blacklisted-customer", "big-order", "tie-a"]
    assert [a.name for a in decision.actions] == ["flag", "hold", "hold", "notify", "flag"]
    assert decision.actions[1].params == {"reason": "customer is on the blacklist"}
    assert [r.priority for r in decision.fired] == [-5, 10, 20, 20]


def test_mode_first_returns_only_the_highest_priority_match(load: Any, engine: RuleEngine) -> None:
    engine.load(load(BLOCKING.format(mode="first")))
    assert engine.evaluate("blocking", RISKY).fired_names == ["always"]


def test_decision_is_json_serialisable(load: Any, engine: RuleEngine) -> None:
    ruleset = load(BLOCKING.format(mode="all"))
    engine.load(ruleset)
    data = engine.evaluate("blocking", RISKY).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["version"] == ruleset.version and len(ruleset.version) == 16
    assert data["fired"][1] == {
        "name": "blacklisted-customer",
        "priority": 10,
        "actions": [{"hold": {"reason": "customer is on the blacklist"}}],
    }
    assert evaluate_reference(ruleset, RISKY).to_dict() == data


def test_names_version_unload(load: Any, engine: RuleEngine) -> None:
    ruleset = load(BLOCKING.format(mode="all"))
    engine.load(ruleset)
    assert engine.names() == ["blocking"]
    assert engine.version("blocking") == ruleset.version
    engine.unload("blocking")
    assert engine.names() == []
    with pytest.raises(KeyError):
        engine.evaluate("blocking", RISKY)


def test_hot_reload_replaces_rules(load: Any, engine: RuleEngine) -> None:
    engine.load(load(BLOCKING.format(mode="all")))
    v1 = engine.version("blocking")
    engine.load(load("ruleset: blocking\nrules:\n  - name: only\n    when: {order.currency: USD}\n    then: [flag]\n"))
    assert engine.version("blocking") != v1
    assert engine.evaluate("blocking", RISKY).fired_names == []
    assert engine.evaluate("blocking", {"order": {"currency": "USD"}}).fired_names == ["only"]


def test_reload_two_thousand_times_frees_old_rulesets(load: Any, engine: RuleEngine) -> None:
    rulesets = [load(BLOCKING.format(mode=mode)) for mode in ("all", "first")]
    for i in range(2000):
        engine.load(rulesets[i % 2])
        if i % 250 == 0:
            assert engine.evaluate("blocking", RISKY).fired
    assert len(engine._host._ruleset_list) == 1  # old durable rulesets were removed
    assert engine.evaluate("blocking", RISKY).fired_names == ["always"]


def test_failed_reload_keeps_the_old_ruleset(load: Any, engine: RuleEngine) -> None:
    good = load(BLOCKING.format(mode="all"))
    engine.load(good)
    # Bypass the loader (which would reject it): more and/or groups than durable_rules takes.
    huge = And(tuple(AnyItem("lines", And((Compare("sku", "eq", f"S{i}"), Compare("quantity", "eq", i))))
                     for i in range(15)))
    broken = dataclasses.replace(good, rules=(dataclasses.replace(good.rules[0], when=huge),), version="broken")
    with pytest.raises(RuleEngineError, match=r"rule 'big-order': .*error 113"):
        engine.load(broken)
    assert engine.version("blocking") == good.version
    assert engine.evaluate("blocking", RISKY).fired_names[0] == "always"


def test_many_sequential_evaluations_delete_their_state(load: Any, engine: RuleEngine) -> None:
    engine.load(load(BLOCKING.format(mode="all")))
    quiet = {"order": {"payable": 1, "currency": "USD"}, "customer": {"blacklisted": False}}
    for i in range(1200):
        facts = RISKY if i % 2 else quiet
        expected = ["always", "blacklisted-customer", "big-order", "tie-a"] if i % 2 else ["always"]
        assert engine.evaluate("blocking", facts).fired_names == expected


def test_no_match_returns_empty_decision(load: Any, engine: RuleEngine) -> None:
    engine.load(load("ruleset: quiet\nrules:\n  - name: r\n    when: {order.currency: USD}\n    then: [flag]\n"))
    for _ in range(1100):  # misses create states too; they must be deleted safely
        decision = engine.evaluate("quiet", {"order": {"currency": "CNY"}})
        assert decision.fired == () and decision.actions == []


def test_fact_of_wrong_type_is_rejected_before_durable(load: Any, engine: RuleEngine) -> None:
    engine.load(load(BLOCKING.format(mode="all")))
    with pytest.raises(FactError, match=r"fact 'order.payable': expected int, got str 'abc'"):
        engine.evaluate("blocking", {"order": {"payable": "abc"}})
    with pytest.raises(FactError, match=r"fact 'customer.blacklisted': expected bool, got int"):
        engine.evaluate("blocking", {"customer": {"blacklisted": 1}})
    # Only what the rules read is checked and posted: a ruleset that reads line quantities.
    engine.load(load("ruleset: bulk\nrules:\n  - name: many\n    when: {any_line: {quantity: {gt: 10}}}\n"
                     "    then: [flag]\n  - name: tagged\n    when: {customer.tags: {exists: true}}\n"
                     "    then: [flag]\n"))
    with pytest.raises(FactError, match=r"fact 'lines\[1\].quantity': expected int, got float"):
        engine.evaluate("bulk", {"lines": [{"quantity": 1}, {"quantity": 1.5}]})
    with pytest.raises(FactError, match=r"fact 'lines': expected a list"):
        engine.evaluate("bulk", {"lines": {"sku": "A"}})
    with pytest.raises(FactError, match=r"fact 'customer.tags\[0\]': expected str"):
        engine.evaluate("bulk", {"customer": {"tags": [1]}})
    # int is fine where float is declared; unknown extra fields are ignored
    assert engine.evaluate("blocking", {"order": {"weight": 3, "extra": object()}}).fired_names == ["always"]


def test_exception_inside_an_action_is_raised(load: Any) -> None:
    def explode(ruleset: str, rule: str) -> None:
        raise RuntimeError(f"audit store down while recording {ruleset}/{rule}")

    engine = RuleEngine(on_fire=explode)
    try:
        engine.load(load(BLOCKING.format(mode="all")))
        with pytest.raises(RuleEngineError, match="audit store down while recording blocking/always"):
            engine.evaluate("blocking", RISKY)
        # the failed evaluation's state was deleted and the engine still works
        for _ in range(1100):
            with pytest.raises(RuleEngineError):
                engine.evaluate("blocking", RISKY)
    finally:
        engine.close()


def test_on_fire_hook_sees_each_fired_rule(load: Any) -> None:
    seen: list[tuple[str, str]] = []
    engine = RuleEngine(on_fire=lambda ruleset, rule: seen.append((ruleset, rule)))
    try:
        engine.load(load(BLOCKING.format(mode="all")))
        engine.evaluate("blocking", RISKY)
    finally:
        engine.close()
    assert sorted(seen) == sorted(("blocking", n) for n in ["always", "blacklisted-customer", "big-order", "tie-a"])


def test_on_fire_hook_hears_of_a_rule_once_when_several_alternatives_hold(load: Any) -> None:
    seen: list[str] = []
    engine = RuleEngine(on_fire=lambda ruleset, rule: seen.append(rule))
    try:
        engine.load(load("ruleset: b\nrules:\n  - name: either\n    when: {any: [{order.currency: CNY}, "
                         "{order.payable: {gt: 1}}, {any_line: {sku: A}}]}\n    then: [flag]\n"))
        decision = engine.evaluate("b", {"order": {"currency": "CNY", "payable": 5}, "lines": [{"sku": "A"}]})
    finally:
        engine.close()
    assert decision.fired_names == ["either"] and seen == ["either"]


def test_concurrent_evaluations_from_eight_threads(load: Any) -> None:
    engines = [RuleEngine(), RuleEngine()]  # the lock must be shared across instances too
    for eng in engines:
        eng.load(load(BLOCKING.format(mode="all")))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        eng = engines[n % 2]
        try:
            start.wait()
            for i in range(150):
                payable = 900000 if (i + n) % 2 else 10
                names = eng.evaluate("blocking", {"order": {"payable": payable}}).fired_names
                assert names == (["always", "big-order"] if payable > 500000 else ["always"]), names
                if n == 0 and i % 50 == 0:
                    eng.load(load(BLOCKING.format(mode="all")))  # reload while others evaluate
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for eng in engines:
        eng.close()
    assert errors == []


REPLAYED = """\
ruleset: replay
rules:
  - name: gold-city
    when: {customer.level: {in: [gold, vip]}, ship_to.city: {matches: '^Shang'}}
    then: [flag]
  - name: cold
    when: {any_line: {attributes.cold_chain: true, sku: {matches: '1$'}}}
    then: [flag]
  - name: all-small
    when: {all_lines: {quantity: {lt: 10}, sku: {in: [A1, B2]}}}
    then: [flag]
  - name: tagged
    when: {customer.tags: {exists: true}, order.coupon: {exists: false}}
    then: [flag]
"""


def test_a_decision_keeps_the_facts_it_was_made_on_and_replays(load: Any, engine: RuleEngine) -> None:
    ruleset = load(REPLAYED)
    engine.load(ruleset)
    facts: dict[str, Any] = {
        "order": {"payable": 5, "coupon": None, "channel": "web"},
        "customer": {"level": "gold", "tags": ["b2b"], "blacklisted": False},
        "ship_to": {"city": "Shanghai", "country": "CN"},
        "lines": [{"sku": "A1", "quantity": 2, "attributes": {"cold_chain": True}}, {"sku": "B2", "quantity": 1}],
        "unknown": {"anything": 1},
    }
    decision = engine.evaluate("replay", facts)
    assert decision.fired_names == ["gold-city", "cold", "all-small", "tagged"]
    # Only what the rules read, checked; nulls dropped; none of the facade's own keys ("$m", "$n").
    projected = {
        "customer": {"level": "gold", "tags": ["b2b"]},
        "ship_to": {"city": "Shanghai"},
        "lines": [{"sku": "A1", "quantity": 2, "attributes": {"cold_chain": True}}, {"sku": "B2", "quantity": 1}],
    }
    assert decision.facts == projected
    assert evaluate_reference(ruleset, facts).facts == projected
    stored = json.loads(json.dumps(decision.to_dict()))
    assert stored["facts"] == projected
    facts["customer"]["level"] = "bronze"  # the caller's objects may change afterwards
    assert decision.facts["customer"]["level"] == "gold"
    replayed = engine.evaluate("replay", stored["facts"])
    assert replayed.fired_names == decision.fired_names
    assert replayed.to_dict() == decision.to_dict()
    assert evaluate_reference(ruleset, stored["facts"]).to_dict() == stored

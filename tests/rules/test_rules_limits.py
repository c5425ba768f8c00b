"""durable_rules' limits, and the facade staying inside them: nothing that loads may crash or fail.

Each engine-level case runs in a child process (tests/rules/child.py): on the code before
chunking, going over a limit aborted the whole interpreter.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from oms_engine.rules import RuleEngine, RulesetInvalid, evaluate_reference, limits, load_ruleset_text
from oms_engine.rules.compiler import compile_ruleset
from oms_engine.rules.terms import SENTINEL

from .child import run_python

CANARY = """
import durable_rules_engine
from durable.engine import MessageNotHandledException
from oms_engine.rules.engine import _QuietHost

M = {"$k": "f"}
L = json.loads(LIMITS)
names = iter(range(10**6))


def rules(conditions, sentinel=True):
    out = {f"r{i}": {"all": [{"m": {"$and": [dict(M), c]}}], "pri": i, "run": f"r{i}"}
           for i, c in enumerate(conditions)}
    if sentinel:
        out["zz__sentinel"] = {"all": [{"m": dict(M)}], "pri": 99999, "run": "zz__sentinel"}
    return out


def attempt(definition, fact):
    host = _QuietHost()
    name = f"p{next(names)}"
    try:
        host.register_rulesets({name: definition})
    except Exception as exc:
        return "create " + str(exc)[-3:]
    fired = []
    host.sink = fired
    try:
        host.assert_fact(name, {"sid": "s", "id": "s", **M, **fact})
    except MessageNotHandledException:
        pass
    except Exception as exc:
        # Reading or deleting that state aborts the process; freeing the whole ruleset is safe.
        durable_rules_engine.delete_ruleset(host._ruleset_directory[name]._handle)
        return "assert " + str(exc)[-3:]
    host.delete_state(name, "s")
    return f"ok {len(fired)}"


def nested(groups):
    cond = {"x0": 0}
    for j in range(groups - 1):  # the marker's $and is one more group
        cond = {("$and" if j % 2 else "$or"): [cond, {"$gt": {f"x{j + 1}": -1}}]}
    return cond


def always(count):
    return {f"r{i}": {"all": [{"m": dict(M)}], "pri": i, "run": f"r{i}"} for i in range(count)}


edge = lambda n: (n, n + 1)
out = {
    "groups": [attempt(rules([nested(n)]), {f"x{j}": 0 for j in range(40)}) for n in edge(L["groups"])],
    "properties": [attempt(rules([{"f0": 1}]), {f"f{i}": 1 for i in range(n - 3)}) for n in edge(L["properties"])],
    "element": [attempt(rules([{"$iany": {"l": {"$i.f0": 1}}}]), {"l": [{f"f{i}": 1 for i in range(n)}]})
                for n in edge(L["properties"])],
    # The fields are present, so no `$nex` passes (so many passing tests would overflow the stack).
    # Past these two limits durable's behaviour is undefined, so only the limits themselves are probed:
    # linkAlpha (rete.c) looks for a free slot in a node's fixed-size list by reading until it meets a 0,
    # and checks the list's length only after reading one entry past its end, in pool memory realloc()
    # left as it found it. Whether a full list is refused (errors 107, 108) or written past its end
    # depends on what that memory held: a run here saw 257 rules on one node accepted, most refuse them.
    "nex": [attempt(rules([{"$nex": {f"b{i}": 1}} for i in range(L["nex"])]), {f"b{i}": 1 for i in range(L["nex"])})],
    "node_rules": [attempt(always(L["node_rules"]), {"a": 0})],
    "string": [attempt(rules([{"s": "b"}]), {"s": "b" + "x" * (n - 1)}) for n in edge(L["string"])],
    # Last: after error 303 the process is not to be trusted.
    "stack": [attempt(rules([{"$gt": {"a": -i - 1}} for i in range(n)]), {"a": 0}) for n in edge(L["stack"])],
}
print(json.dumps(out))
"""


def test_durable_limits_are_where_the_compiler_assumes() -> None:
    """If a durable_rules upgrade moves a limit, this fails before the facade can crash."""
    measured = {
        "stack": limits.DURABLE_STACK,
        "groups": limits.MAX_GROUPS_PER_DURABLE_RULE,
        "properties": limits.MAX_OBJECT_PROPERTIES,
        "nex": limits.MAX_NEX_CHILDREN,
        "node_rules": limits.MAX_NODE_RULES,
        "string": limits.MAX_STRING_BYTES,
    }
    out = run_python(f"LIMITS = {json.dumps(json.dumps(measured))}\n" + textwrap.dedent(CANARY))
    assert out == {
        "stack": [f"ok {limits.DURABLE_STACK}", "assert 303"],
        "groups": ["ok 8", "create 113"],  # durable fires once per true alternative of the or/and nest
        "properties": ["ok 1", "assert 302"],
        "element": ["ok 1", "assert 302"],
        "nex": ["ok 0"],
        "node_rules": [f"ok {limits.MAX_NODE_RULES}"],
        "string": ["ok 0", "ok 1"],  # 65,536 bytes: 'b' + 'x' * 65535 == 'b'
    }
    assert limits.MAX_TERMS_PER_CHUNK <= limits.DURABLE_STACK


def test_65_and_more_distinct_rules_firing_together_do_not_crash() -> None:
    out = run_python("""
        engine = RuleEngine()
        result = {}
        for n in (64, 65, 130, 300):
            rs = ruleset([f"{{a: {{gt: {-i - 1}}}}}" for i in range(n)])
            result[n] = agree(engine, rs, [{"a": 0}, {"a": -40}])
        # One rule whose `any` has 70 true branches (one durable alternative each).
        wide = ruleset(["{any: [" + ", ".join(f"{{f{i}: {{gt: 0}}}}" for i in range(70)) + "]}"])
        result["any70"] = agree(engine, wide, [{f"f{i}": 1 for i in range(70)}, {"f69": 1}, {}])
        # and-ed `any` lists multiply: 8 x 8 = 64 alternatives, all true at once.
        product = ruleset(["{all: [{any: [" + ", ".join(f"{{a{i}: 1}}" for i in range(8)) + "]}, {any: ["
                           + ", ".join(f"{{b{i}: 1}}" for i in range(8)) + "]}]}"] * 3)
        facts = {**{f"a{i}": 1 for i in range(8)}, **{f"b{i}": 1 for i in range(8)}}
        result["product"] = agree(engine, product, [facts, {"a3": 1, "b0": 1}, {"a3": 1}])
        engine.close()
        print(json.dumps(result))
    """)
    assert out == {"64": [64, 24], "65": [65, 25], "130": [130, 90], "300": [300, 260],
                   "any70": [1, 1, 0], "product": [3, 3, 0]}


def test_300_always_true_rules_in_both_modes() -> None:
    out = run_python("""
        engine = RuleEngine()
        all_mode = agree(engine, ruleset([None] * 300), [{}, {"x": 1}])
        first = engine.evaluate("p", {}).fired_names[:3]
        first_mode = agree(engine, ruleset([None] * 300, mode="first"), [{}])
        chunks = len(engine._active["p"].internal_names)
        print(json.dumps([all_mode, first, first_mode, chunks, engine.evaluate("p", {}).fired_names]))
    """)
    # priority (i * 7) % 5 == 0 for r0, r5, r10, ...: ties keep file order.
    assert out == [[300, 300], ["r0", "r5", "r10"], [1], 5, ["r0"]]


def test_300_distinct_patterns_and_membership_lists() -> None:
    out = run_python("""
        engine = RuleEngine()
        patterns = ruleset([f"{{city: {{matches: '^c{i}$|^all'}}}}" for i in range(300)])
        negated = ruleset([f"{{not: {{city: {{matches: 'x{i}'}}}}}}" for i in range(300)], name="n")
        members = ruleset([f"{{city: {{in: [c{i}, d{i}, all]}}}}" for i in range(300)], name="m")
        on_lines = ruleset([f"{{any_line: {{sku: {{matches: 'S{i}$'}}}}}}" for i in range(150)]
                           + [f"{{all_lines: {{sku: {{in: [S{i}, S7, S9]}}}}}}" for i in range(150)], name="l")
        lines = {"lines": [{"sku": "S7"}, {"sku": "S9"}]}
        print(json.dumps([
            agree(engine, patterns, [{"city": "all"}, {"city": "c17"}, {}]),
            agree(engine, negated, [{"city": "x1"}, {"city": "y"}, {}]),
            agree(engine, members, [{"city": "all"}, {"city": "d299"}]),
            agree(engine, on_lines, [lines, {"lines": []}, {"lines": [{"sku": "S7"}, {}]}]),
        ]))
    """)
    # 'x1' is found by the pattern x1 only; S7 and S9 are the only skus, on two lines.
    assert out == [[300, 1, 0], [299, 300, 0], [300, 1], [2 + 150, 150, 1]]


def test_lists_of_1000_lines_and_wide_facts() -> None:
    out = run_python("""
        engine = RuleEngine()
        lines = [{"sku": f"S{i}", "qty": i, "cold": i % 2 == 0, "attrs": {f"k{j}": j for j in range(300)}}
                 for i in range(1000)]
        conditions = ([f"{{any_line: {{qty: {{gt: {i * 10}}}}}}}" for i in range(120)]
                      + [f"{{all_lines: {{qty: {{gte: {i}}}}}}}" for i in range(5)]
                      + ["{any_line: {sku: {matches: '99$'}, cold: false}}", "{any_line: {attrs: {exists: true}}}",
                         "{not: {any_line: {sku: {not_in: [S1, S2]}}}}", "{all_lines: {cold: {in: [true, false]}}}"])
        big = agree(engine, ruleset(conditions), [{"lines": lines}, {"lines": lines[:1]}, {"lines": []}, {}])
        # 300 rules on 300 different fields, an exists-only object of 400 keys, a 260-level path.
        wide = ruleset([f"{{f{i}: {i}}}" for i in range(300)] + ["{customer: {exists: true}}"])
        facts = {**{f"f{i}": i for i in range(300)}, "customer": {f"k{i}": i for i in range(400)}}
        many = agree(engine, wide, [facts, {"customer": {}}])
        long_text = "b" + "x" * 65535  # durable alone would find it equal to 'b'
        text = agree(engine, ruleset(["{s: b}", "{s: {ne: b}}", "{s: {in: [b, c]}}"]), [{"s": long_text}, {"s": "b"}])
        print(json.dumps([big, many, text]))
    """)
    # 1000 lines: 100 any_line (qty up to 999), all_lines qty >= 0, S99 not cold, attrs, cold in [..].
    # One line (S0): qty >= 0, attrs, cold. No lines: the 5 all_lines, not any_line, cold in [..].
    assert out == [[104, 3, 7, 7], [301, 1], [1, 2]]


def test_a_durable_error_during_evaluation_replaces_the_chunk_instead_of_crashing() -> None:
    out = run_python("""
        from oms_engine.rules import RuleEngineError
        from oms_engine.rules import engine as engine_module

        engine = RuleEngine()
        rs = ruleset(["{a: 1}", "{b: 2}"])
        engine.load(rs)
        real_post = engine_module.post_document

        def oversized(chunk, doc, flags):  # 300 properties: every assert fails with error 302
            posted = real_post(chunk, doc, flags)
            posted["junk"] = {f"k{i}": i for i in range(300)}
            return posted

        engine_module.post_document = oversized
        try:
            engine.evaluate("p", {"a": 1})
            error = None
        except RuleEngineError as exc:
            error = str(exc)
        engine_module.post_document = real_post
        # The broken state was never read or deleted (that aborts); the chunk was rebuilt.
        after = [engine.evaluate("p", {"a": 1, "b": 2}).fired_names for _ in range(1100)][-1]
        engine.close()
        print(json.dumps([error, after]))
    """)
    assert out == ["ruleset 'p' failed during evaluation: Could not assert fact, error code: 302", ["r0", "r1"]]


# ---- Refused at load time, with file, line and rule ---------------------------------------------


def _errors(text: str) -> list[str]:
    with pytest.raises(RulesetInvalid) as info:
        load_ruleset_text(textwrap.dedent(text), filename="rules/wide.yaml")
    return [str(e) for e in info.value.errors]


def test_a_rule_reading_more_fields_than_durable_takes_is_refused() -> None:
    fields = ", ".join(f"f{i}: {i}" for i in range(260))
    element = ", ".join(f"g{i}: {i}" for i in range(260))
    assert _errors(f"""\
        ruleset: wide
        rules:
          - name: ok
            when: {{f0: 1}}
            then: [flag]
          - name: too-wide
            when: {{{fields}}}
            then: [flag]
          - name: too-wide-lines
            when: {{any_line: {{{element}}}}}
            then: [flag]
        """) == [
        "rules/wide.yaml:7: rule 'too-wide': condition too complex for the rule engine: it reads too many fields "
        "(264 properties to post, durable_rules takes 254, error 302); split the rule",
        "rules/wide.yaml:10: rule 'too-wide-lines': condition too complex for the rule engine: it reads too many "
        "fields of each 'lines' element (260 properties, durable_rules takes 254, error 302); split the rule",
    ]


def test_a_condition_expanding_to_too_many_alternatives_is_refused() -> None:
    left = ", ".join(f"{{a{i}: 1}}" for i in range(17))
    right = ", ".join(f"{{b{i}: 1}}" for i in range(17))
    assert _errors(f"""\
        ruleset: wide
        rules:
          - name: product
            when: {{all: [{{any: [{left}]}}, {{any: [{right}]}}]}}
            then: [flag]
        """) == [
        "rules/wide.yaml:4: rule 'product': condition too complex for the rule engine: it expands to more than 256 "
        "alternatives (and-ed any/in lists multiply); split the rule"
    ]


def test_equalities_on_one_field_count_as_one_alternative() -> None:
    # `any` of equalities on one field is membership: 17 x 17 alternatives would be refused.
    left = ", ".join(f"{{a: {i}}}" for i in range(17))
    right = ", ".join(f"{{b: {{in: [{', '.join(str(i) for i in range(17))}]}}}}" for _ in range(1))
    text = f"ruleset: wide\nrules:\n  - name: r\n    when: {{all: [{{any: [{left}]}}, {right}]}}\n    then: [flag]\n"
    rs = load_ruleset_text(text, filename="rules/wide.yaml")
    assert [len(c.definition) for c in compile_ruleset(rs).chunks] == [2]  # one term + the sentinel
    engine = RuleEngine()
    try:
        engine.load(rs)
        for facts in ({"a": 3, "b": 16}, {"a": 3, "b": 17}, {"a": 18, "b": 1}, {"b": 1}):
            assert engine.evaluate("wide", facts).fired_names == evaluate_reference(rs, facts).fired_names
    finally:
        engine.close()


def test_text_literals_longer_than_the_engine_compares_exactly_are_refused() -> None:
    long_text = "x" * (limits.MAX_LITERAL_CHARS + 1)
    text = f"ruleset: wide\nrules:\n  - name: r\n    when: {{s: {{in: [a, {long_text}]}}}}\n    then: [flag]\n"
    assert _errors(text) == [
        f"rules/wide.yaml:4: rule 'r': text values are limited to {limits.MAX_LITERAL_CHARS} characters, "
        f"this one has {limits.MAX_LITERAL_CHARS + 1}"
    ]
    # A pattern is matched in Python: no such limit.
    load_ruleset_text(f"ruleset: w\nrules:\n  - name: r\n    when: {{s: {{matches: '{long_text}'}}}}\n    then: [f]\n",
                      filename="w.yaml")


def test_chunks_respect_every_budget() -> None:
    conditions: list[Any] = [{"any": [{f"f{i}": 1}, {f"g{i}": {"exists": False}}]} for i in range(200)]
    conditions += [{"any_line": {"sku": f"S{i}", "qty": {"gt": i}}} for i in range(100)]
    import yaml

    rules = [{"name": f"r{i}", "when": c, "then": ["flag"]} for i, c in enumerate(conditions)]
    rs = load_ruleset_text(yaml.safe_dump({"ruleset": "b", "rules": rules}), filename="b.yaml")
    compiled = compile_ruleset(rs)
    assert len(compiled.chunks) > 1
    for chunk in compiled.chunks:
        terms = [k for k in chunk.definition if k != SENTINEL]
        assert len(terms) <= limits.MAX_TERMS_PER_CHUNK
        assert len(chunk.fields) + 4 + (1 + len(chunk.flags) if chunk.flags else 0) <= limits.MAX_OBJECT_PROPERTIES
        for name in terms:
            assert "$or" not in json.dumps(chunk.definition[name])

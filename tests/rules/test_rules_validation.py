"""Every validation problem is reported with the file and line staff need to fix it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from oms_engine.rules import (
    ActionCatalog,
    ActionSpec,
    FactSchema,
    RuleError,
    RulesetInvalid,
    load_rules_dir,
    load_ruleset_file,
    load_ruleset_text,
)
from oms_engine.rules.yaml_source import YamlProblem, load_located

FILE = "rules/blocking.yaml"


def errors_of(load: Any, text: str, **kwargs: Any) -> list[str]:
    with pytest.raises(RulesetInvalid) as info:
        load(textwrap.dedent(text), filename=FILE, **kwargs)
    assert str(info.value) == "\n".join(str(e) for e in info.value.errors)
    return [str(e) for e in info.value.errors]


def test_rule_error_format() -> None:
    err = RuleError(FILE, 12, "big-order", "unknown field 'custmer.level' (did you mean 'customer.level'?)")
    assert (
        str(err)
        == "rules/blocking.yaml:12: rule 'big-order': unknown field 'custmer.level' (did you mean 'customer.level'?)"
    )
    assert str(RuleError(FILE, 3, None, "boom")) == "rules/blocking.yaml:3: boom"


def test_all_errors_of_a_file_are_collected(load: Any) -> None:
    text = """\
    ruleset: blocking
    mode: all
    rules:
      - name: big-order
        priority: 20
        when:
          all:
            - order.payable: {gt: 500000}
            - custmer.level: gold
        then:
          - hold: {reason: big}
      - name: big-order
        priority: high
        when: {order.payable: {gt: "abc"}}
        then: []
      - name: regex
        when: {ship_to.city: {matches: "[a-"}}
        then:
          - split: {strategy: by_color}
      - name: ops
        when: {order.currency: {like: CNY}}
        then:
          - hodl: {reason: x}
    """
    assert errors_of(load, text) == [
        "rules/blocking.yaml:9: rule 'big-order': unknown field 'custmer.level' (did you mean 'customer.level'?)",
        "rules/blocking.yaml:12: rule 'big-order': duplicate rule name (first defined at line 4)",
        "rules/blocking.yaml:13: rule 'big-order': 'priority' must be an integer, not 'high'",
        "rules/blocking.yaml:14: rule 'big-order': field 'order.payable' is int, but 'abc' is str",
        "rules/blocking.yaml:15: rule 'big-order': 'then' must be a non-empty list of actions",
        "rules/blocking.yaml:17: rule 'regex': regex '[a-' does not compile: unterminated character set at position 0",
        "rules/blocking.yaml:19: rule 'regex': action 'split': unknown split strategy 'by_color'; "
        "known: by_attribute, by_warehouse",
        "rules/blocking.yaml:21: rule 'ops': unknown operator 'like'",
        "rules/blocking.yaml:23: rule 'ops': unknown action 'hodl' (did you mean 'hold'?)",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("when: {customer.level: {in: [gold, 1]}}", "4: rule 'r': field 'customer.level' is str, but 1 is int"),
        ("when: {order.weight: {gt: 1}}", None),  # int literal where float is declared
        ("when: {order.payable: {gt: 1.5}}", "4: rule 'r': field 'order.payable' is int, but 1.5 is float"),
        ("when: {customer.blacklisted: 1}", "4: rule 'r': field 'customer.blacklisted' is bool, but 1 is int"),
        ("when: {order.currency: {gt: A}}", "4: rule 'r': 'gt' needs a number field, but 'order.currency' is str"),
        (
            "when: {order.payable: {matches: '1'}}",
            "4: rule 'r': 'matches' needs a text field, but 'order.payable' is int",
        ),
        (
            "when: {order.currency: null}",
            "4: rule 'r': null is not a comparable value for 'order.currency' (use exists: false)",
        ),
        ("when: {order.currency: {in: []}}", "4: rule 'r': 'in' needs a non-empty list of values"),
        ("when: {order.currency: {exists: yes-please}}", "4: rule 'r': 'exists' takes true or false, not 'yes-please'"),
        ("when: {lines.sku: A}", "4: rule 'r': field 'lines.sku' belongs to the list 'lines'; use any_line/all_lines"),
        ("when: {any_line: {skus: A}}", "4: rule 'r': unknown field 'lines.skus' (did you mean 'lines.sku'?)"),
        ("when: {any_line: {any_line: {sku: A}}}", "4: rule 'r': line/item quantifiers cannot be nested"),
        ("when: {all: []}", "4: rule 'r': 'all' needs a non-empty list of conditions"),
        ("when: {alll: []}", "4: rule 'r': 'alll' is not a condition keyword (did you mean 'all'?)"),
        (
            "when: {customer.level: [a, b]}",
            "4: rule 'r': use {in: [...]} to compare 'customer.level' with a list of values",
        ),
        ("when: {$k: f}", "4: rule 'r': '$k' is neither a field path nor a condition keyword"),
        (
            "when: {customer.tags: x}",
            "4: rule 'r': field 'customer.tags' is a list[str]; only 'exists' is supported on it",
        ),
        (
            "when: {ship_to.city: {matches: '(unclosed'}}",
            "4: rule 'r': regex '(unclosed' does not compile: missing ), unterminated subpattern at position 0",
        ),
        ("when: {ship_to.city: {matches: ''}}", "4: rule 'r': regex must be a non-empty string"),
        ("when: {not: {ship_to.city: {matches: '^\\d+$'}}}", None),
        (
            "when: {all_lines: {any: [{sku: A}, {quantity: 1}]}}",
            "4: rule 'r': all_lines cannot OR conditions on different fields or with operators other than equality "
            "(rule engine limitation); express it with any_line/not or split the rule",
        ),
        ("when: {order.payable: {gt: 1}}\n    then: [hold]", "5: rule 'r': action 'hold': 'reason' (text) is required"),
        (
            "when: {order.payable: {gt: 1}}\n    then: [{hold: [x]}]",
            "5: rule 'r': parameters of action 'hold' must be a mapping or empty, not ['x']",
        ),
        ("whn: {order.payable: 1}", "4: rule 'r': unknown key 'whn' (did you mean 'when'?)"),
        ("priority: 1.5", "4: rule 'r': 'priority' must be an integer, not 1.5"),
    ],
)
def test_single_error(load: Any, body: str, expected: str | None) -> None:
    then = "" if "then:" in body else "\n    then: [flag]"
    text = f"ruleset: blocking\nrules:\n  - name: r\n    {body}{then}\n"
    if expected is None:
        load(text)
        return
    assert errors_of(load, text) == [f"{FILE}:{expected}"]


def test_top_level_shape(load: Any) -> None:
    assert errors_of(load, "- a\n- b\n") == [f"{FILE}:1: a rule file must be a mapping with 'ruleset' and 'rules'"]
    assert errors_of(load, "ruleset: Blocking\nrulez: []\nmode: some\n") == [
        f"{FILE}:1: 'ruleset' must be a name like 'blocking' ([a-z0-9][a-z0-9_-]*)",
        f"{FILE}:1: 'rules' must be a list of rules",
        f"{FILE}:2: unknown top-level key 'rulez' (did you mean 'rules'?)",
        f"{FILE}:3: 'mode' must be 'all' or 'first', not 'some'",
    ]
    assert errors_of(
        load, "ruleset: b\nrules:\n  - name: a\n    then: [flag]\n  - just-a-string\n  - when: {}\n    then: [flag]\n"
    ) == [
        f"{FILE}:5: each rule must be a mapping with 'name', 'when' and 'then'",
        f"{FILE}:6: rule has no 'name'",
    ]


def test_yaml_syntax_error_has_the_line(load: Any) -> None:
    assert errors_of(load, "ruleset: b\nrules:\n  - name: a\n    when: {x: 1\n    then: [flag]\n") == [
        f"{FILE}:5: invalid YAML: expected ',' or '}}', but got ':'".replace("}}", "}")
    ]


def test_python_tags_are_refused_not_executed(load: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"""\
    ruleset: b
    rules:
      - name: a
        when: !!python/object/apply:os.system ["touch {marker}"]
        then: [flag]
      - name: c
        when: {{order.payable: !!python/object:builtins.object {{}}}}
        then: [flag]
    """
    refused = "(only plain data is allowed)"
    assert errors_of(load, text) == [
        f"{FILE}:4: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' {refused}",
        f"{FILE}:7: unsupported YAML tag 'tag:yaml.org,2002:python/object:builtins.object' {refused}",
    ]
    assert not marker.exists()


def test_duplicate_keys_are_errors(load: Any) -> None:
    text = (
        "ruleset: b\nrules:\n  - name: a\n    when:\n"
        "      order.payable: {gt: 1}\n      order.payable: {lt: 3}\n    then: [flag]\n"
    )
    assert errors_of(load, text) == [f"{FILE}:6: duplicate key 'order.payable'"]


def test_without_schema_types_must_be_consistent() -> None:
    text = (
        "ruleset: b\nrules:\n  - name: a\n    when: {x: 1}\n    then: [flag]\n"
        "  - name: c\n    when: {x: one}\n    then: [flag]\n"
    )
    with pytest.raises(RulesetInvalid) as info:
        load_ruleset_text(text, filename=FILE)
    assert [str(e) for e in info.value.errors] == [
        f"{FILE}:7: rule 'c': field 'x' is compared with str here but with int at line 4"
    ]


def test_without_catalog_any_action_is_accepted() -> None:
    ruleset = load_ruleset_text("ruleset: b\nrules:\n  - name: a\n    then: [{anything: {x: 1}}]\n", filename=FILE)
    assert ruleset.rules[0].then[0].params == {"x": 1}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_load_rules_dir_per_ruleset_schema_and_catalog(tmp_path: Path) -> None:
    write(
        tmp_path,
        "blocking.yaml",
        "ruleset: blocking\nrules:\n  - name: a\n    when: {order.payable: {gt: 1}}\n    then: [hold]\n",
    )
    write(
        tmp_path,
        "routing.yml",
        "ruleset: routing\nrules:\n  - name: a\n    when: {ship_to.country: CN}\n    then: [route]\n",
    )
    (tmp_path / "tests").mkdir()
    write(tmp_path / "tests", "broken.yaml", "this: [is not a ruleset")
    write(tmp_path, "README.md", "not a rule file")
    schemas = {"blocking": FactSchema({"order.payable": int}), "routing": FactSchema({"ship_to.country": str})}
    actions = {"blocking": ActionCatalog([ActionSpec("hold")]), "routing": ActionCatalog([ActionSpec("route")])}
    loaded = load_rules_dir(tmp_path, schemas=schemas, actions=actions)
    assert sorted(loaded) == ["blocking", "routing"]
    assert loaded["routing"].path == str(tmp_path / "routing.yml")
    with pytest.raises(RulesetInvalid) as info:
        load_rules_dir(
            tmp_path, schemas=schemas, actions={"blocking": actions["routing"], "routing": actions["routing"]}
        )
    assert [str(e) for e in info.value.errors] == [f"{tmp_path / 'blocking.yaml'}:5: rule 'a': unknown action 'hold'"]


def test_load_rules_dir_collects_errors_of_all_files_and_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "ruleset: blocking\nrules: []\n")
    write(tmp_path, "b.yaml", "\n\nruleset: blocking\nrules: []\n")
    write(tmp_path, "c.yaml", "ruleset: c\nrules:\n  - name: x\n    then: []\n")
    with pytest.raises(RulesetInvalid) as info:
        load_rules_dir(tmp_path)
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'b.yaml'}:3: duplicate ruleset name 'blocking' (also in {tmp_path / 'a.yaml'})",
        f"{tmp_path / 'c.yaml'}:4: rule 'x': 'then' must be a non-empty list of actions",
    ]


def test_load_ruleset_file_records_path_version_and_source(tmp_path: Path, schema: FactSchema) -> None:
    import hashlib

    path = write(tmp_path, "blocking.yaml", "ruleset: blocking\ndescription: Hold risky orders\nrules: []\n")
    ruleset = load_ruleset_file(path, schema=schema)
    assert ruleset.path == str(path)
    assert ruleset.version == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert ruleset.source == path.read_text()
    assert (ruleset.name, ruleset.description, ruleset.mode) == ("blocking", "Hold risky orders", "all")


def test_conditions_too_complex_for_durable_are_load_errors(load: Any) -> None:
    # durable_rules caps and/or groups per rule (error 113); the compiler counts them in
    # Python, because a definition durable refuses leaks memory in its C engine.
    many = ", ".join(f"{{any_line: {{sku: S{i}, quantity: {i}}}}}" for i in range(15))
    text = f"""\
    ruleset: blocking
    rules:
      - name: fine
        then: [flag]
      - name: huge
        when: {{all: [{many}]}}
        then: [flag]
    """
    assert errors_of(load, text) == [
        f"{FILE}:6: rule 'huge': condition too complex for the rule engine: 15 any_line/any_item tests with "
        "several conditions each are and-ed, at most 14 fit in one durable rule (it refuses more with error 113); "
        "split the rule"
    ]


def test_wide_line_conditions_are_split_into_several_durable_rules(load: Any) -> None:
    # 16 alternatives inside any_line used to be one durable rule over its limit (error 113);
    # each alternative is now a durable rule of its own.
    skus = ", ".join(f"{{sku: S{i}}}" for i in range(4))
    quantities = ", ".join(f"{{quantity: {i}}}" for i in range(4))
    text = f"""\
    ruleset: blocking
    rules:
      - name: huge
        when: {{any_line: {{all: [{{any: [{skus}]}}, {{any: [{quantities}]}}]}}}}
        then: [flag]
    """
    ruleset = load(textwrap.dedent(text), filename=FILE)
    from oms_engine.rules import RuleEngine, evaluate_reference

    engine = RuleEngine()
    try:
        engine.load(ruleset)
        for facts in ({"lines": [{"sku": "S3", "quantity": 2}]}, {"lines": [{"sku": "S3", "quantity": 9}]}, {}):
            expected = evaluate_reference(ruleset, facts).fired_names
            assert engine.evaluate("blocking", facts).fired_names == expected
        assert engine.evaluate("blocking", {"lines": [{"sku": "S1", "quantity": 3}]}).fired_names == ["huge"]
    finally:
        engine.close()


def test_yaml_anchors_and_aliases_are_refused_with_their_line(load: Any) -> None:
    text = """\
    ruleset: blocking
    rules:
      - name: a
        when: &big {order.payable: {gt: 1}}
        then: [flag]
      - name: b
        when: *big
        then: [flag]
    """
    assert errors_of(load, text) == [
        f"{FILE}:4: YAML anchor '&big' is not allowed: write the value out where it is needed",
        f"{FILE}:7: YAML alias '*big' is not allowed: write the value out where it is needed",
    ]


def test_a_billion_laughs_file_is_refused_before_anything_expands(load: Any) -> None:
    # Each line holds 9 references to the one before: 9**6 strings if the aliases were expanded.
    levels = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 6)]
    errors = errors_of(load, "ruleset: b\nrules: []\n" + "\n".join(levels) + "\n")
    assert errors == [
        f"{FILE}:{3 + i}: YAML anchor '&l{i}' is not allowed: write the value out where it is needed" for i in range(6)
    ]


def test_load_plain_gives_plain_data_and_refuses_what_is_not_plain() -> None:
    from oms_engine.rules.yaml_source import YamlProblem, load_plain

    data = load_plain("a: 1\nb: [x, {c: 2.5, d: null, e: true}]\n3: three\n", filename="config.yaml")
    assert data == {"a": 1, "b": ["x", {"c": 2.5, "d": None, "e": True}], 3: "three"}
    assert type(data) is dict and type(data["b"]) is list and type(data["b"][1]) is dict
    assert load_plain("", filename="config.yaml") is None
    refused = [
        ("a: 1\nb: 2\na: 3\n", "config.yaml:3: duplicate key 'a'"),
        ("1: x\n1: y\n", "config.yaml:2: duplicate key 1"),
        ("a: !!python/object/apply:os.system [echo]\n",
         "config.yaml:1: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' "
         "(only plain data is allowed)"),
        ("a: !!binary aGk=\n", "config.yaml:1: unsupported YAML tag 'tag:yaml.org,2002:binary' "
         "(only plain data is allowed)"),
        ("a: &x 1\n", "config.yaml:1: YAML anchor '&x' is not allowed: write the value out where it is needed"),
        ("a: 1\nb: *x\n", "config.yaml:2: YAML alias '*x' is not allowed: write the value out where it is needed"),
        ("? [a, b]\n: 1\n", "config.yaml:1: mapping keys must be plain values"),
        ("a: [1, 2\n", "config.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>'"),
        ("a: 1\n---\nb: 2\n", "config.yaml:2: invalid YAML: but found another document"),
        ("[" * 5000 + "]" * 5000, "config.yaml: invalid YAML: nested too deeply"),
    ]
    for text, message in refused:
        with pytest.raises(YamlProblem) as info:
            load_plain(text, filename="config.yaml")
        assert str(info.value) == message
        assert info.value.filename == "config.yaml"


def test_a_control_character_in_a_rule_file_is_an_error_naming_its_line() -> None:
    with pytest.raises(YamlProblem) as caught:
        load_located("ruleset: blocking\nrules:\n  - name: x\x0e\n")
    assert caught.value.line == 3 and "U+000E" in str(caught.value)

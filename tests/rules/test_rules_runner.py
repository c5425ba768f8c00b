"""The YAML rule-test runner reports passes and failures with file, line, expected and actual."""

from __future__ import annotations

import shutil
from pathlib import Path

from oms_engine.rules import ActionCatalog, FactSchema, run_rule_tests

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def test_shipped_fixture_cases_pass(schema: FactSchema, catalog: ActionCatalog) -> None:
    results = run_rule_tests(FIXTURES, FIXTURES / "tests", schemas=schema, actions=catalog)
    assert [(Path(r.file).name, r.case, r.passed) for r in results] == [
        ("blocking.yaml", "blacklisted customers are held", True),
        ("blocking.yaml", "ordinary order passes", True),
        ("blocking.yaml", "big first order with cold-chain goods", True),
        ("routing.yaml", "remote region wins over domestic", True),
        ("routing.yaml", "abroad", True),
    ], [r.message for r in results if not r.passed]


def _copy_rules(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES, rules)
    return rules, rules / "tests"


def test_failures_name_file_line_and_show_expected_vs_actual(
    tmp_path: Path, schema: FactSchema, catalog: ActionCatalog
) -> None:
    rules, tests = _copy_rules(tmp_path)
    (tests / "routing.yaml").unlink()
    bad = tests / "blocking.yaml"
    bad.write_text(
        "ruleset: blocking\n"
        "cases:\n"
        "  - name: wrong expectation\n"
        "    facts: {customer: {blacklisted: true}}\n"
        "    expect: {fired: [cold-chain]}\n"
        "  - name: wrong actions\n"
        "    facts: {customer: {blacklisted: true}}\n"
        "    expect: {actions: [{hold: {reason: other}}]}\n"
        "  - name: bad facts\n"
        "    facts: {customer: {blacklisted: maybe}}\n"
        "    expect: {fired: []}\n"
    )
    results = run_rule_tests(rules, tests, schemas=schema, actions=catalog)
    assert [r.passed for r in results] == [False, False, False]
    assert results[0].message == (
        f"{bad}:3: case 'wrong expectation': fired: expected ['cold-chain'], got ['blacklisted-customer']"
    )
    assert results[1].message == (
        f"{bad}:6: case 'wrong actions': actions: expected [{{'hold': {{'reason': 'other'}}}}], "
        "got [{'hold': {'reason': 'customer is on the blacklist'}}]"
    )
    assert results[2].message == (
        f"{bad}:9: case 'bad facts': evaluation failed: fact 'customer.blacklisted': expected bool, got str 'maybe'"
    )


def test_unknown_ruleset_is_a_failure_with_line(tmp_path: Path, schema: FactSchema, catalog: ActionCatalog) -> None:
    rules, tests = _copy_rules(tmp_path)
    (tests / "other.yaml").write_text("# routing rules\n\nruleset: shipping\ncases: []\n")
    results = {Path(r.file).name: r for r in run_rule_tests(rules, tests, schemas=schema, actions=catalog)}
    assert not results["other.yaml"].passed
    assert results["other.yaml"].message == f"{tests / 'other.yaml'}:3: unknown ruleset 'shipping'"


def test_invalid_rules_are_reported_as_failures(tmp_path: Path, schema: FactSchema, catalog: ActionCatalog) -> None:
    rules, tests = _copy_rules(tmp_path)
    (rules / "broken.yaml").write_text("ruleset: broken\nrules:\n  - name: a\n    then: [explode]\n")
    results = run_rule_tests(rules, tests, schemas=schema, actions=catalog)
    assert len(results) == 1 and not results[0].passed
    assert results[0].message == f"{rules / 'broken.yaml'}:4: rule 'a': unknown action 'explode'"

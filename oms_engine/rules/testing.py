"""Runner for YAML rule tests (`rules/tests/*.yaml`), checking both evaluators."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .decision import Decision
from .engine import RuleEngine
from .errors import FactError, RuleEngineError, RulesetInvalid
from .loader import CatalogChoice, SchemaChoice, load_rules_dir
from .parse import plain
from .reference import evaluate_reference
from .yaml_source import LList, LMap, YamlProblem, load_located


@dataclass(frozen=True)
class RuleTestResult:
    file: str
    case: str
    passed: bool
    message: str = ""


def _actions_as_yaml(decision: Decision) -> list[dict[str, Any]]:
    return [{a.name: (dict(a.params) or None)} for a in decision.actions]


def _normalise_expected_actions(expected: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in expected:
        if isinstance(item, str):
            out.append({item: None})
        else:
            out.append({k: (v or None) for k, v in plain(item).items()})
    return out


def _check_case(engine: RuleEngine, ruleset_name: str, case: LMap, where: str) -> str | None:
    facts = plain(case.get("facts") or {})
    expect = case.get("expect") or {}
    if not isinstance(expect, LMap):
        return f"{where}: 'expect' must be a mapping"
    try:
        actual = engine.evaluate(ruleset_name, facts)
        reference = evaluate_reference(engine.ruleset(ruleset_name), facts)
    except (FactError, RuleEngineError) as exc:
        return f"{where}: evaluation failed: {exc}"
    if actual.fired_names != reference.fired_names:
        return f"{where}: engine fired {actual.fired_names} but the reference evaluator fired {reference.fired_names}"
    problems = []
    if "fired" in expect:
        wanted = plain(expect["fired"])
        if wanted != actual.fired_names:
            problems.append(f"fired: expected {wanted}, got {actual.fired_names}")
    if "actions" in expect:
        wanted_actions = _normalise_expected_actions(plain(expect["actions"]) or [])
        got = _actions_as_yaml(actual)
        if wanted_actions != got:
            problems.append(f"actions: expected {wanted_actions}, got {got}")
    return f"{where}: " + "; ".join(problems) if problems else None


def run_rule_tests(
    rules_dir: str | Path,
    tests_dir: str | Path,
    *,
    schemas: SchemaChoice = None,
    actions: CatalogChoice = None,
) -> list[RuleTestResult]:
    """One result per case (plus one per unreadable file or unknown ruleset)."""
    results: list[RuleTestResult] = []
    try:
        rulesets = load_rules_dir(rules_dir, schemas=schemas, actions=actions)
    except RulesetInvalid as exc:
        return [RuleTestResult(str(e.file), "<load>", False, str(e)) for e in exc.errors]
    engine = RuleEngine()
    try:
        for ruleset in rulesets.values():
            engine.load(ruleset)
        for path in sorted(Path(tests_dir).glob("*.y*ml")):
            results.extend(_run_file(engine, path))
    finally:
        engine.close()
    return results


def _run_file(engine: RuleEngine, path: Path) -> list[RuleTestResult]:
    file = str(path)
    try:
        tree = load_located(path.read_text(encoding="utf-8"))
    except YamlProblem as exc:
        return [RuleTestResult(file, "<file>", False, f"{file}:{exc.line}: {exc.message}")]
    if not isinstance(tree, LMap) or not isinstance(tree.get("cases"), LList):
        return [RuleTestResult(file, "<file>", False, f"{file}:1: a test file needs 'ruleset' and a list of 'cases'")]
    name = tree.get("ruleset")
    if name not in engine.names():
        return [RuleTestResult(file, "<file>", False, f"{file}:{tree.line_of('ruleset')}: unknown ruleset {name!r}")]
    results = []
    cases: LList = tree["cases"]
    for i, case in enumerate(cases):
        line = cases.line_of(i)
        if not isinstance(case, LMap):
            results.append(RuleTestResult(file, f"#{i + 1}", False, f"{file}:{line}: a case must be a mapping"))
            continue
        case_name = str(case.get("name", f"#{i + 1}"))
        where = f"{file}:{line}: case '{case_name}'"
        problem = _check_case(engine, str(name), case, where)
        results.append(RuleTestResult(file, case_name, problem is None, problem or ""))
    return results

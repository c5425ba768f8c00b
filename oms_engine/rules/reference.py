"""Pure-Python evaluator with the same semantics as the compiled engine.

Used for dry runs, for the rule-test runner's cross-check, and as the oracle in
property tests. Semantics are Kleene three-valued logic: a comparison on a
missing (or null) field is *unknown*; `not unknown` is unknown; a rule fires
only when its condition is definitely true. `exists` is never unknown.
`any_line` over an empty or missing list is false, `all_lines` is true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .decision import Decision, FiredRule
from .facts import MISSING, lookup, prepare_facts
from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or, Rule, Ruleset
from .regex import search

Truth = bool | None


# What each operator means, once: the reference evaluator and the decision memo's signatures read it.
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda value, literal: bool(value == literal),
    "ne": lambda value, literal: bool(value != literal),
    "gt": lambda value, literal: bool(value > literal),
    "gte": lambda value, literal: bool(value >= literal),
    "lt": lambda value, literal: bool(value < literal),
    "lte": lambda value, literal: bool(value <= literal),
    "in": lambda value, literal: value in literal,
    "not_in": lambda value, literal: value not in literal,
    "matches": lambda value, literal: isinstance(value, str) and search(literal, value),
}


def compare(op: str, value: Any, literal: Any) -> bool:
    try:
        test = OPERATORS[op]
    except KeyError:
        raise ValueError(f"unknown operator {op!r}") from None
    return test(value, literal)


def truth(cond: Condition, doc: Any) -> Truth:
    if isinstance(cond, Always):
        return True
    if isinstance(cond, Compare):
        value = lookup(doc, cond.path)
        return None if value is MISSING else compare(cond.op, value, cond.value)
    if isinstance(cond, Exists):
        return (lookup(doc, cond.path) is not MISSING) == cond.present
    if isinstance(cond, Not):
        inner = truth(cond.part, doc)
        return None if inner is None else not inner
    if isinstance(cond, And):
        return _kleene_and(truth(p, doc) for p in cond.parts)
    if isinstance(cond, Or):
        return _kleene_or(truth(p, doc) for p in cond.parts)
    if isinstance(cond, AnyItem | AllItems):
        items = lookup(doc, cond.list_path)
        elements = [] if items is MISSING else list(items)
        results = (truth(cond.part, item) for item in elements)
        return _kleene_or(results) if isinstance(cond, AnyItem) else _kleene_and(results)
    raise TypeError(f"unknown condition {cond!r}")


def _kleene_and(values: Any) -> Truth:
    result: Truth = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _kleene_or(values: Any) -> Truth:
    result: Truth = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def matching_rules(ruleset: Ruleset, doc: Mapping[str, Any]) -> list[Rule]:
    """Rules whose condition is true for an already prepared document, in firing order."""
    fired = [rule for rule in ruleset.ordered_rules() if truth(rule.when, doc) is True]
    return fired[:1] if ruleset.mode == "first" else fired


def evaluate_reference(ruleset: Ruleset, facts: Mapping[str, Any]) -> Decision:
    """Evaluate without durable_rules; raises FactError exactly like RuleEngine.evaluate."""
    doc = prepare_facts(facts, ruleset)
    fired = tuple(FiredRule.of(rule) for rule in matching_rules(ruleset, doc))
    return Decision(ruleset.name, ruleset.version, fired, MappingProxyType(doc))

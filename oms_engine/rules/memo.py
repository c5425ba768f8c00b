"""Decisions remembered per ruleset version: one durable_rules evaluation per distinct case.

A ruleset's answer depends only on the truth of its tests (the leaves of its
conditions: comparisons, `exists`, `matches`, `in`), each true, false or
unknown (Kleene, as evaluate_reference has it), and, for a line quantifier,
on which combinations of its tests' truths occur among the lines: `any_line`
is an OR and `all_lines` an AND over the lines, so neither their number nor
their order matters, only the set (an empty set for no lines). That is the
*signature* of a document. Two orders with one signature get one answer, so
durable_rules (still the engine of record) is asked once per signature and
ruleset version, and the answer is remembered: "payable > 500000" has two
outcomes however many amounts there are.

The memo is bounded; a full memo starts again empty (the next evaluations
simply ask durable again). A signature costs a truth per test, so with many
rules it costs nearly what asking durable costs: measured with 500 generated
blocking rules, signatures took 10 % of the run and spared durable only one
evaluation in five. So a memo that, after its first TRIAL evaluations, answers
fewer than MIN_HIT_SHARE of them stops being asked (``active``), and that
ruleset version goes straight to durable from then on; decisions are the same
either way. tests/rules/test_rules_property.py checks that
remembered and fresh decisions agree, over random rulesets and facts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .facts import MISSING, is_mapping, lookup
from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or, Ruleset
from .reference import Truth, truth

MAX_ENTRIES = 4096
TRIAL = 256            # evaluations before a memo is judged
MIN_HIT_SHARE = 0.5    # of them answered from memory, or the memo is switched off

Leaf = Compare | Exists


def _key(leaf: Leaf) -> Hashable:
    if isinstance(leaf, Exists):
        return ("exists", leaf.path, leaf.present)
    value = tuple(leaf.value) if isinstance(leaf.value, list) else leaf.value
    # The type is part of the key: 1 and True compare equal in Python, not in a rule.
    return ("compare", leaf.path, leaf.op, type(value).__name__, value)


# The reference evaluator's comparisons (reference._compare), as functions picked once per test.
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda v, lit: bool(v == lit), "ne": lambda v, lit: bool(v != lit),
    "gt": lambda v, lit: bool(v > lit), "gte": lambda v, lit: bool(v >= lit),
    "lt": lambda v, lit: bool(v < lit), "lte": lambda v, lit: bool(v <= lit),
    "in": lambda v, lit: v in lit, "not_in": lambda v, lit: v not in lit,
}


def _test(leaf: Leaf) -> Callable[[Any], Truth]:
    """``truth(leaf, doc)`` as a function of the document, its path split and its operator found once:
    a signature asks every test of a ruleset for every order."""
    parts = tuple(leaf.path.split("."))

    def get(doc: Any) -> Any:
        node = doc
        for part in parts:
            if not is_mapping(node):
                return MISSING
            node = node.get(part)
            if node is None:
                return MISSING
        return node

    if isinstance(leaf, Exists):
        present = leaf.present
        return lambda doc: (get(doc) is not MISSING) == present
    op = _OPS.get(leaf.op)
    if op is None:   # `matches`, and whatever the reference evaluator alone knows
        return lambda doc: truth(leaf, doc)
    literal = leaf.value

    def compare(doc: Any) -> Truth:
        value = get(doc)
        return None if value is MISSING else op(value, literal)
    return compare


class Signature:
    """The tests of a ruleset, deduplicated, at the top level and per line quantifier's list."""

    def __init__(self, ruleset: Ruleset) -> None:
        top: dict[Hashable, Leaf] = {}
        lists: dict[str, dict[Hashable, Leaf]] = {}

        def walk(cond: Condition, scope: str | None) -> None:
            if isinstance(cond, Compare | Exists):
                (top if scope is None else lists.setdefault(scope, {})).setdefault(_key(cond), cond)
            elif isinstance(cond, And | Or):
                for part in cond.parts:
                    walk(part, scope)
            elif isinstance(cond, Not):
                walk(cond.part, scope)
            elif isinstance(cond, AnyItem | AllItems):
                lists.setdefault(cond.list_path, {})
                walk(cond.part, cond.list_path)
            elif not isinstance(cond, Always):
                raise TypeError(f"unknown condition {cond!r}")

        for rule in ruleset.rules:
            walk(rule.when, None)
        self.top = tuple(top.values())
        self.lists = tuple((path, tuple(leaves.values())) for path, leaves in sorted(lists.items()))
        self._top = tuple(_test(leaf) for leaf in self.top)
        self._lists = tuple((path, tuple(_test(leaf) for leaf in leaves)) for path, leaves in self.lists)

    def of(self, doc: Any) -> tuple[Any, ...]:
        """The signature of a prepared document (rules/facts.prepare_facts)."""
        parts: list[Any] = [tuple([test(doc) for test in self._top])]
        for path, tests in self._lists:
            items = lookup(doc, path)
            elements: Iterable[Any] = () if items is MISSING or not isinstance(items, list) else items
            parts.append(frozenset(tuple([test(item) for test in tests]) for item in elements))
        return tuple(parts)


class Memo:
    """Fired rule keys by signature, for one ruleset version."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.signature = Signature(ruleset)
        self._answers: dict[tuple[Any, ...], frozenset[str]] = {}
        self.hits = self.misses = 0
        self.active = True

    def get(self, signature: tuple[Any, ...]) -> frozenset[str] | None:
        found = self._answers.get(signature)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        if self.hits + self.misses == TRIAL and self.hits < TRIAL * MIN_HIT_SHARE:
            self.active = False
            self._answers.clear()
        return found

    def put(self, signature: tuple[Any, ...], keys: Iterable[str]) -> None:
        if not self.active:
            return
        if len(self._answers) >= MAX_ENTRIES:
            self._answers.clear()
        self._answers[signature] = frozenset(keys)

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
either way.

A ruleset compiled into several chunks (engine.py: one durable ruleset per
64 terms) also has a memo per chunk, signed by the tests of the chunk's rules
only. With hundreds of rules, whole orders rarely share a signature, but the
tests of one chunk (a few dozen thresholds, lists and statistics) still take
few combinations: a chunk answers from memory and only the chunks whose tests
fall a new way are posted to durable. tests/rules/test_rules_property.py checks that
remembered and fresh decisions agree, over random rulesets and facts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .facts import MISSING, is_mapping, lookup
from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or, Rule
from .reference import OPERATORS, Truth

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


def _get(doc: Any, parts: tuple[str, ...]) -> Any:
    node = doc
    for part in parts:
        if not is_mapping(node):
            return MISSING
        node = node.get(part)
        if node is None:
            return MISSING
    return node


class _Tests:
    """The tests of one scope (the document, or one list's items), grouped by the field they read:
    each field is looked up once per document, and ``truth(leaf, doc)`` of each test is worked out
    from it with the comparison picked once (a signature asks every test for every order)."""

    def __init__(self, leaves: Iterable[Leaf]) -> None:
        by_path: dict[str, list[Leaf]] = {}
        for leaf in leaves:
            by_path.setdefault(leaf.path, []).append(leaf)
        self.groups: list[tuple[tuple[str, ...], tuple[Truth, ...], tuple[Truth, ...],
                                tuple[tuple[Callable[[Any, Any], Any], Any], ...]]] = []
        for path, group in by_path.items():
            exists = [leaf.present for leaf in group if isinstance(leaf, Exists)]
            compares = [leaf for leaf in group if isinstance(leaf, Compare)]
            # A missing field: `exists` is as it says, every comparison unknown (Kleene).
            missing = (*(not present for present in exists), *(None for _ in compares))
            present = tuple(bool(present) for present in exists)
            pairs = tuple((OPERATORS[leaf.op], leaf.value) for leaf in compares)
            self.groups.append((tuple(path.split(".")), missing, present, pairs))

    def of(self, doc: Any) -> tuple[Truth, ...]:
        out: list[Truth] = []
        for parts, missing, present, pairs in self.groups:
            value = _get(doc, parts)
            if value is MISSING:
                out += missing
            else:
                out += present
                out += [op(value, literal) for op, literal in pairs]
        return tuple(out)


class Signature:
    """The tests of a ruleset, deduplicated, at the top level and per line quantifier's list."""

    def __init__(self, rules: Iterable[Rule]) -> None:
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

        for rule in rules:
            walk(rule.when, None)
        self.top = tuple(top.values())
        self.lists = tuple((path, tuple(leaves.values())) for path, leaves in sorted(lists.items()))
        self._top = _Tests(self.top)
        self._lists = tuple((path, _Tests(leaves)) for path, leaves in self.lists)

    def of(self, doc: Any) -> tuple[Any, ...]:
        """The signature of a prepared document (rules/facts.prepare_facts)."""
        parts: list[Any] = [self._top.of(doc)]
        for path, tests in self._lists:
            items = lookup(doc, path)
            elements: Iterable[Any] = () if items is MISSING or not isinstance(items, list) else items
            parts.append(frozenset(map(tests.of, elements)))
        return tuple(parts)


class Memo:
    """Fired rule keys by signature, for one ruleset version (or one chunk of it: the signature of
    the rules it holds decides what they fire)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.signature = Signature(rules)
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

"""A rule's condition as terms: conjunctions of atoms, each one durable rule with no `$or` in it.

An atom is a top-level test, one `$iany`, one `$iall` clause, or an empty-list
test. Each rule's condition is put in disjunctive normal form over atoms; the
terms are checked against the limits (limits.py) and told what they need
posted (fields, flags, list lengths).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .limits import (
    MAX_GROUPS_PER_DURABLE_RULE,
    MAX_OBJECT_PROPERTIES,
    MAX_TERMS_PER_RULE,
)
from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Or, Rule
from .normalize import NotCompilable, item_cnf, item_dnf, nnf

MARKER_KEY = "$k"
MARKER = {MARKER_KEY: "f"}
DATA_KEY = "d"
COUNTS_KEY = "$n"
MATCHES_KEY = "$m"
SENTINEL = "zz__sentinel"
# sid, id and the marker at the top of every posted fact.
BASE_PROPERTIES = 3

OPS = {"ne": "$neq", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
FLAG_OPS = {"matches": ("matches", True), "not_matches": ("matches", False), "in": ("in", True),
             "not_in": ("in", False)}


class RuleNotCompilable(NotCompilable):
    """One rule of a ruleset cannot be compiled within the engine's limits."""

    def __init__(self, rule: Rule, message: str) -> None:
        self.rule = rule
        self.message = message
        super().__init__(f"rule '{rule.name}': {message}")


@dataclass(frozen=True)
class Flag:
    """A test evaluated in Python and posted as a boolean: `matches` or membership (`in`)."""

    scope: str | None  # list path, or None at the top level
    path: str  # relative to one list element when scoped
    op: str  # "matches" | "in"
    value: Any  # the pattern, or the tuple of values


def rule_key(rule: Rule) -> str:
    return f"r{rule.index}"


def count_key(ruleset_lists: tuple[str, ...], list_path: str) -> str:
    return f"c{ruleset_lists.index(list_path)}"


# ---- Atoms and terms ---------------------------------------------------------------------------

Leaf = Compare | Exists


@dataclass(frozen=True)
class Top:
    leaf: Leaf


@dataclass(frozen=True)
class AnyLine:
    list_path: str
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True)
class AllLines:
    list_path: str
    leaf: Leaf


@dataclass(frozen=True)
class NoLines:
    list_path: str


Atom = Top | AnyLine | AllLines | NoLines
Term = tuple[Atom, ...]


def condition_terms(cond: Condition) -> list[Term]:
    """`cond` as a list of conjunctions of atoms; raises NotCompilable when too large."""
    normal = nnf(cond)
    if isinstance(normal, Always):
        return [()]
    return dnf(normal)


def dnf(cond: Condition) -> list[Term]:
    if isinstance(cond, Or):
        result = [term for part in merge_equalities(cond.parts) for term in dnf(part)]
    elif isinstance(cond, And):
        result = [()]
        for part in cond.parts:
            terms = dnf(part)
            check_size(len(result) * len(terms))
            result = [a + b for a in result for b in terms]
    elif isinstance(cond, AnyItem):
        result = [(AnyLine(cond.list_path, tuple(leaves(group))),) for group in item_dnf(cond.part)]
    elif isinstance(cond, AllItems):
        clauses = tuple(AllLines(cond.list_path, leaf) for leaf in leaves(item_cnf(cond.part)))
        # Vacuous truth: durable's `$iall` is false on an empty list, all_lines is true.
        result = [(NoLines(cond.list_path),), clauses]
    elif isinstance(cond, Compare | Exists):
        result = [(Top(cond),)]
    else:
        raise TypeError(f"unexpected condition {cond!r}")
    unique = list(dict.fromkeys(tuple(dict.fromkeys(term)) for term in result))
    check_size(len(unique))
    return unique


def merge_equalities(parts: tuple[Condition, ...]) -> list[Condition]:
    """`a == 1 or a == 2 or ...` as one membership test: one alternative instead of many."""
    values: dict[str, list[Any]] = {}
    for part in parts:
        if isinstance(part, Compare) and part.op in ("eq", "in"):
            values.setdefault(part.path, []).extend(part.value if part.op == "in" else (part.value,))
    merged: list[Condition] = []
    done: set[str] = set()
    for part in parts:
        if isinstance(part, Compare) and part.op in ("eq", "in") and len(values[part.path]) > 1:
            if part.path not in done:
                done.add(part.path)
                unique = tuple(dict.fromkeys(values[part.path]))
                merged.append(Compare(part.path, "in", unique) if len(unique) > 1 else part)
        else:
            merged.append(part)
    return merged


def check_size(count: int) -> None:
    if count > MAX_TERMS_PER_RULE:
        raise NotCompilable(
            f"condition too complex for the rule engine: it expands to more than {MAX_TERMS_PER_RULE} "
            "alternatives (and-ed any/in lists multiply); split the rule"
        )


def leaves(conds: Iterable[Condition]) -> list[Leaf]:
    out = []
    for cond in conds:
        if not isinstance(cond, Compare | Exists):  # pragma: no cover - normalize guarantees leaves
            raise TypeError(f"not a leaf: {cond!r}")
        out.append(cond)
    return out


def leaf_flag(leaf: Leaf, scope: str | None) -> tuple[Flag, bool] | None:
    if isinstance(leaf, Compare) and leaf.op in FLAG_OPS:
        op, polarity = FLAG_OPS[leaf.op]
        return Flag(scope, leaf.path, op, leaf.value), polarity
    return None


# ---- What one term (and one chunk) posts --------------------------------------------------------


@dataclass
class Needs:
    """Fields, lists and flags some terms read; also counts the posted properties."""

    paths: set[str] = dataclasses.field(default_factory=set)  # top-level data paths
    flags: set[Flag] = dataclasses.field(default_factory=set)  # top-level flags
    items: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # list -> element paths
    item_flags: dict[str, set[Flag]] = dataclasses.field(default_factory=dict)
    counts: set[str] = dataclasses.field(default_factory=set)  # lists whose length is posted

    def add_term(self, term: Term) -> None:
        for atom in term:
            if isinstance(atom, Top):
                self._add_leaf(atom.leaf, None)
            elif isinstance(atom, AnyLine | AllLines):
                self.items.setdefault(atom.list_path, set())
                self.item_flags.setdefault(atom.list_path, set())
                for leaf in atom.leaves if isinstance(atom, AnyLine) else (atom.leaf,):
                    self._add_leaf(leaf, atom.list_path)
            else:
                self.counts.add(atom.list_path)

    def _add_leaf(self, leaf: Leaf, scope: str | None) -> None:
        flag = leaf_flag(leaf, scope)
        if scope is None:
            if flag is not None:
                self.flags.add(flag[0])
            else:
                self.paths.add(leaf.path)
        elif flag is not None:
            self.item_flags[scope].add(flag[0])
        else:
            self.items[scope].add(leaf.path)

    def merged(self, other: Needs) -> Needs:
        items = {k: set(v) for k, v in self.items.items()}
        item_flags = {k: set(v) for k, v in self.item_flags.items()}
        for k, v in other.items.items():
            items.setdefault(k, set()).update(v)
        for k, f in other.item_flags.items():
            item_flags.setdefault(k, set()).update(f)
        return Needs(self.paths | other.paths, self.flags | other.flags, items, item_flags,
                      self.counts | other.counts)

    def top_properties(self) -> int:
        data = prefixes(self.paths | set(self.items))
        count = BASE_PROPERTIES + 1 + len(data)  # + "d" itself
        if self.counts:
            count += 1 + len(self.counts)
        if self.flags:
            count += 1 + len(self.flags)
        return count

    def item_properties(self) -> dict[str, int]:
        out = {}
        for list_path, paths in self.items.items():
            flags = self.item_flags.get(list_path, set())
            out[list_path] = len(prefixes(paths)) + (1 + len(flags) if flags else 0)
        return out

    def fits(self) -> bool:
        return self.top_properties() <= MAX_OBJECT_PROPERTIES and all(
            n <= MAX_OBJECT_PROPERTIES for n in self.item_properties().values()
        )


def prefixes(paths: Iterable[str]) -> set[str]:
    # Durable flattens nested objects: each object on the way to a value is a property too.
    out: set[str] = set()
    for path in paths:
        parts = path.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def term_groups(term: Term) -> int:
    inner = sum(1 for atom in term if isinstance(atom, AnyLine) and len(atom.leaves) > 1)
    return (1 if term else 0) + inner


def check_condition(cond: Condition) -> None:
    """Raise NotCompilable when `cond` cannot be compiled within the engine's limits."""
    for term in condition_terms(cond):
        check_term(term)


def check_term(term: Term) -> None:
    groups = term_groups(term)
    if groups > MAX_GROUPS_PER_DURABLE_RULE:
        raise NotCompilable(
            f"condition too complex for the rule engine: {groups - 1} any_line/any_item tests with several "
            f"conditions each are and-ed, at most {MAX_GROUPS_PER_DURABLE_RULE - 1} fit in one durable rule "
            "(it refuses more with error 113); split the rule"
        )
    needs = Needs()
    needs.add_term(term)
    if needs.top_properties() > MAX_OBJECT_PROPERTIES:
        raise NotCompilable(
            f"condition too complex for the rule engine: it reads too many fields ({needs.top_properties()} "
            f"properties to post, durable_rules takes {MAX_OBJECT_PROPERTIES}, error 302); split the rule"
        )
    for list_path, count in needs.item_properties().items():
        if count > MAX_OBJECT_PROPERTIES:
            raise NotCompilable(
                f"condition too complex for the rule engine: it reads too many fields of each '{list_path}' "
                f"element ({count} properties, durable_rules takes {MAX_OBJECT_PROPERTIES}, error 302); "
                "split the rule"
            )

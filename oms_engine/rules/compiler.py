"""Translation of validated rulesets into durable_rules JSON definitions.

Layout of the document posted for one evaluation (see engine.py):
    {"sid": ..., "id": ..., "$k": "f", "$n": {"c0": <len of list 0>}, "$m": {"m0": <bool>},
     "d": <facts, each list element with its own "$m">}
User data lives under "d" so that user fields can never collide with durable's
own `sid`/`id`. Every rule ANDs `{"$k": "f"}`: after each action durable
re-asserts the session state document as a fact, and without the marker a rule
such as `exists: false` would match that state and loop forever. `$n` carries
list lengths because `$iall` is false on an empty list, while `all_lines` is
vacuously true. `$m` carries `matches` results computed in Python (regex.py
explains why durable's own `$mt` is not used); a flag is absent when its field is
missing, so a negated match on a missing field stays unknown, like every comparison.
"""

from __future__ import annotations

from typing import Any

from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or, Rule, Ruleset
from .normalize import item_cnf, item_dnf, nnf

MARKER_KEY = "$k"
MARKER = {MARKER_KEY: "f"}
DATA_KEY = "d"
COUNTS_KEY = "$n"
MATCHES_KEY = "$m"
SENTINEL = "zz__sentinel"

_OPS = {"ne": "$neq", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}

# (list path or None for top level, field path relative to it, pattern) -> flag name
PatternKey = tuple[str | None, str, str]
PatternTable = dict[PatternKey, str]


def rule_key(rule: Rule) -> str:
    return f"r{rule.index}"


def count_key(ruleset_lists: tuple[str, ...], list_path: str) -> str:
    return f"c{ruleset_lists.index(list_path)}"


def pattern_table(ruleset: Ruleset) -> PatternTable:
    """Every distinct `matches` test of the ruleset, in a deterministic order."""
    table: PatternTable = {}

    def walk(cond: Condition, scope: str | None) -> None:
        if isinstance(cond, Compare) and cond.op == "matches":
            table.setdefault((scope, cond.path, cond.value), f"m{len(table)}")
        elif isinstance(cond, And | Or):
            for part in cond.parts:
                walk(part, scope)
        elif isinstance(cond, Not):
            walk(cond.part, scope)
        elif isinstance(cond, AnyItem | AllItems):
            walk(cond.part, cond.list_path)

    for rule in ruleset.rules:
        walk(rule.when, None)
    return table


class _Compiler:
    def __init__(self, lists: tuple[str, ...], patterns: PatternTable) -> None:
        self.lists = lists
        self.patterns = patterns

    def leaf(self, leaf: Condition, scope: str | None) -> dict[str, Any]:
        field_prefix = "$i." if scope else f"{DATA_KEY}."
        if isinstance(leaf, Exists):
            return {"$ex" if leaf.present else "$nex": {field_prefix + leaf.path: 1}}
        if not isinstance(leaf, Compare):
            raise TypeError(f"not a leaf: {leaf!r}")
        if leaf.op in ("matches", "not_matches"):
            flag = self.patterns[(scope, leaf.path, leaf.value)]
            return {f"{'$i.' if scope else ''}{MATCHES_KEY}.{flag}": leaf.op == "matches"}
        path = field_prefix + leaf.path
        if leaf.op == "eq":
            return {path: leaf.value}
        return {_OPS[leaf.op]: {path: leaf.value}}

    def top(self, cond: Condition) -> dict[str, Any]:
        if isinstance(cond, And):
            return _join("$and", [self.top(p) for p in cond.parts])
        if isinstance(cond, Or):
            return _join("$or", [self.top(p) for p in cond.parts])
        if isinstance(cond, AnyItem):
            target = f"{DATA_KEY}.{cond.list_path}"
            terms = [
                {"$iany": {target: _join("$and", [self.leaf(leaf, cond.list_path) for leaf in group])}}
                for group in item_dnf(cond.part)
            ]
            return _join("$or", terms)
        if isinstance(cond, AllItems):
            target = f"{DATA_KEY}.{cond.list_path}"
            clauses = [
                {"$iall": {target: _join("$or", [self.leaf(leaf, cond.list_path) for leaf in clause])}}
                for clause in item_cnf(cond.part)
            ]
            empty = {f"{COUNTS_KEY}.{count_key(self.lists, cond.list_path)}": 0}
            return {"$or": [empty, _join("$and", clauses)]}
        return self.leaf(cond, None)


def _join(op: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {op: parts}


def compile_condition(cond: Condition, lists: tuple[str, ...], patterns: PatternTable) -> dict[str, Any]:
    """durable_rules condition for `cond` (marker included); raises NotCompilable."""
    normal = nnf(cond)
    if isinstance(normal, Always):
        return dict(MARKER)
    return {"$and": [dict(MARKER), _Compiler(lists, patterns).top(normal)]}


def compile_ruleset(ruleset: Ruleset) -> dict[str, Any]:
    """One durable rule per rule plus a catch-all sentinel.

    The sentinel makes every evaluation fire at least one action: deleting the
    state of an evaluation that matched nothing was observed to segfault
    durable_rules 2.0.28. durable's `pri` must be non-negative (negative values
    sorted wrongly in experiments), so the rank in (priority, file order) is used.
    """
    patterns = pattern_table(ruleset)
    definition: dict[str, Any] = {}
    ordered = ruleset.ordered_rules()
    for rank, rule in enumerate(ordered):
        key = rule_key(rule)
        definition[key] = {
            "all": [{"m": compile_condition(rule.when, ruleset.list_paths, patterns)}],
            "pri": rank,
            "run": key,
        }
    definition[SENTINEL] = {"all": [{"m": dict(MARKER)}], "pri": len(ordered), "run": SENTINEL}
    return definition

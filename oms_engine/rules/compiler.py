"""Translation of validated rulesets into durable_rules JSON definitions.

Layout of the document posted for one evaluation (see engine.py):
    {"sid": ..., "id": ..., "$k": "f", "$n": {"c0": <len of list 0>, ...}, "d": <facts>}
User data lives under "d" so that user fields can never collide with durable's
own `sid`/`id`. Every rule ANDs `{"$k": "f"}`: after each action durable
re-asserts the session state document as a fact, and without the marker a rule
such as `exists: false` would match that state and loop forever. `$n` carries
list lengths because `$iall` is false on an empty list, while `all_lines` is
vacuously true.
"""

from __future__ import annotations

from typing import Any

from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Or, Rule, Ruleset
from .normalize import item_cnf, item_dnf, nnf
from .regex import parse_pattern

MARKER_KEY = "$k"
MARKER = {MARKER_KEY: "f"}
DATA_KEY = "d"
COUNTS_KEY = "$n"
SENTINEL = "zz__sentinel"

_OPS = {"ne": "$neq", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}


def rule_key(rule: Rule) -> str:
    return f"r{rule.index}"


def count_key(ruleset_lists: tuple[str, ...], list_path: str) -> str:
    return f"c{ruleset_lists.index(list_path)}"


def _leaf(leaf: Condition, field_prefix: str) -> dict[str, Any]:
    if isinstance(leaf, Exists):
        return {"$ex" if leaf.present else "$nex": {field_prefix + leaf.path: 1}}
    if not isinstance(leaf, Compare):
        raise TypeError(f"not a leaf: {leaf!r}")
    path = field_prefix + leaf.path
    if leaf.op == "eq":
        return {path: leaf.value}
    if leaf.op == "matches":
        return {"$mt": {path: parse_pattern(leaf.value).durable()}}
    return {_OPS[leaf.op]: {path: leaf.value}}


def _join(op: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {op: parts}


class _Compiler:
    def __init__(self, lists: tuple[str, ...]) -> None:
        self.lists = lists

    def top(self, cond: Condition) -> dict[str, Any]:
        if isinstance(cond, And):
            return _join("$and", [self.top(p) for p in cond.parts])
        if isinstance(cond, Or):
            return _join("$or", [self.top(p) for p in cond.parts])
        if isinstance(cond, AnyItem):
            target = f"{DATA_KEY}.{cond.list_path}"
            terms = [
                {"$iany": {target: _join("$and", [_leaf(leaf, "$i.") for leaf in group])}}
                for group in item_dnf(cond.part)
            ]
            return _join("$or", terms)
        if isinstance(cond, AllItems):
            target = f"{DATA_KEY}.{cond.list_path}"
            clauses = [
                {"$iall": {target: _join("$or", [_leaf(leaf, "$i.") for leaf in clause])}}
                for clause in item_cnf(cond.part)
            ]
            empty = {f"{COUNTS_KEY}.{count_key(self.lists, cond.list_path)}": 0}
            return {"$or": [empty, _join("$and", clauses)]}
        return _leaf(cond, DATA_KEY + ".")


def compile_condition(cond: Condition, lists: tuple[str, ...]) -> dict[str, Any]:
    """durable_rules condition for `cond` (marker included); raises NotCompilable."""
    normal = nnf(cond)
    if isinstance(normal, Always):
        return dict(MARKER)
    return {"$and": [dict(MARKER), _Compiler(lists).top(normal)]}


def compile_ruleset(ruleset: Ruleset) -> dict[str, Any]:
    """One durable rule per rule plus a catch-all sentinel.

    The sentinel makes every evaluation fire at least one action: deleting the
    state of an evaluation that matched nothing was observed to segfault
    durable_rules 2.0.28. durable's `pri` must be non-negative (negative values
    sorted wrongly in experiments), so the rank in (priority, file order) is used.
    """
    definition: dict[str, Any] = {}
    ordered = ruleset.ordered_rules()
    for rank, rule in enumerate(ordered):
        key = rule_key(rule)
        definition[key] = {
            "all": [{"m": compile_condition(rule.when, ruleset.list_paths)}],
            "pri": rank,
            "run": key,
        }
    definition[SENTINEL] = {"all": [{"m": dict(MARKER)}], "pri": len(ordered), "run": SENTINEL}
    return definition

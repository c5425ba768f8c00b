"""Validated, engine-independent representation of rulesets and conditions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Scalar = bool | int | float | str
# "not_matches" only appears after negation push-down (normalize.py).
CompareOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "matches", "not_matches"]
Mode = Literal["all", "first"]


@dataclass(frozen=True)
class Compare:
    """`path <op> value`; comparisons on a missing field are unknown (never true)."""

    path: str
    op: CompareOp
    value: Any


@dataclass(frozen=True)
class Exists:
    path: str
    present: bool


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


@dataclass(frozen=True)
class Always:
    """An omitted or empty `when`."""


@dataclass(frozen=True)
class AnyItem:
    """True when some element of the list at `list_path` satisfies `part` (paths relative)."""

    list_path: str
    part: Condition


@dataclass(frozen=True)
class AllItems:
    """True when every element satisfies `part`; vacuously true for an empty/missing list."""

    list_path: str
    part: Condition


Condition = Compare | Exists | And | Or | Not | Always | AnyItem | AllItems


@dataclass(frozen=True)
class Action:
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {self.name: dict(self.params)}


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    when: Condition
    then: tuple[Action, ...]
    description: str = ""
    line: int = 0
    index: int = 0  # position in the file; breaks priority ties


@dataclass(frozen=True)
class Ruleset:
    name: str
    description: str
    mode: Mode
    rules: tuple[Rule, ...]
    path: str
    version: str
    source: str
    # Type of every field the rules read: 'int' | 'float' | 'str' | 'bool'
    # or 'list[...]'; list-element fields are keyed '<list>.<field>'. Facts are checked
    # against this before evaluation because durable_rules compares loosely.
    field_types: dict[str, str] = field(default_factory=dict)
    list_paths: tuple[str, ...] = ()

    def ordered_rules(self) -> list[Rule]:
        return sorted(self.rules, key=lambda r: (r.priority, r.index))

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

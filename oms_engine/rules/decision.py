"""Result of evaluating one ruleset against one set of facts."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .model import Action, Rule


@dataclass(frozen=True)
class FiredRule:
    name: str
    priority: int
    actions: tuple[Action, ...]

    @classmethod
    def of(cls, rule: Rule) -> FiredRule:
        return cls(rule.name, rule.priority, rule.then)


def _no_facts() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Decision:
    """What a ruleset decided, and the checked, projected facts it decided on.

    `facts` is what prepare_facts made of the caller's facts (only the fields the
    ruleset reads, nulls dropped, types checked): evaluating them again with the
    same ruleset version gives the same fired rules, so a stored decision can be replayed.
    """

    ruleset: str
    version: str
    fired: tuple[FiredRule, ...] = field(default_factory=tuple)
    # Left out of the hash: a mapping is unhashable.
    facts: Mapping[str, Any] = field(default_factory=_no_facts, hash=False)

    @property
    def actions(self) -> list[Action]:
        return [action for rule in self.fired for action in rule.actions]

    @property
    def fired_names(self) -> list[str]:
        return [rule.name for rule in self.fired]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "version": self.version,
            "fired": [
                {"name": r.name, "priority": r.priority, "actions": [a.to_dict() for a in r.actions]}
                for r in self.fired
            ],
            "facts": copy.deepcopy(dict(self.facts)),
        }

"""Result of evaluating one ruleset against one set of facts."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Decision:
    ruleset: str
    version: str
    fired: tuple[FiredRule, ...] = field(default_factory=tuple)

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
        }

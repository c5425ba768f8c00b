"""Error types raised by the rules package."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleError:
    """One problem found while loading a rule file, pinned to a file and line."""

    file: str
    line: int | None
    rule: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.rule is not None:
            return f"{where}: rule '{self.rule}': {self.message}"
        return f"{where}: {self.message}"


class RulesetInvalid(Exception):
    """Raised with every problem of one or more files, so staff can fix them in one pass."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class FactError(ValueError):
    """A fact value does not have the type the rules were validated against."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"fact '{path}': {message}")


class RuleEngineError(RuntimeError):
    """durable_rules reported a failure while evaluating or registering a ruleset."""

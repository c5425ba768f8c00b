"""Registry of actions that rule files may name; supplied by the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

ParamsValidator = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ActionSpec:
    """An action rule files may use; `validate` raises ValueError for bad params."""

    name: str
    description: str = ""
    validate: ParamsValidator | None = None


class ActionCatalog:
    """Name -> ActionSpec. Kept outside the loader so each decision point owns its actions."""

    def __init__(self, specs: Iterable[ActionSpec] = ()) -> None:
        self._specs: dict[str, ActionSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ActionSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"action '{spec.name}' is already registered")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

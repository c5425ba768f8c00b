"""Declared shape of the facts a ruleset is evaluated against."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

SCALAR_TYPES = ("int", "float", "str", "bool")
_PY_NAMES: dict[object, str] = {int: "int", float: "float", str: "str", bool: "bool"}


def normalize_type(spec: object) -> str:
    """Accept `int`/'int'/'list[str]' style specs; return the canonical string."""
    if spec in _PY_NAMES:
        return _PY_NAMES[spec]
    if isinstance(spec, str):
        text = spec.strip().replace(" ", "")
        if text in SCALAR_TYPES:
            return text
        if text.startswith("list[") and text.endswith("]") and text[5:-1] in SCALAR_TYPES:
            return text
    raise ValueError(f"unsupported field type {spec!r}; use one of {', '.join(SCALAR_TYPES)} or list[<scalar>]")


class FactSchema:
    """Dotted field path -> type. Paths under an item list (default `lines`) describe one element.

    Example: FactSchema({"order.payable": int, "lines.sku": str})
    """

    def __init__(self, fields: Mapping[str, object], *, item_lists: Iterable[str] = ("lines",)) -> None:
        self.fields: dict[str, str] = {path: normalize_type(spec) for path, spec in fields.items()}
        declared = tuple(item_lists)
        # Only lists that actually have element fields are item lists of this schema.
        self.item_lists: tuple[str, ...] = tuple(
            name for name in declared if any(p.startswith(name + ".") for p in self.fields)
        )
        for name in self.item_lists:
            if name in self.fields:
                raise ValueError(f"'{name}' is an item list and cannot also be a scalar field")

    def type_of(self, path: str) -> str | None:
        return self.fields.get(path)

    def is_object(self, path: str) -> bool:
        """True for an intermediate path such as 'customer' (useful with `exists`)."""
        prefix = path + "."
        return any(p.startswith(prefix) for p in self.fields)

    def suggest(self, path: str) -> str | None:
        candidates = list(self.fields) + list(self.item_lists)
        matches = difflib.get_close_matches(path, candidates, n=1, cutoff=0.6)
        return matches[0] if matches else None

    def __repr__(self) -> str:
        return f"FactSchema({self.fields!r}, item_lists={self.item_lists!r})"

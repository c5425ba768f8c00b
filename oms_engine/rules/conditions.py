"""Parsing and type-checking of `when` conditions (shared by FileParser)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import RuleError
from .facts import ANY_TYPE
from .limits import MAX_LITERAL_CHARS
from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or
from .normalize import NotCompilable
from .regex import compile_pattern
from .schema import FactSchema
from .terms import check_condition
from .yaml_source import LList, LMap

PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "matches", "exists")
COMBINATORS = ("all", "any", "not", "any_line", "all_lines", "any_item", "all_items")
LINE_LIST = "lines"


class Skip(Exception):
    """Abandon the current node after an error has been recorded."""


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def literal_fits(kind: str, value: Any) -> bool:
    actual = _type_name(value)
    return actual == kind or (kind == "float" and actual == "int")


@dataclass
class FieldUse:
    kind: str
    line: int


@dataclass
class ConditionParser:
    """Builds Condition trees, recording errors and the field types the rules imply."""

    file: str
    schema: FactSchema | None
    errors: list[RuleError] = field(default_factory=list)
    implied: dict[str, FieldUse] = field(default_factory=dict)
    lists_used: list[str] = field(default_factory=list)
    # Schema fields the rules actually read, with their schema type.
    used: dict[str, str] = field(default_factory=dict)
    rule_name: str | None = None

    def error(self, line: int | None, message: str) -> None:
        self.errors.append(RuleError(self.file, line, self.rule_name, message))

    # ---- conditions --------------------------------------------------------------------------

    def parse_when(self, node: LMap) -> Condition | None:
        raw = node.get("when")
        if raw is None or (isinstance(raw, dict) and not raw):
            return Always()
        try:
            cond = self.cond(raw, node.line_of("when"), scope=None)
        except Skip:
            return None
        try:
            # Reject what durable_rules cannot express, or not within its limits, now rather
            # than at engine load time (and never by letting durable refuse it: that leaks).
            check_condition(cond)
        except NotCompilable as exc:
            self.error(node.line_of("when"), str(exc))
            return None
        return cond

    def cond(self, raw: Any, line: int, scope: str | None) -> Condition:
        if not isinstance(raw, LMap) or not raw:
            self.error(getattr(raw, "line", line), "a condition must be a non-empty mapping")
            raise Skip
        parts: list[Condition] = []
        failed = False
        for key, value in raw.items():
            key_line = raw.line_of(key)
            try:
                parts.append(self.cond_entry(key, value, key_line, scope))
            except Skip:
                failed = True
        if failed:
            raise Skip
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def cond_list(self, value: Any, line: int, key: str, scope: str | None) -> tuple[Condition, ...]:
        if not isinstance(value, LList) or not value:
            self.error(line, f"'{key}' needs a non-empty list of conditions")
            raise Skip
        parts: list[Condition] = []
        failed = False
        for i, item in enumerate(value):
            try:
                parts.append(self.cond(item, value.line_of(i), scope))
            except Skip:
                failed = True
        if failed:
            raise Skip
        return tuple(parts)

    def cond_entry(self, key: str, value: Any, line: int, scope: str | None) -> Condition:
        if key == "all":
            return And(self.cond_list(value, line, key, scope))
        if key == "any":
            return Or(self.cond_list(value, line, key, scope))
        if key == "not":
            return Not(self.cond(value, line, scope))
        if key in ("any_line", "all_lines"):
            return self.quantifier(key == "any_line", LINE_LIST, value, line, scope)
        if key in ("any_item", "all_items"):
            if not isinstance(value, LMap) or set(value) != {"list", "where"}:
                self.error(line, f"'{key}' needs a mapping with 'list' (a field path) and 'where' (a condition)")
                raise Skip
            list_path = value["list"]
            if not isinstance(list_path, str) or not PATH_RE.match(list_path):
                self.error(value.line_of("list"), f"invalid list path {list_path!r}")
                raise Skip
            return self.quantifier(key == "any_item", list_path, value["where"], value.line_of("where"), scope)
        if key.startswith("$") or not PATH_RE.match(key):
            hint = suggest(key, COMBINATORS + OPERATORS)
            self.error(line, f"'{key}' is neither a field path nor a condition keyword{hint}")
            raise Skip
        if isinstance(value, list):
            hint = suggest(key, COMBINATORS)
            if hint:
                self.error(line, f"'{key}' is not a condition keyword{hint}")
            else:
                self.error(line, f"use {{in: [...]}} to compare '{key}' with a list of values")
            raise Skip
        return self.field_condition(key, value, line, scope)

    def quantifier(self, is_any: bool, list_path: str, body: Any, line: int, scope: str | None) -> Condition:
        if scope is not None:
            self.error(line, "line/item quantifiers cannot be nested")
            raise Skip
        if self.schema is not None and list_path not in self.schema.item_lists:
            self.error(line, f"unknown list '{list_path}'{self._field_hint(list_path)}")
            raise Skip
        if list_path not in self.lists_used:
            self.lists_used.append(list_path)
        inner = self.cond(body, line, list_path)
        return AnyItem(list_path, inner) if is_any else AllItems(list_path, inner)

    def _field_hint(self, path: str) -> str:
        if self.schema is None:
            return ""
        close = self.schema.suggest(path)
        return f" (did you mean '{close}'?)" if close else ""

    def field_condition(self, path: str, value: Any, line: int, scope: str | None) -> Condition:
        full = f"{scope}.{path}" if scope else path
        for list_path in (self.schema.item_lists if self.schema else ()) + tuple(self.lists_used):
            if scope is None and full.startswith(list_path + "."):
                self.error(line, f"field '{full}' belongs to the list '{list_path}'; use any_line/all_lines")
                raise Skip
        if isinstance(value, LMap):
            if not value:
                self.error(line, f"no operator given for field '{full}'")
                raise Skip
            parts: list[Condition] = []
            failed = False
            for op, operand in value.items():
                try:
                    parts.append(self.operator(full, path, op, operand, value.line_of(op)))
                except Skip:
                    failed = True
            if failed:
                raise Skip
            return parts[0] if len(parts) == 1 else And(tuple(parts))
        return self.operator(full, path, "eq", value, line)

    def operator(self, full: str, path: str, op: str, operand: Any, line: int) -> Condition:
        if op not in OPERATORS:
            self.error(line, f"unknown operator '{op}'{suggest(op, OPERATORS)}")
            raise Skip
        if op == "exists":
            if not isinstance(operand, bool):
                self.error(line, f"'exists' takes true or false, not {operand!r}")
                raise Skip
            self.field_type(full, None, line, exists_only=True)
            return Exists(path, operand)
        if isinstance(operand, dict):
            self.error(line, f"operator '{op}' needs a value, not a mapping")
            raise Skip
        if operand is None:
            self.error(line, f"null is not a comparable value for '{full}' (use exists: false)")
            raise Skip
        if op in ("in", "not_in"):
            if not isinstance(operand, list) or not operand:
                self.error(line, f"'{op}' needs a non-empty list of values")
                raise Skip
            values = list(operand)
        elif isinstance(operand, list):
            self.error(line, f"operator '{op}' needs a single value (use 'in' for a list)")
            raise Skip
        else:
            values = [operand]
        for item in values:
            if isinstance(item, list | dict) or item is None:
                self.error(line, f"'{op}' values must be plain scalars, got {item!r}")
                raise Skip
            if isinstance(item, str) and len(item) > MAX_LITERAL_CHARS and op != "matches":
                # durable_rules mis-compares strings of 64 KiB and more; long fact values are cut
                # to just over this length before posting, which keeps every comparison exact.
                self.error(line, f"text values are limited to {MAX_LITERAL_CHARS} characters, this one has {len(item)}")
                raise Skip
        if op == "matches":
            # Report "needs a text field" rather than a literal/field type mismatch.
            kind = self.field_type(full, None if self.schema else values, line, exists_only=False)
        else:
            kind = self.field_type(full, values, line, exists_only=False)
        if op in ("gt", "gte", "lt", "lte") and kind not in ("int", "float"):
            self.error(line, f"'{op}' needs a number field, but '{full}' is {kind}")
            raise Skip
        if op == "matches":
            self.check_regex(full, kind, operand, line)
        return Compare(path, op, tuple(values) if op in ("in", "not_in") else operand)  # type: ignore[arg-type]

    def check_regex(self, full: str, kind: str, operand: Any, line: int) -> None:
        if kind != "str":
            self.error(line, f"'matches' needs a text field, but '{full}' is {kind}")
            raise Skip
        try:
            compile_pattern(operand)
        except ValueError as exc:
            self.error(line, str(exc))
            raise Skip from None

    def field_type(self, full: str, values: list[Any] | None, line: int, *, exists_only: bool) -> str:
        """The field's type (from the schema, else implied by literals); records type errors."""
        if self.schema is not None:
            kind = self.schema.type_of(full)
            if kind is None:
                if exists_only and self.schema.is_object(full):
                    self.implied.setdefault(full, FieldUse(ANY_TYPE, line))
                    return ANY_TYPE
                self.error(line, f"unknown field '{full}'{self._field_hint(full)}")
                raise Skip
            if kind.startswith("list[") and not exists_only:
                self.error(line, f"field '{full}' is a {kind}; only 'exists' is supported on it")
                raise Skip
            for value in values or []:
                if not literal_fits(kind, value):
                    self.error(line, f"field '{full}' is {kind}, but {value!r} is {_type_name(value)}")
                    raise Skip
            self.used[full] = kind
            return kind
        if exists_only:
            self.implied.setdefault(full, FieldUse(ANY_TYPE, line))
            return ANY_TYPE
        kinds = {_type_name(v) for v in values or []}
        kind = _merge_kinds(kinds)
        if kind is None:
            self.error(line, f"values for '{full}' mix types: {', '.join(sorted(kinds))}")
            raise Skip
        known = self.implied.get(full)
        if known is not None and known.kind != ANY_TYPE:
            merged = _merge_kinds({known.kind, kind})
            if merged is None:
                self.error(
                    line, f"field '{full}' is compared with {kind} here but with {known.kind} at line {known.line}"
                )
                raise Skip
            known.kind = merged
            return merged
        self.implied[full] = FieldUse(kind, line)
        return kind


def _merge_kinds(kinds: set[str]) -> str | None:
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {"int", "float"}:
        return "float"
    return None

"""Validation of one parsed rule file into a Ruleset, collecting every error."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .catalog import ActionCatalog
from .errors import RuleError
from .facts import ANY_TYPE
from .model import Action, AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or, Rule
from .normalize import NotCompilable, item_cnf, item_dnf, nnf
from .regex import parse_pattern
from .schema import FactSchema
from .yaml_source import LList, LMap

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
TOP_KEYS = ("ruleset", "description", "mode", "rules")
RULE_KEYS = ("name", "priority", "description", "when", "then")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "matches", "exists")
COMBINATORS = ("all", "any", "not", "any_line", "all_lines", "any_item", "all_items")
LINE_LIST = "lines"


class _Skip(Exception):
    """Abandon the current node after an error has been recorded."""


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
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


def plain(value: Any) -> Any:
    """Strip line bookkeeping so action params are ordinary dicts/lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass
class _FieldUse:
    kind: str
    line: int


@dataclass
class FileParser:
    file: str
    schema: FactSchema | None
    actions: ActionCatalog | None
    pattern_check: Any = None  # Callable[[str], None] validating a durable pattern
    errors: list[RuleError] = field(default_factory=list)
    implied: dict[str, _FieldUse] = field(default_factory=dict)
    lists_used: list[str] = field(default_factory=list)
    rule_name: str | None = None

    def error(self, line: int | None, message: str) -> None:
        self.errors.append(RuleError(self.file, line, self.rule_name, message))

    # ---- top level -------------------------------------------------------------------------

    def parse_top(self, data: Any) -> tuple[str, str, str, list[Rule]] | None:
        if not isinstance(data, LMap):
            line = getattr(data, "line", 1)
            self.error(line, "a rule file must be a mapping with 'ruleset' and 'rules'")
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.error(data.line_of(key), f"unknown top-level key '{key}'{_suggest(key, TOP_KEYS)}")
        name = data.get("ruleset")
        if not isinstance(name, str) or not NAME_RE.match(name):
            self.error(data.line_of("ruleset"), "'ruleset' must be a name like 'blocking' ([a-z0-9][a-z0-9_-]*)")
            name = "<invalid>"
        description = data.get("description", "")
        if not isinstance(description, str):
            self.error(data.line_of("description"), "'description' must be text")
            description = ""
        mode = data.get("mode", "all")
        if mode not in ("all", "first"):
            self.error(data.line_of("mode"), f"'mode' must be 'all' or 'first', not {mode!r}")
            mode = "all"
        rules_node = data.get("rules")
        rules: list[Rule] = []
        if not isinstance(rules_node, LList):
            self.error(data.line_of("rules"), "'rules' must be a list of rules")
        else:
            seen: dict[str, int] = {}
            for index, item in enumerate(rules_node):
                rule = self.parse_rule(item, rules_node.line_of(index), index, seen)
                if rule is not None:
                    rules.append(rule)
        return name, description, mode, rules

    def parse_rule(self, node: Any, line: int, index: int, seen: dict[str, int]) -> Rule | None:
        self.rule_name = None
        if not isinstance(node, LMap):
            self.error(line, "each rule must be a mapping with 'name', 'when' and 'then'")
            return None
        name = node.get("name")
        if name is None:
            self.error(node.line, "rule has no 'name'")
        elif not isinstance(name, str) or not NAME_RE.match(name):
            self.error(node.line_of("name"), f"invalid rule name {name!r} (use [a-z0-9][a-z0-9_-]*)")
        elif name in seen:
            self.rule_name = name
            self.error(node.line_of("name"), f"duplicate rule name (first defined at line {seen[name]})")
        else:
            seen[name] = node.line_of("name")
            self.rule_name = name
        before = len(self.errors)
        for key in node:
            if key not in RULE_KEYS:
                self.error(node.line_of(key), f"unknown key '{key}'{_suggest(key, RULE_KEYS)}")
        priority = node.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            self.error(node.line_of("priority"), f"'priority' must be an integer, not {priority!r}")
            priority = 0
        description = node.get("description", "")
        if not isinstance(description, str):
            self.error(node.line_of("description"), "'description' must be text")
        when = self.parse_when(node)
        then = self.parse_then(node)
        if len(self.errors) != before or when is None or then is None or self.rule_name is None:
            return None
        return Rule(self.rule_name, priority, when, then, description or "", node.line, index)

    # ---- conditions --------------------------------------------------------------------------

    def parse_when(self, node: LMap) -> Condition | None:
        raw = node.get("when")
        if raw is None or (isinstance(raw, dict) and not raw):
            return Always()
        try:
            cond = self.cond(raw, node.line_of("when"), scope=None, negated=False)
        except _Skip:
            return None
        try:
            # Reject what durable_rules cannot express now, not at engine load time.
            self._check_compilable(nnf(cond))
        except NotCompilable as exc:
            self.error(node.line_of("when"), str(exc))
            return None
        return cond

    def _check_compilable(self, cond: Condition) -> None:
        if isinstance(cond, And | Or):
            for part in cond.parts:
                self._check_compilable(part)
        elif isinstance(cond, AnyItem):
            item_dnf(cond.part)
        elif isinstance(cond, AllItems):
            item_cnf(cond.part)

    def cond(self, raw: Any, line: int, scope: str | None, negated: bool) -> Condition:
        if not isinstance(raw, LMap) or not raw:
            self.error(getattr(raw, "line", line), "a condition must be a non-empty mapping")
            raise _Skip
        parts: list[Condition] = []
        failed = False
        for key, value in raw.items():
            key_line = raw.line_of(key)
            try:
                parts.append(self.cond_entry(key, value, key_line, scope, negated))
            except _Skip:
                failed = True
        if failed:
            raise _Skip
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def cond_list(self, value: Any, line: int, key: str, scope: str | None, negated: bool) -> tuple[Condition, ...]:
        if not isinstance(value, LList) or not value:
            self.error(line, f"'{key}' needs a non-empty list of conditions")
            raise _Skip
        parts: list[Condition] = []
        failed = False
        for i, item in enumerate(value):
            try:
                parts.append(self.cond(item, value.line_of(i), scope, negated))
            except _Skip:
                failed = True
        if failed:
            raise _Skip
        return tuple(parts)

    def cond_entry(self, key: str, value: Any, line: int, scope: str | None, negated: bool) -> Condition:
        if key == "all":
            return And(self.cond_list(value, line, key, scope, negated))
        if key == "any":
            return Or(self.cond_list(value, line, key, scope, negated))
        if key == "not":
            return Not(self.cond(value, line, scope, not negated))
        if key in ("any_line", "all_lines"):
            return self.quantifier(key == "any_line", LINE_LIST, value, line, scope, negated)
        if key in ("any_item", "all_items"):
            if not isinstance(value, LMap) or set(value) != {"list", "where"}:
                self.error(line, f"'{key}' needs a mapping with 'list' (a field path) and 'where' (a condition)")
                raise _Skip
            list_path = value["list"]
            if not isinstance(list_path, str) or not PATH_RE.match(list_path):
                self.error(value.line_of("list"), f"invalid list path {list_path!r}")
                raise _Skip
            return self.quantifier(key == "any_item", list_path, value["where"], value.line_of("where"), scope, negated)
        if key.startswith("$") or not PATH_RE.match(key):
            hint = _suggest(key, COMBINATORS + OPERATORS)
            self.error(line, f"'{key}' is neither a field path nor a condition keyword{hint}")
            raise _Skip
        if isinstance(value, list):
            hint = _suggest(key, COMBINATORS)
            if hint:
                self.error(line, f"'{key}' is not a condition keyword{hint}")
            else:
                self.error(line, f"use {{in: [...]}} to compare '{key}' with a list of values")
            raise _Skip
        return self.field_condition(key, value, line, scope, negated)

    def quantifier(
        self, is_any: bool, list_path: str, body: Any, line: int, scope: str | None, negated: bool
    ) -> Condition:
        if scope is not None:
            self.error(line, "line/item quantifiers cannot be nested")
            raise _Skip
        if self.schema is not None and list_path not in self.schema.item_lists:
            self.error(line, f"unknown list '{list_path}'{self._field_hint(list_path)}")
            raise _Skip
        if list_path not in self.lists_used:
            self.lists_used.append(list_path)
        inner = self.cond(body, line, list_path, negated)
        return AnyItem(list_path, inner) if is_any else AllItems(list_path, inner)

    def _field_hint(self, path: str) -> str:
        if self.schema is None:
            return ""
        close = self.schema.suggest(path)
        return f" (did you mean '{close}'?)" if close else ""

    def field_condition(self, path: str, value: Any, line: int, scope: str | None, negated: bool) -> Condition:
        full = f"{scope}.{path}" if scope else path
        for list_path in (self.schema.item_lists if self.schema else ()) + tuple(self.lists_used):
            if scope is None and full.startswith(list_path + "."):
                self.error(line, f"field '{full}' belongs to the list '{list_path}'; use any_line/all_lines")
                raise _Skip
        if isinstance(value, LMap):
            if not value:
                self.error(line, f"no operator given for field '{full}'")
                raise _Skip
            parts: list[Condition] = []
            failed = False
            for op, operand in value.items():
                try:
                    parts.append(self.operator(full, path, op, operand, value.line_of(op), negated))
                except _Skip:
                    failed = True
            if failed:
                raise _Skip
            return parts[0] if len(parts) == 1 else And(tuple(parts))
        return self.operator(full, path, "eq", value, line, negated)

    def operator(self, full: str, path: str, op: str, operand: Any, line: int, negated: bool) -> Condition:
        if op not in OPERATORS:
            self.error(line, f"unknown operator '{op}'{_suggest(op, OPERATORS)}")
            raise _Skip
        if op == "exists":
            if not isinstance(operand, bool):
                self.error(line, f"'exists' takes true or false, not {operand!r}")
                raise _Skip
            self.field_type(full, None, line, exists_only=True)
            return Exists(path, operand)
        if isinstance(operand, dict):
            self.error(line, f"operator '{op}' needs a value, not a mapping")
            raise _Skip
        if operand is None:
            self.error(line, f"null is not a comparable value for '{full}' (use exists: false)")
            raise _Skip
        if op in ("in", "not_in"):
            if not isinstance(operand, list) or not operand:
                self.error(line, f"'{op}' needs a non-empty list of values")
                raise _Skip
            values = list(operand)
        elif isinstance(operand, list):
            self.error(line, f"operator '{op}' needs a single value (use 'in' for a list)")
            raise _Skip
        else:
            values = [operand]
        for item in values:
            if isinstance(item, list | dict) or item is None:
                self.error(line, f"'{op}' values must be plain scalars, got {item!r}")
                raise _Skip
        if op == "matches":
            # Report "needs a text field" rather than a literal/field type mismatch.
            kind = self.field_type(full, None if self.schema else values, line, exists_only=False)
        else:
            kind = self.field_type(full, values, line, exists_only=False)
        if op in ("gt", "gte", "lt", "lte") and kind not in ("int", "float"):
            self.error(line, f"'{op}' needs a number field, but '{full}' is {kind}")
            raise _Skip
        if op == "matches":
            self.check_regex(full, kind, operand, line, negated)
        return Compare(path, op, tuple(values) if op in ("in", "not_in") else operand)  # type: ignore[arg-type]

    def check_regex(self, full: str, kind: str, operand: Any, line: int, negated: bool) -> None:
        if kind != "str":
            self.error(line, f"'matches' needs a text field, but '{full}' is {kind}")
            raise _Skip
        if negated:
            self.error(line, "'matches' cannot be used under 'not' (the rule engine has no negated match)")
            raise _Skip
        try:
            pattern = parse_pattern(operand)
            if self.pattern_check is not None:
                self.pattern_check(pattern.durable())
        except ValueError as exc:
            self.error(line, str(exc))
            raise _Skip from None

    def field_type(self, full: str, values: list[Any] | None, line: int, *, exists_only: bool) -> str:
        """The field's type (from the schema, else implied by literals); records type errors."""
        if self.schema is not None:
            kind = self.schema.type_of(full)
            if kind is None:
                if exists_only and self.schema.is_object(full):
                    self.implied.setdefault(full, _FieldUse(ANY_TYPE, line))
                    return ANY_TYPE
                self.error(line, f"unknown field '{full}'{self._field_hint(full)}")
                raise _Skip
            if kind.startswith("list[") and not exists_only:
                self.error(line, f"field '{full}' is a {kind}; only 'exists' is supported on it")
                raise _Skip
            for value in values or []:
                if not literal_fits(kind, value):
                    self.error(line, f"field '{full}' is {kind}, but {value!r} is {_type_name(value)}")
                    raise _Skip
            return kind
        if exists_only:
            self.implied.setdefault(full, _FieldUse(ANY_TYPE, line))
            return ANY_TYPE
        kinds = {_type_name(v) for v in values or []}
        kind = _merge_kinds(kinds)
        if kind is None:
            self.error(line, f"values for '{full}' mix types: {', '.join(sorted(kinds))}")
            raise _Skip
        known = self.implied.get(full)
        if known is not None and known.kind != ANY_TYPE:
            merged = _merge_kinds({known.kind, kind})
            if merged is None:
                self.error(
                    line, f"field '{full}' is compared with {kind} here but with {known.kind} at line {known.line}"
                )
                raise _Skip
            known.kind = merged
            return merged
        self.implied[full] = _FieldUse(kind, line)
        return kind

    # ---- actions -----------------------------------------------------------------------------

    def parse_then(self, node: LMap) -> tuple[Action, ...] | None:
        raw = node.get("then")
        line = node.line_of("then") if "then" in node else node.line
        if not isinstance(raw, LList) or not raw:
            self.error(line, "'then' must be a non-empty list of actions")
            return None
        actions: list[Action] = []
        ok = True
        for i, item in enumerate(raw):
            action = self.parse_action(item, raw.line_of(i))
            if action is None:
                ok = False
            else:
                actions.append(action)
        return tuple(actions) if ok else None

    def parse_action(self, item: Any, line: int) -> Action | None:
        if isinstance(item, str):
            name, params = item, None
        elif isinstance(item, LMap) and len(item) == 1:
            name, params = next(iter(item.items()))
        else:
            self.error(line, "each action must be a one-key mapping {action: params} or an action name")
            return None
        if params is None:
            params = {}
        if not isinstance(params, dict):
            self.error(line, f"parameters of action '{name}' must be a mapping or empty, not {params!r}")
            return None
        params = plain(params)
        if self.actions is not None:
            spec = self.actions.get(name)
            if spec is None:
                self.error(line, f"unknown action '{name}'{_suggest(name, self.actions.names())}")
                return None
            if spec.validate is not None:
                try:
                    spec.validate(dict(params))
                except ValueError as exc:
                    self.error(line, f"action '{name}': {exc}")
                    return None
        return Action(name, params)


def _merge_kinds(kinds: set[str]) -> str | None:
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {"int", "float"}:
        return "float"
    return None

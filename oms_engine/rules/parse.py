"""Validation of one parsed rule file into rules, collecting every error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .catalog import ActionCatalog
from .conditions import ConditionParser, suggest
from .model import Action, Rule
from .yaml_source import LList, LMap

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TOP_KEYS = ("ruleset", "description", "mode", "rules")
RULE_KEYS = ("name", "priority", "description", "when", "then")


def plain(value: Any) -> Any:
    """Strip line bookkeeping so action params are ordinary dicts/lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass
class FileParser(ConditionParser):
    actions: ActionCatalog | None = None

    # ---- top level -------------------------------------------------------------------------

    def parse_top(self, data: Any) -> tuple[str, str, str, list[Rule]] | None:
        if not isinstance(data, LMap):
            line = getattr(data, "line", 1)
            self.error(line, "a rule file must be a mapping with 'ruleset' and 'rules'")
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.error(data.line_of(key), f"unknown top-level key '{key}'{suggest(key, TOP_KEYS)}")
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
                self.error(node.line_of(key), f"unknown key '{key}'{suggest(key, RULE_KEYS)}")
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
                self.error(line, f"unknown action '{name}'{suggest(name, self.actions.names())}")
                return None
            if spec.validate is not None:
                try:
                    spec.validate(dict(params))
                except ValueError as exc:
                    self.error(line, f"action '{name}': {exc}")
                    return None
        return Action(name, params)

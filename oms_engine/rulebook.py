"""The decision points of the pipeline and the rulesets that drive them.

One ruleset per decision point, each a YAML file in the rules directory named
after it. This module gives every point its fact schema and its action
catalogue (core actions plus plugin actions), loads and validates the files,
keeps them in the rules engine, and hot-reloads them: a broken edit is
refused with file:line errors and the running rules stay as they were.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .extensions import Extensions
from .facts import CORE_FIELDS, TRANSITION_FIELDS
from .rules import (
    ActionCatalog,
    ActionSpec,
    Decision,
    FactSchema,
    RuleEngine,
    Ruleset,
    load_rules_dir,
    load_ruleset_file,
)

POINTS = ("blocking", "split", "routing", "notifications")


def _require(params: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in params:
        raise ValueError(f"'{key}' is required")
    if not isinstance(params[key], kind) or (kind is str and not params[key]):
        raise ValueError(f"'{key}' must be a non-empty {kind.__name__}")
    return params[key]


def _only(params: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(params) - allowed)
    if extra:
        raise ValueError(f"unknown parameter(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


class Rulebook:
    def __init__(self, rules_dir: Path, ext: Extensions) -> None:
        self.dir = Path(rules_dir)
        self.ext = ext
        self.engine = RuleEngine()
        self._lock = threading.Lock()
        self.rulesets: dict[str, Ruleset] = {}
        self.schemas = {p: self._schema(p) for p in POINTS}
        self.catalogs = {p: self._catalog(p) for p in POINTS}
        self.reload()

    # -- schema and actions per point ------------------------------------
    def _schema(self, point: str) -> FactSchema:
        fields: dict[str, type] = dict(CORE_FIELDS)
        for _, provider in self.ext.fact_providers.items():
            fields.update(provider.fields)
        if point == "notifications":
            fields.update(TRANSITION_FIELDS)
        return FactSchema(fields)

    def _strategy_validator(self, registry: Any) -> Any:
        def validate(params: Mapping[str, Any]) -> None:
            name = _require(params, "strategy", str)
            if name not in registry:
                raise ValueError(f"unknown {registry.what} '{name}' (known: {', '.join(registry.names())})")
            check = getattr(registry.get(name), "validate_params", None)
            if check is not None:
                check(params)
        return validate

    def _catalog(self, point: str) -> ActionCatalog:
        specs: list[ActionSpec] = []
        if point == "blocking":
            def hold(params: Mapping[str, Any]) -> None:
                _only(params, {"reason"})
                _require(params, "reason", str)
            specs.append(ActionSpec("hold", "put the order on hold for review with a reason", hold))
        elif point == "split":
            specs.append(ActionSpec("split", "divide the order with a split strategy",
                                    self._strategy_validator(self.ext.split_strategies)))
        elif point == "routing":
            specs.append(ActionSpec("route", "try a routing strategy; the first that answers wins",
                                    self._strategy_validator(self.ext.routing_strategies)))
        elif point == "notifications":
            def notify(params: Mapping[str, Any]) -> None:
                _only(params, {"template", "medium"})
                name = _require(params, "template", str)
                if name not in self.ext.templates:
                    raise ValueError(f"unknown template '{name}' (known: {', '.join(self.ext.templates.names())})")
                medium = params.get("medium", self.ext.templates.get(name).medium)
                if not any(s.medium == medium for _, s in self.ext.senders.items()):
                    raise ValueError(f"no sender for medium '{medium}'")
            specs.append(ActionSpec("notify", "render a template and send it to the customer", notify))
        for _, handler in (self.ext.rule_actions.get(point).items() if point in self.ext.rule_actions else []):
            specs.append(ActionSpec(handler.name, handler.description, handler.validate))
        return ActionCatalog(specs)

    # -- loading -----------------------------------------------------------
    def reload(self) -> list[str]:
        """Validate every file, then swap them in; on any error nothing changes."""
        if not self.dir.is_dir():
            from .rules import RuleError, RulesetInvalid
            raise RulesetInvalid([RuleError(str(self.dir), None, None, "rules directory not found")])
        loaded = load_rules_dir(self.dir, schemas=self.schemas, actions=self.catalogs)
        unknown = sorted(set(loaded) - set(POINTS))
        if unknown:
            from .rules import RuleError, RulesetInvalid
            raise RulesetInvalid([
                RuleError(str(loaded[n].path), 1, None,
                          f"ruleset '{n}' is not a decision point (known: {', '.join(POINTS)})")
                for n in unknown])
        with self._lock:
            for name, rs in loaded.items():
                if name not in self.rulesets or self.rulesets[name].version != rs.version:
                    self.engine.load(rs)
            for name in set(self.rulesets) - set(loaded):
                self.engine.unload(name)
            self.rulesets = loaded
        return sorted(loaded)

    def load_file(self, path: Path) -> Ruleset:
        name = path.stem
        return load_ruleset_file(path, schema=self.schemas.get(name), actions=self.catalogs.get(name))

    def reads(self, point: str, *fields: str) -> bool:
        """Does the point's ruleset read any of these fields?"""
        rs = self.rulesets.get(point)
        return rs is not None and any(f in rs.field_types for f in fields)

    def version(self, point: str) -> str | None:
        rs = self.rulesets.get(point)
        return rs.version if rs else None

    def decide(self, point: str, facts: Mapping[str, Any]) -> Decision | None:
        if point not in self.rulesets:
            return None
        return self.engine.evaluate(point, facts)

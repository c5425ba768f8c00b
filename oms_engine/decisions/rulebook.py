"""The rulesets that drive the decision points, validated and held in the rules engine.

Every point has its fact schema (core facts plus every fact provider's
fields) and its action catalogue (core actions plus plugin actions). A set
of rulesets is validated as a whole (from the rules directory or from texts
stored in the database) and only then swapped in under a lock: a broken edit
is refused with file:line errors and the rules in force stay as they were.
Every decision point must have its ruleset: a deleted file is an error, not a
silently dropped decision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..payments.methods import Method
from ..plugin.registry import Named, PluginRegistry, Strategy
from ..rules import (
    ActionCatalog,
    ActionSpec,
    Decision,
    FactSchema,
    RuleEngine,
    RuleError,
    Ruleset,
    RulesetInvalid,
    load_rules_dir,
    load_ruleset_text,
)
from .order_facts import (
    CASE_FIELDS,
    COMMISSION_FIELDS,
    CORE_FIELDS,
    FREIGHT_FIELDS,
    LINE_FLAGS,
    REFUND_FIELDS,
    SHIPMENT_FIELDS,
    STOCK_FIELDS,
    TRANSITION_FIELDS,
    channel_fields,
)
from .points import POINTS, DecisionPoint


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


def _int(params: Mapping[str, Any], key: str, low: int, high: int) -> None:
    value = params.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
        raise ValueError(f"'{key}' must be a whole number from {low:,} to {high:,}")


def _codes(params: Mapping[str, Any], key: str) -> None:
    value = params.get(key)
    if value is not None and (not isinstance(value, list) or not value
                              or not all(isinstance(v, str) and v for v in value)):
        raise ValueError(f"'{key}' must be a list of carrier codes")


def _merging_actions() -> list[ActionSpec]:
    def merge(params: Mapping[str, Any]) -> None:
        _only(params, {"window_minutes", "wait_minutes", "max_orders", "max_value", "max_weight_g", "separate"})
        _require(params, "window_minutes", int)
        _int(params, "window_minutes", 1, 7 * 24 * 60)
        _int(params, "wait_minutes", 0, 24 * 60)
        if params.get("wait_minutes", 0) > params["window_minutes"]:
            raise ValueError("'wait_minutes' cannot be longer than 'window_minutes'")
        _int(params, "max_orders", 2, 100)
        _int(params, "max_value", 1, 10**13)
        _int(params, "max_weight_g", 1, 10**7)
        separate = params.get("separate", [])
        if not isinstance(separate, list) or not all(isinstance(a, str) and a in LINE_FLAGS for a in separate):
            raise ValueError(f"'separate' lists line attributes among {', '.join(LINE_FLAGS)}")

    def keep_apart(params: Mapping[str, Any]) -> None:
        _only(params, {"reason"})
        _require(params, "reason", str)

    return [ActionSpec("merge", "ship with other orders of the customer to the same address within a window",
                       merge),
            ActionSpec("keep_apart", "ship this order on its own, saying why", keep_apart)]


def _carrier_actions() -> list[ActionSpec]:
    def carrier(params: Mapping[str, Any]) -> None:
        _only(params, {"carrier", "service"})
        _require(params, "carrier", str)
        if "service" in params:
            _require(params, "service", str)

    def ranked(params: Mapping[str, Any]) -> None:
        _only(params, {"among", "meet_promise"})
        _codes(params, "among")
        if not isinstance(params.get("meet_promise", True), bool):
            raise ValueError("'meet_promise' must be true or false")

    return [ActionSpec("carrier", "try this carrier (and service); the first that takes the parcel wins", carrier),
            ActionSpec("cheapest", "try every service the warehouse has, cheapest quote first", ranked),
            ActionSpec("fastest", "try every service the warehouse has, earliest delivery first", ranked)]


def _aftersales_actions() -> list[ActionSpec]:
    def approve(params: Mapping[str, Any]) -> None:
        _only(params, {"reason"})
        if "reason" in params:
            _require(params, "reason", str)

    def with_reason(params: Mapping[str, Any]) -> None:
        _only(params, {"reason"})
        _require(params, "reason", str)

    return [ActionSpec("approve", "approve the case at once", approve),
            ActionSpec("review", "leave the case to a person, saying why", with_reason),
            ActionSpec("deny", "deny the case, saying why (the customer may appeal once)", with_reason)]


def _commission(params: Mapping[str, Any]) -> None:
    _only(params, {"rate_bp", "reason"})
    _require(params, "rate_bp", int)
    _int(params, "rate_bp", 0, 10_000)
    if "reason" in params:
        _require(params, "reason", str)


def _share(params: Mapping[str, Any]) -> None:
    _only(params, {"percent", "safety_stock", "reason"})
    _require(params, "percent", int)
    _int(params, "percent", 0, 100)
    if "safety_stock" in params:
        _require(params, "safety_stock", int)
        _int(params, "safety_stock", 0, 1_000_000)
    if "reason" in params:
        _require(params, "reason", str)


def _reason_only(params: Mapping[str, Any]) -> None:
    _only(params, {"reason"})
    if "reason" in params:
        _require(params, "reason", str)


def _refund_to(params: Mapping[str, Any]) -> None:
    _only(params, {"methods", "reason"})
    methods = params.get("methods")
    known = [m.value for m in Method]
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) and m in known for m in methods):
        raise ValueError(f"'methods' lists means of payment among {', '.join(known)}")
    if len(set(methods)) != len(methods):
        raise ValueError("'methods' names each means of payment once")
    if "reason" in params:
        _require(params, "reason", str)


def _freight_template(params: Mapping[str, Any]) -> None:
    _only(params, {"code", "on_mismatch", "tolerance"})
    _require(params, "code", str)
    if params.get("on_mismatch", "record") not in ("record", "hold"):
        raise ValueError("'on_mismatch' is record (the default) or hold")
    _int(params, "tolerance", 0, 10**12)


def _freight_free(params: Mapping[str, Any]) -> None:
    _only(params, {"reason", "on_mismatch", "tolerance"})
    if "reason" in params:
        _require(params, "reason", str)
    if params.get("on_mismatch", "record") not in ("record", "hold"):
        raise ValueError("'on_mismatch' is record (the default) or hold")
    _int(params, "tolerance", 0, 10**12)


class Rulebook:
    def __init__(self, rules_dir: Path, plugins: PluginRegistry) -> None:
        self.dir = Path(rules_dir)
        self.plugins = plugins
        self.engine = RuleEngine()
        self._lock = threading.Lock()
        self.rulesets: dict[str, Ruleset] = {}
        # Time spent deciding, for the benchmark's "share of time in rule evaluation".
        self.seconds = 0.0
        self.calls = 0
        self.schemas = {p: self._schema(p) for p in POINTS}
        self.catalogs = {p: self._catalog(p) for p in POINTS}

    # -- schema and actions per point ------------------------------------
    def _schema(self, point: str) -> FactSchema:
        if point == DecisionPoint.COMMISSION:
            return FactSchema(dict(COMMISSION_FIELDS))     # about a merchant's sales, not one order
        if point == DecisionPoint.FREIGHT:
            return FactSchema(dict(FREIGHT_FIELDS))        # decided before the order is stored
        if point == DecisionPoint.STOCK:
            return FactSchema(dict(STOCK_FIELDS))          # about a warehouse's stock for a channel, no order
        fields: dict[str, type] = {**CORE_FIELDS, **channel_fields(self.plugins.config.channel_facts)}
        for _, provider in self.plugins.fact_providers.items():
            fields.update(provider.fields)
        if point == DecisionPoint.NOTIFICATIONS:
            fields.update(TRANSITION_FIELDS)
        if point in (DecisionPoint.MERGING, DecisionPoint.CARRIERS):
            fields.update(SHIPMENT_FIELDS)
        if point == DecisionPoint.AFTERSALES:
            fields.update(CASE_FIELDS)
        if point == DecisionPoint.REFUNDS:
            fields.update(REFUND_FIELDS)
        return FactSchema(fields)

    def _strategy_validator(self, registry: Named[Strategy[Any]]) -> Any:
        def validate(params: Mapping[str, Any]) -> None:
            name = _require(params, "strategy", str)
            if name not in registry:
                raise ValueError(f"unknown {registry.what} '{name}' (known: {', '.join(registry.names())})")
            check = registry.get(name).validate_params
            if check is not None:
                check(params)
        return validate

    def _catalog(self, point: str) -> ActionCatalog:
        specs: list[ActionSpec] = []
        plugins = self.plugins
        if point == DecisionPoint.BLOCKING:
            def hold(params: Mapping[str, Any]) -> None:
                _only(params, {"reason"})
                _require(params, "reason", str)
            specs.append(ActionSpec("hold", "put the order on hold for review with a reason", hold))
            specs.append(ActionSpec("refuse", "refuse the order at placement: cancel it (stock freed, money "
                                    "refunded) and tell its channel the reason", hold))
            specs.append(ActionSpec("bin", "put the order in the recycle bin: its stock is freed, and unless a "
                                    "person restores it within timeouts.recycle_bin_hours it is cancelled then",
                                    hold))
        elif point == DecisionPoint.SPLIT:
            specs.append(ActionSpec("split", "divide the order with a split strategy",
                                    self._strategy_validator(plugins.split_strategies)))
        elif point == DecisionPoint.ROUTING:
            specs.append(ActionSpec("route", "try a routing strategy; the first that answers wins",
                                    self._strategy_validator(plugins.routing_strategies)))
        elif point == DecisionPoint.MERGING:
            specs += _merging_actions()
        elif point == DecisionPoint.CARRIERS:
            specs += _carrier_actions()
        elif point == DecisionPoint.AFTERSALES:
            specs += _aftersales_actions()
        elif point == DecisionPoint.STOCK:
            specs.append(ActionSpec("share", "offer the channel this percent of the warehouse's stock, less a safety "
                                    "stock per SKU", _share))
        elif point == DecisionPoint.COMMISSION:
            specs.append(ActionSpec("commission", "charge the merchant this rate, in basis points of its net sales",
                                    _commission))
        elif point == DecisionPoint.FREIGHT:
            specs.append(ActionSpec("template", "charge the freight this master-data template prices (and check "
                                                "the channel's figure against it)", _freight_template))
            specs.append(ActionSpec("free", "charge no freight (and check the channel's figure is none)",
                                    _freight_free))
        elif point == DecisionPoint.REFUNDS:
            specs.append(ActionSpec("refund_to", "pay back to these means of payment first, in this order",
                                    _refund_to))
            specs.append(ActionSpec("claw_back", "take the promotions on the goods the customer keeps off an "
                                                 "after-sales refund", _reason_only))
            specs.append(ActionSpec("keep_freight", "keep the freight of a parcel the customer refused at the door "
                                                    "out of its refund", _reason_only))
        elif point == DecisionPoint.NOTIFICATIONS:
            def notify(params: Mapping[str, Any]) -> None:
                _only(params, {"template", "medium"})
                name = _require(params, "template", str)
                if name not in plugins.templates:
                    raise ValueError(f"unknown template '{name}' (known: {', '.join(plugins.templates.names())})")
                medium = params.get("medium", plugins.templates.get(name).medium)
                if not any(s.medium == medium for _, s in plugins.senders.items()):
                    raise ValueError(f"no sender for medium '{medium}'")
            specs.append(ActionSpec("notify", "render a template and send it to the customer", notify))
        for _, handler in (plugins.rule_actions[point].items() if point in plugins.rule_actions else []):
            specs.append(ActionSpec(handler.name, handler.description, handler.validate))
        return ActionCatalog(specs)

    # -- validating --------------------------------------------------------
    def _check_points(self, loaded: Mapping[str, Ruleset], where: str) -> None:
        errors = [RuleError(str(loaded[n].path), 1, None,
                            f"ruleset '{n}' is not a decision point (known: {', '.join(POINTS)})")
                  for n in sorted(set(loaded) - set(POINTS))]
        errors += [RuleError(where, None, None, f"the ruleset '{p}' is missing: every decision point needs one "
                                                f"(a file {p}.yaml with an empty 'rules:' list decides nothing)")
                   for p in POINTS if p not in loaded]
        if errors:
            raise RulesetInvalid(errors)

    def validate_dir(self, directory: Path | None = None) -> dict[str, Ruleset]:
        """Every ruleset file of the directory, validated as a set; raises RulesetInvalid with every error."""
        directory = Path(directory or self.dir)
        if not directory.is_dir():
            raise RulesetInvalid([RuleError(str(directory), None, None, "rules directory not found")])
        loaded = load_rules_dir(directory, schemas=self.schemas, actions=self.catalogs)
        self._check_points(loaded, str(directory))
        return loaded

    def validate_texts(self, texts: Mapping[str, tuple[str, str]]) -> dict[str, Ruleset]:
        """Rulesets from {name: (filename, text)}, validated as a set."""
        loaded: dict[str, Ruleset] = {}
        errors: list[RuleError] = []
        for name, (filename, text) in sorted(texts.items()):
            try:
                rs = load_ruleset_text(text, filename=filename, schema=self.schemas.get(name),
                                       actions=self.catalogs.get(name))
            except RulesetInvalid as exc:
                errors.extend(exc.errors)
                continue
            if rs.name != name:
                errors.append(RuleError(filename, 1, None, f"the file names ruleset '{rs.name}', expected '{name}'"))
                continue
            loaded[name] = rs
        if errors:
            raise RulesetInvalid(errors)
        self._check_points(loaded, "rules")
        return loaded

    # -- swapping in ---------------------------------------------------------
    def install(self, rulesets: Mapping[str, Ruleset]) -> list[str]:
        """Make ``rulesets`` the ones in force; returns the names whose version changed."""
        with self._lock:
            changed = []
            for name, rs in rulesets.items():
                if name not in self.rulesets or self.rulesets[name].version != rs.version:
                    self.engine.load(rs)
                    changed.append(name)
            for name in set(self.rulesets) - set(rulesets):
                self.engine.unload(name)
            self.rulesets = dict(rulesets)
        return sorted(changed)

    def reload(self) -> list[str]:
        """Validate the rules directory, then swap it in; on any error nothing changes."""
        loaded = self.validate_dir()
        self.install(loaded)
        return sorted(loaded)

    def close(self) -> None:
        with self._lock:
            self.engine.close()
            self.rulesets = {}

    # -- deciding ------------------------------------------------------------
    def reads(self, point: str, *fields: str) -> bool:
        """Does the point's ruleset read any of these fields?"""
        rs = self.rulesets.get(point)
        return rs is not None and any(f in rs.field_types for f in fields)

    def reads_anywhere(self, fields: Mapping[str, type]) -> bool:
        """Does any ruleset in force read any of these fields?"""
        return any(f in rs.field_types for rs in self.rulesets.values() for f in fields)

    def version(self, point: str) -> str | None:
        rs = self.rulesets.get(point)
        return rs.version if rs else None

    def decide(self, point: str, facts: Mapping[str, Any]) -> Decision | None:
        if point not in self.rulesets:
            return None
        started = time.perf_counter()
        try:
            return self.engine.evaluate(point, facts)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1

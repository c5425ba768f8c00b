"""RuleEngine: the only code in the project that talks to durable_rules.

durable_rules is not thread-safe (concurrent calls segfault), so every call into
it, from any RuleEngine, happens under one module-level re-entrant lock.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import durable_rules_engine
from durable.engine import Host, MessageNotHandledException, MessageObservedException

from .compiler import (
    COUNTS_KEY,
    DATA_KEY,
    MARKER,
    MATCHES_KEY,
    SENTINEL,
    PatternTable,
    compile_ruleset,
    count_key,
    pattern_table,
    rule_key,
)
from .decision import Decision, FiredRule
from .errors import RuleEngineError
from .facts import MISSING, lookup, prepare_facts
from .model import And, Compare, Rule, Ruleset
from .regex import search

DURABLE_LOCK = threading.RLock()
_names = itertools.count(1)
_sids = itertools.count(1)

FireHook = Callable[[str, str], None]


class _QuietHost(Host):
    """A Host without timer threads or persistence; actions record the fired rule key."""

    def __init__(self) -> None:
        self.sink: list[str] | None = None
        self.failures: list[BaseException] = []
        self.on_fire: Callable[[str], None] | None = None
        super().__init__()

    def _run(self) -> None:
        # The stock Host starts dispatch timers that call into durable without our lock.
        return None

    def load_ruleset(self, ruleset_name: str) -> Any:
        raise RuleEngineError(f"durable ruleset '{ruleset_name}' is not registered")

    def save_ruleset(self, ruleset_name: str, ruleset_definition: Any) -> None:
        return None

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        host = self

        def act(c: Any) -> None:  # durable inspects the arity: exactly one parameter
            if action_name == SENTINEL:
                return
            if host.sink is not None:
                host.sink.append(action_name)
            if host.on_fire is not None:
                try:
                    host.on_fire(action_name)
                except BaseException as exc:
                    # durable only keeps the *last* error text in the state; keep the first object.
                    host.failures.append(exc)
                    raise

        return act


@dataclass(frozen=True)
class _Active:
    ruleset: Ruleset
    internal_name: str
    by_key: dict[str, Rule]
    patterns: PatternTable
    # Per rule, the equalities it cannot fire without (top-level `field: value` conjuncts).
    guards: tuple[tuple[tuple[str, Any], ...], ...] = ()


def required_equalities(rule: Rule) -> tuple[tuple[str, Any], ...]:
    """The `path == value` tests that every way of satisfying the rule includes."""
    parts = rule.when.parts if isinstance(rule.when, And) else (rule.when,)
    return tuple((p.path, p.value) for p in parts if isinstance(p, Compare) and p.op == "eq")


def _excluded(doc: Mapping[str, Any], guards: tuple[tuple[str, Any], ...]) -> bool:
    for path, want in guards:
        have = lookup(doc, path)
        if have is MISSING:
            return True  # a comparison on a missing field never fires
        if type(have) is type(want) and have != want:
            return True
    return False


def probe_definition(definition: dict[str, Any]) -> str | None:
    """Compile a durable definition in a throwaway ruleset; the engine's complaint, or None.

    Catches limits that only durable knows about (e.g. error 113, too many
    expressions in one rule) so they surface as load errors, not at deploy time.
    """
    plain = {key: {k: v for k, v in rule.items() if k != "run"} for key, rule in definition.items()}
    with DURABLE_LOCK:
        try:
            handle = durable_rules_engine.create_ruleset(f"probe__{next(_names)}", json.dumps(plain))
        except Exception as exc:  # durable raises a bare error carrying only a code
            return str(exc)
        durable_rules_engine.delete_ruleset(handle)
    return None


class RuleEngine:
    """Holds compiled rulesets by name; load() adds or hot-replaces, evaluate() decides.

    `on_fire(ruleset_name, rule_name)` runs inside the durable action for each fired
    rule (audit/metrics hook); an exception there fails the evaluation.
    """

    def __init__(self, *, on_fire: FireHook | None = None) -> None:
        self._on_fire = on_fire
        self._active: dict[str, _Active] = {}
        with DURABLE_LOCK:
            self._host = _QuietHost()

    def load(self, ruleset: Ruleset) -> None:
        """Register `ruleset`, atomically replacing one of the same name; the old stays on failure."""
        definition = compile_ruleset(ruleset)
        internal = f"{ruleset.name}__{ruleset.version}__{next(_names)}"
        by_key = {rule_key(rule): rule for rule in ruleset.rules}
        with DURABLE_LOCK:
            try:
                # register_rulesets consumes the dict it is given ('run' keys are deleted).
                self._host.register_rulesets({internal: copy.deepcopy(definition)})
            except Exception as exc:
                raise RuleEngineError(f"rule engine rejected ruleset '{ruleset.name}': {exc}") from exc
            old = self._active.get(ruleset.name)
            self._active[ruleset.name] = _Active(ruleset, internal, by_key, pattern_table(ruleset),
                                                 tuple(required_equalities(r) for r in ruleset.rules))
            if old is not None:
                self._drop(old.internal_name)

    def unload(self, name: str) -> None:
        with DURABLE_LOCK:
            active = self._active.pop(name)
            self._drop(active.internal_name)

    def _drop(self, internal: str) -> None:
        # Host has no removal API; without delete_ruleset the C side leaks the ruleset.
        durable_ruleset = self._host._ruleset_directory.pop(internal)
        self._host._ruleset_list.remove(durable_ruleset)
        durable_rules_engine.delete_ruleset(durable_ruleset._handle)

    def names(self) -> list[str]:
        with DURABLE_LOCK:
            return sorted(self._active)

    def ruleset(self, name: str) -> Ruleset:
        with DURABLE_LOCK:
            return self._active[name].ruleset

    def version(self, name: str) -> str:
        return self.ruleset(name).version

    def close(self) -> None:
        with DURABLE_LOCK:
            for name in list(self._active):
                self.unload(name)

    def evaluate(self, name: str, facts: Mapping[str, Any]) -> Decision:
        """Fired rules in (priority, file order); raises KeyError, FactError or RuleEngineError."""
        # One critical section: a concurrent reload must not free the ruleset between
        # looking it up and asserting into it.
        with DURABLE_LOCK:
            active = self._active[name]
            # Facts are checked first, so bad facts fail the same way on every path.
            doc = prepare_facts(facts, active.ruleset)
            # Most evaluations of a ruleset like the notifications one match nothing:
            # when every rule lacks one of its required equalities, the answer is
            # known without asking durable_rules.
            if all(_excluded(doc, g) for g in active.guards):
                return Decision(active.ruleset.name, active.ruleset.version, ())
            keys = self._run(active, doc)
        rules = sorted((active.by_key[k] for k in set(keys)), key=lambda r: (r.priority, r.index))
        if active.ruleset.mode == "first":
            rules = rules[:1]
        return Decision(active.ruleset.name, active.ruleset.version, tuple(FiredRule.of(r) for r in rules))

    def _run(self, active: _Active, doc: dict[str, Any]) -> list[str]:
        ruleset = active.ruleset
        counts = {}
        for list_path in ruleset.list_paths:
            items = lookup(doc, list_path)
            counts[count_key(ruleset.list_paths, list_path)] = 0 if not isinstance(items, list) else len(items)
        sid = f"e{next(_sids)}"
        flags, data = _match_flags(active.patterns, doc)
        fact = {"sid": sid, "id": sid, **MARKER, COUNTS_KEY: counts, MATCHES_KEY: flags, DATA_KEY: data}
        fired: list[str] = []
        hook = self._on_fire

        def on_fire(key: str) -> None:
            if hook is not None:
                hook(ruleset.name, active.by_key[key].name)

        with DURABLE_LOCK:
            host = self._host
            host.sink, host.on_fire, host.failures = fired, on_fire, []
            failures = host.failures
            try:
                try:
                    host.assert_fact(active.internal_name, fact)
                except MessageNotHandledException:
                    pass  # nothing matched (cannot happen while the sentinel rule exists)
                except MessageObservedException:
                    pass  # same fact twice; ids are unique so this is defensive only
                state = host.get_state(active.internal_name, sid)
            finally:
                host.sink, host.on_fire = None, None
                # Live states are capped (~1024 per ruleset): always delete.
                host.delete_state(active.internal_name, sid)
        if failures:
            raise RuleEngineError(f"ruleset '{ruleset.name}' failed during evaluation: {failures[0]}") from failures[0]
        if "exception" in state:
            raise RuleEngineError(f"ruleset '{ruleset.name}' failed during evaluation: {state['exception']}")
        return fired


def _flags_for(patterns: PatternTable, scope: str | None, record: Any) -> dict[str, bool]:
    flags = {}
    for (where, path, pattern), flag in patterns.items():
        if where == scope:
            value = lookup(record, path)
            if value is not MISSING:  # absent flag = unknown, as for any missing field
                flags[flag] = search(pattern, value)
    return flags


def _match_flags(patterns: PatternTable, doc: dict[str, Any]) -> tuple[dict[str, bool], dict[str, Any]]:
    """Top-level match flags, and `doc` with per-element flags added to list elements."""
    if not patterns:
        return {}, doc
    data = dict(doc)
    for list_path in {scope for scope, _, _ in patterns if scope is not None}:
        items = lookup(doc, list_path)
        if isinstance(items, list):
            flagged = [{**item, MATCHES_KEY: _flags_for(patterns, list_path, item)} for item in items]
            _replace(data, list_path, flagged)
    return _flags_for(patterns, None, doc), data


def _replace(doc: dict[str, Any], path: str, value: Any) -> None:
    # Copy the dicts along the path so the caller's (shared) projection is untouched.
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node[part] = dict(node[part])
        node = node[part]
    node[last] = value

"""RuleEngine: the only code in the project that talks to durable_rules.

durable_rules is not thread-safe (concurrent calls segfault), so every call into
it, from any RuleEngine, happens under one module-level re-entrant lock.

Each YAML ruleset is registered as one or more durable rulesets ("chunks", see
compiler.py) that stay inside the engine's measured limits; an evaluation posts
one fact to each chunk that can fire and merges the fired rules.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import durable_rules_engine
from durable.engine import Host, MessageNotHandledException, MessageObservedException
from durable.engine import Ruleset as DurableRuleset

from .compiler import Chunk, CompiledRuleset, compile_ruleset
from .decision import Decision, FiredRule
from .errors import RuleEngineError
from .facts import MISSING, lookup, prepare_facts
from .memo import Memo
from .model import And, Compare, Rule, Ruleset
from .posting import FlagValues, post_document
from .terms import MARKER, SENTINEL, RuleNotCompilable, rule_key

log = logging.getLogger("oms.rules")

DURABLE_LOCK = threading.RLock()
_names = itertools.count(1)
_sids = itertools.count(1)

FireHook = Callable[[str, str], None]

# Definitions durable refused, by fingerprint: every refused create_ruleset leaks about 200 KB
# in the C engine, so a definition it refused once is never handed to it again.
_REFUSED: dict[str, str] = {}
_REFUSED_MAX = 1024
# Durable handles whose owner was garbage collected while they could not be freed safely.
_DEFERRED_FREES: list[int] = []
_depth = 0  # durable sections entered on the thread that holds DURABLE_LOCK


@contextlib.contextmanager
def _durable_section() -> Iterator[None]:
    """Hold the lock; on leaving the outermost section, free what finalizers had to defer."""
    global _depth
    with DURABLE_LOCK:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0 and _DEFERRED_FREES:
                _free_deferred()


def _free_deferred() -> None:
    while _DEFERRED_FREES:
        with contextlib.suppress(Exception):  # an invalid handle is only refused, never crashes
            durable_rules_engine.delete_ruleset(_DEFERRED_FREES.pop())


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


class _Registry:
    """The durable rulesets of one RuleEngine: kept apart so a finalizer can free them."""

    def __init__(self) -> None:
        self.host = _QuietHost()
        self.handles: dict[str, int] = {}  # internal name -> durable handle

    def create(self, internal: str, definition: dict[str, Any]) -> None:
        text = json.dumps(definition, sort_keys=True, default=str)
        fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
        refused = _REFUSED.get(fingerprint)
        if refused is not None:
            raise RuleEngineError(f"{refused} (refused before; not retried)")
        try:
            # register_rulesets consumes the dict it is given ('run' keys are deleted).
            self.host.register_rulesets({internal: copy.deepcopy(definition)})
        except Exception as exc:
            if len(_REFUSED) >= _REFUSED_MAX:
                _REFUSED.clear()
            _REFUSED[fingerprint] = str(exc)
            raise RuleEngineError(str(exc)) from exc
        self.handles[internal] = self.host._ruleset_directory[internal]._handle

    def rebuild(self, internal: str, definition: dict[str, Any]) -> None:
        """Replace a durable ruleset whose state is broken (touching that state can crash)."""
        old = self.host._ruleset_directory[internal]
        durable_rules_engine.delete_ruleset(old._handle)
        fresh = DurableRuleset(internal, self.host, copy.deepcopy(definition))
        self.host._ruleset_directory[internal] = fresh
        self.host._ruleset_list[self.host._ruleset_list.index(old)] = fresh
        self.handles[internal] = fresh._handle

    def drop(self, internal: str) -> None:
        # Host has no removal API; without delete_ruleset the C side leaks the ruleset.
        durable_ruleset = self.host._ruleset_directory.pop(internal)
        self.host._ruleset_list.remove(durable_ruleset)
        del self.handles[internal]
        durable_rules_engine.delete_ruleset(durable_ruleset._handle)

    def release(self) -> None:
        """Free every durable ruleset still registered (the RuleEngine was collected)."""
        handles = list(self.handles.values())
        self.handles.clear()
        if not handles:
            return
        # A finalizer may run inside a durable call on this thread (garbage collection during
        # an action) or while another thread holds the lock: then defer instead of re-entering.
        if DURABLE_LOCK.acquire(blocking=False):
            try:
                _DEFERRED_FREES.extend(handles)
                if _depth == 0:
                    _free_deferred()
            finally:
                DURABLE_LOCK.release()
        else:
            _DEFERRED_FREES.extend(handles)


@dataclass(frozen=True)
class _Active:
    ruleset: Ruleset
    compiled: CompiledRuleset
    internal_names: tuple[str, ...]  # one per chunk
    by_key: dict[str, Rule]
    # Per rule index, the equalities it cannot fire without (top-level `field: value` conjuncts).
    guards: dict[int, tuple[tuple[str, Any], ...]]
    # Remembered answers of this version (memo.py); None when every evaluation must reach durable.
    memo: Memo | None = None
    # And per chunk, for a ruleset of several: where whole orders rarely repeat (hundreds of rules), the
    # few tests of one chunk still do.
    chunk_memos: tuple[Memo, ...] | None = None


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


class RuleEngine:
    """Holds compiled rulesets by name; load() adds or hot-replaces, evaluate() decides.

    `on_fire(ruleset_name, rule_name)` runs inside the durable action for each fired
    rule (audit/metrics hook); an exception there fails the evaluation. close() frees
    the engine's durable rulesets; an engine that is garbage collected frees them too.
    """

    def __init__(self, *, on_fire: FireHook | None = None, memo: bool = True) -> None:
        """``memo``: remember the answer per signature (memo.py); off when ``on_fire`` must hear every firing."""
        self._on_fire = on_fire
        self._memo = memo and on_fire is None
        self._active: dict[str, _Active] = {}
        with _durable_section():
            self._registry = _Registry()
        self._finalizer = weakref.finalize(self, self._registry.release)

    @property
    def _host(self) -> _QuietHost:
        return self._registry.host

    def load(self, ruleset: Ruleset) -> None:
        """Register `ruleset`, atomically replacing one of the same name; the old stays on failure."""
        try:
            compiled = compile_ruleset(ruleset)
        except RuleNotCompilable as exc:
            raise RuleEngineError(f"rule engine rejected ruleset '{ruleset.name}': {exc}") from exc
        by_key = {rule_key(rule): rule for rule in ruleset.rules}
        guards = {rule.index: required_equalities(rule) for rule in ruleset.rules}
        with _durable_section():
            created: list[str] = []
            try:
                for chunk in compiled.chunks:
                    internal = f"{ruleset.name}__{ruleset.version}__{next(_names)}"
                    self._registry.create(internal, chunk.definition)
                    created.append(internal)
            except RuleEngineError as exc:
                for internal in created:
                    self._registry.drop(internal)
                raise RuleEngineError(f"rule engine rejected ruleset '{ruleset.name}': {exc}") from exc
            old = self._active.get(ruleset.name)
            chunk_memos = (tuple(Memo(chunk.rules) for chunk in compiled.chunks)
                           if self._memo and len(compiled.chunks) > 1 else None)
            self._active[ruleset.name] = _Active(ruleset, compiled, tuple(created), by_key, guards,
                                                 Memo(ruleset.rules) if self._memo else None, chunk_memos)
            if old is not None:
                self._drop(old)

    def unload(self, name: str) -> None:
        with _durable_section():
            self._drop(self._active.pop(name))

    def _drop(self, active: _Active) -> None:
        for internal in active.internal_names:
            self._registry.drop(internal)

    def names(self) -> list[str]:
        with DURABLE_LOCK:
            return sorted(self._active)

    def ruleset(self, name: str) -> Ruleset:
        with DURABLE_LOCK:
            return self._active[name].ruleset

    def version(self, name: str) -> str:
        return self.ruleset(name).version

    def close(self) -> None:
        """Free every durable ruleset of this engine; it can be loaded again afterwards."""
        with _durable_section():
            for name in list(self._active):
                self.unload(name)

    def evaluate(self, name: str, facts: Mapping[str, Any]) -> Decision:
        """Fired rules in (priority, file order); raises KeyError, FactError or RuleEngineError."""
        # One critical section: a concurrent reload must not free the ruleset between
        # looking it up and asserting into it.
        with _durable_section():
            active = self._active[name]
            ruleset = active.ruleset
            # Facts are checked first, so bad facts fail the same way on every path.
            doc = prepare_facts(facts, ruleset)
            # Most evaluations of a ruleset like the notifications one match nothing: a chunk
            # whose every rule lacks one of its required equalities need not be asked.
            memo, signature = active.memo, None
            remembered = None
            if memo is not None and memo.active:
                signature = memo.signature.of(doc)
                remembered = memo.get(signature)
                if not memo.active:   # judged just now (memo.py): from here on, durable alone
                    log.info("ruleset %s version %s: %d of %d decisions repeated; no longer remembered",
                             ruleset.name, ruleset.version, memo.hits, memo.hits + memo.misses)
            if remembered is not None:
                keys: set[str] | frozenset[str] = remembered
            else:
                keys = self._ask(active, doc)
                if memo is not None and signature is not None:
                    memo.put(signature, keys)
        rules = sorted((active.by_key[k] for k in keys), key=lambda r: (r.priority, r.index))
        if ruleset.mode == "first":
            rules = rules[:1]
        fired_rules = tuple(FiredRule.of(r) for r in rules)
        return Decision(ruleset.name, ruleset.version, fired_rules, MappingProxyType(doc))

    def _ask(self, active: _Active, doc: dict[str, Any]) -> set[str]:
        """The keys of the rules durable_rules fires for ``doc``, chunk by chunk."""
        guards, memos = active.guards, active.chunk_memos
        flags = FlagValues(active.compiled.flags, doc)
        keys: set[str] = set()
        for i, (chunk, internal) in enumerate(zip(active.compiled.chunks, active.internal_names, strict=True)):
            if all(_excluded(doc, guards[rule.index]) for rule in chunk.rules):
                continue
            memo = memos[i] if memos is not None else None
            signature: tuple[Any, ...] | None = None
            fired: frozenset[str] | list[str] | None = None
            if memo is not None and memo.active:
                signature = memo.signature.of(doc)
                fired = memo.get(signature)
            if fired is None:
                fired = self._run(active, chunk, internal, post_document(chunk, doc, flags), keys)
                if memo is not None and signature is not None:
                    memo.put(signature, fired)
            keys.update(fired)
            # Chunks follow (priority, file order), so the first chunk that fires holds the winner.
            if fired and active.ruleset.mode == "first":
                break
        return keys

    def memo_stats(self, name: str) -> tuple[int, int]:
        """(hits, misses) of a ruleset's memo since it was loaded."""
        memo = self._active[name].memo
        return (memo.hits, memo.misses) if memo is not None else (0, 0)

    def _run(
        self, active: _Active, chunk: Chunk, internal: str, posted: dict[str, Any], reported: set[str]
    ) -> list[str]:
        ruleset = active.ruleset
        sid = f"e{next(_sids)}"
        fact = {"sid": sid, "id": sid, **MARKER, **posted}
        fired: list[str] = []
        hook = self._on_fire
        seen = set(reported)

        def on_fire(key: str) -> None:
            # durable fires once per true alternative of a rule, possibly in several chunks:
            # the hook hears of each rule once.
            if hook is not None and key not in seen:
                seen.add(key)
                hook(ruleset.name, active.by_key[key].name)

        host = self._host
        host.sink, host.on_fire, host.failures = fired, on_fire, []
        failures = host.failures
        try:
            try:
                host.assert_fact(internal, fact)
            except MessageNotHandledException:
                pass  # nothing matched (cannot happen while the sentinel rule exists)
            except MessageObservedException:
                pass  # same fact twice; ids are unique so this is defensive only
            except durable_rules_engine.error as exc:
                # Reading or deleting the state of a failed assert aborts the process: replace
                # the whole durable ruleset instead. The compiler keeps facts inside the limits,
                # so this is a last line of defence, not a code path.
                host.sink, host.on_fire = None, None
                self._registry.rebuild(internal, chunk.definition)
                raise RuleEngineError(f"ruleset '{ruleset.name}' failed during evaluation: {exc}") from exc
            state = host.get_state(internal, sid)
            # Live states are capped (~1024 per ruleset): always delete.
            host.delete_state(internal, sid)
        finally:
            host.sink, host.on_fire = None, None
        if failures:
            raise RuleEngineError(f"ruleset '{ruleset.name}' failed during evaluation: {failures[0]}") from failures[0]
        if "exception" in state:
            raise RuleEngineError(f"ruleset '{ruleset.name}' failed during evaluation: {state['exception']}")
        return fired

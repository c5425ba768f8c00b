"""Translation of validated rulesets into durable_rules definitions that stay inside its limits.

Layout of the document posted for one evaluation of one chunk (see engine.py):
    {"sid": ..., "id": ..., "$k": "f", "$n": {"c0": <len of list 0>}, "$m": {"m0": <bool>},
     "d": <the fields this chunk reads, each list element with its own "$m">}
User data lives under "d" so that user fields can never collide with durable's
own `sid`/`id`. Every rule ANDs `{"$k": "f"}`: after each action durable
re-asserts the session state document as a fact, and without the marker a rule
such as `exists: false` would match that state and loop forever. `$n` carries
list lengths because `$iall` is false on an empty list, while `all_lines` is
vacuously true. `$m` carries the results of `matches` and of `in`/`not_in` with
several values, computed in Python (regex.py and normalize.py explain why); a
flag is absent when its field is missing, so a negated test on a missing field
stays unknown, like every comparison.

Each rule's condition is put in disjunctive normal form over "atoms" (a
top-level test, one `$iany`, one `$iall` clause, or an empty-list test) and every
conjunction ("term") becomes one durable rule whose action names the YAML rule.
So no durable condition contains an `$or`, and the terms are packed, in
(priority, file order), into chunks: one durable ruleset per chunk, each posted
only the fields and flags its own terms read. Why chunks: while one fact walks
durable's alpha network, every node that passes pushes its passing children on
a fixed 64-entry stack. The network of a chunk is a trie of its terms (durable
shares equal prefixes), and the pending nodes on that stack root disjoint
subtrees that each end at least one term, so they never outnumber the terms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .limits import MAX_TERMS_PER_CHUNK
from .model import Exists, Rule, Ruleset
from .normalize import NotCompilable
from .terms import (
    COUNTS_KEY,
    DATA_KEY,
    MARKER,
    MATCHES_KEY,
    OPS,
    SENTINEL,
    AllLines,
    AnyLine,
    Atom,
    Flag,
    Leaf,
    Needs,
    RuleNotCompilable,
    Term,
    Top,
    check_condition,
    condition_terms,
    count_key,
    leaf_flag,
    rule_key,
)

# ---- Compiled form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListPost:
    """How one list is posted to a chunk."""

    path: str
    count_key: str | None  # its length goes to `$n` under this key (all_lines needs it)
    elements: bool  # the elements are posted (some `$iany`/`$iall` reads them)
    fields: tuple[tuple[str, bool], ...]  # (element path, has read paths below it)
    flags: tuple[tuple[str, Flag], ...]  # (flag name, flag) per element


@dataclass(frozen=True)
class Chunk:
    """One durable ruleset: some terms of consecutive rules, and what to post to it."""

    definition: dict[str, Any]
    rules: tuple[Rule, ...]  # distinct, in (priority, file order)
    fields: tuple[tuple[str, bool], ...]  # (top-level data path, has read paths below it)
    flags: tuple[tuple[str, Flag], ...]  # top-level flags
    lists: tuple[ListPost, ...]


@dataclass(frozen=True)
class CompiledRuleset:
    chunks: tuple[Chunk, ...]
    flags: dict[Flag, str]  # every flag of the ruleset -> its name


class _Compiler:
    def __init__(self, lists: tuple[str, ...], flags: dict[Flag, str]) -> None:
        self.lists = lists
        self.flags = flags

    def leaf(self, leaf: Leaf, scope: str | None) -> dict[str, Any]:
        field_prefix = "$i." if scope else f"{DATA_KEY}."
        if isinstance(leaf, Exists):
            return {"$ex" if leaf.present else "$nex": {field_prefix + leaf.path: 1}}
        flag = leaf_flag(leaf, scope)
        if flag is not None:
            name = self.flags.setdefault(flag[0], f"m{len(self.flags)}")
            return {f"{'$i.' if scope else ''}{MATCHES_KEY}.{name}": flag[1]}
        path = field_prefix + leaf.path
        if leaf.op == "eq":
            return {path: leaf.value}
        return {OPS[leaf.op]: {path: leaf.value}}

    def atom(self, atom: Atom) -> dict[str, Any]:
        if isinstance(atom, Top):
            return self.leaf(atom.leaf, None)
        if isinstance(atom, AnyLine):
            parts = [self.leaf(leaf, atom.list_path) for leaf in atom.leaves]
            body = parts[0] if len(parts) == 1 else {"$and": parts}
            return {"$iany": {f"{DATA_KEY}.{atom.list_path}": body}}
        if isinstance(atom, AllLines):
            return {"$iall": {f"{DATA_KEY}.{atom.list_path}": self.leaf(atom.leaf, atom.list_path)}}
        return {f"{COUNTS_KEY}.{count_key(self.lists, atom.list_path)}": 0}

    def term(self, term: Term) -> dict[str, Any]:
        if not term:
            return dict(MARKER)
        return {"$and": [dict(MARKER), *(self.atom(a) for a in term)]}


@dataclass
class _Open:
    units: list[tuple[Rule, Term]] = dataclasses.field(default_factory=list)
    needs: Needs = dataclasses.field(default_factory=Needs)


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """Chunks of at most MAX_TERMS_PER_CHUNK durable rules; raises RuleNotCompilable.

    Each chunk ends with a catch-all sentinel: every evaluation then fires at least
    one action, because deleting the state of an evaluation that matched nothing was
    observed to segfault durable_rules 2.0.28. durable's `pri` must be non-negative
    (negative values sorted wrongly in experiments); the facade sorts anyway.
    """
    problems = compile_problems(ruleset)
    if problems:
        raise problems[0]
    flags: dict[Flag, str] = {}
    compiler = _Compiler(ruleset.list_paths, flags)
    chunks: list[Chunk] = []
    current = _Open()
    for rule in ruleset.ordered_rules():
        for term in condition_terms(rule.when):
            unit = Needs()
            unit.add_term(term)
            merged = current.needs.merged(unit)
            if current.units and (len(current.units) >= MAX_TERMS_PER_CHUNK or not merged.fits()):
                chunks.append(_close(current, compiler, ruleset))
                current = _Open()
                merged = unit
            current.units.append((rule, term))
            current.needs = merged
    if current.units or not chunks:
        chunks.append(_close(current, compiler, ruleset))
    return CompiledRuleset(tuple(chunks), flags)


def compile_problems(ruleset: Ruleset) -> list[RuleNotCompilable]:
    """Every rule that cannot be compiled within the engine's limits, with the reason."""
    problems = []
    for rule in ruleset.rules:
        try:
            check_condition(rule.when)
        except NotCompilable as exc:
            problems.append(RuleNotCompilable(rule, str(exc)))
    return problems


def _close(chunk: _Open, compiler: _Compiler, ruleset: Ruleset) -> Chunk:
    definition: dict[str, Any] = {}
    for n, (rule, term) in enumerate(chunk.units):
        definition[f"t{n}"] = {"all": [{"m": compiler.term(term)}], "pri": n, "run": rule_key(rule)}
    definition[SENTINEL] = {"all": [{"m": dict(MARKER)}], "pri": len(chunk.units), "run": SENTINEL}
    needs = chunk.needs
    names = compiler.flags
    lists = []
    for list_path in sorted(set(needs.items) | needs.counts):
        element_paths = needs.items.get(list_path, set())
        lists.append(
            ListPost(
                path=list_path,
                count_key=count_key(ruleset.list_paths, list_path) if list_path in needs.counts else None,
                elements=list_path in needs.items,
                fields=_with_children(element_paths),
                flags=tuple(sorted((names[f], f) for f in needs.item_flags.get(list_path, set()))),
            )
        )
    rules = tuple({rule.index: rule for rule, _ in chunk.units}.values())
    return Chunk(
        definition=definition,
        rules=rules,
        fields=_with_children(needs.paths),
        flags=tuple(sorted((names[f], f) for f in needs.flags)),
        lists=tuple(lists),
    )


def _with_children(paths: set[str]) -> tuple[tuple[str, bool], ...]:
    ordered = sorted(paths, key=lambda p: (p.count("."), p))
    return tuple((p, any(q.startswith(p + ".") for q in paths)) for p in ordered)

"""Dry-run: what a candidate ruleset would have decided on the facts of the latest stored decisions.

A candidate is the YAML text of one ruleset that is not in force (an edited
file, or one uploaded to the API). :func:`dry_run`:

1. validates it as the rules in force are validated: the decision point's fact
   schema and action catalogue, errors naming file, line and rule
   (RulesetInvalid); its ``ruleset:`` name is the decision point it would replace;
2. reads the latest ``last`` decisions of that point, newest first, each with
   the facts it was made on (``decisions.facts``: only the fields the ruleset in
   force then read) and what it fired and did;
3. loads the candidate into a rule engine of its own (never the one production
   decides with, never stored as a version) and evaluates it on each decision's
   facts through :meth:`RuleEngine.evaluate`, the call production decides with,
   which holds the module-wide durable_rules lock for each evaluation, and only
   for it, so the workers of this process keep deciding meanwhile;
4. compares what it fires and does with what was stored, and reports the
   decisions that would change, before and after;
5. runs the candidate's own rule tests (the files of ``rules/tests`` whose
   ``ruleset:`` it is).

A decision is replayed only where its stored facts hold everything the
candidate reads: a field the version that made it did not read was never
stored, and replaying without it would report a change that is not one (or
hide one). Such a decision, or one stored without facts, is counted and listed
with the reason, never left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..rules import (
    Decision,
    FactError,
    RuleEngine,
    RuleEngineError,
    RuleError,
    Ruleset,
    RulesetInvalid,
    RuleTestResult,
    load_ruleset_text,
)
from ..rules.facts import ANY_TYPE, MISSING, lookup
from ..rules.testing import _run_file  # `oms rules test`'s runner: the candidate's tests run as the rules' in force do
from ..rules.yaml_source import LMap, YamlProblem, load_located
from ..storage.db import Database
from ..storage.models import ActiveRule, DecisionRecord, Order, RuleVersion
from .points import POINTS, DecisionPoint
from .rulebook import Rulebook

DEFAULT_LAST = 100
MAX_LAST = 10_000


# -- the candidate -------------------------------------------------------------------------------------------
def load_candidate(rulebook: Rulebook, text: str, filename: str) -> Ruleset:
    """The candidate validated for the decision point its ``ruleset:`` names; RulesetInvalid with file:line."""
    try:
        tree = load_located(text, [])
    except YamlProblem:
        tree = None    # the loader below reports it with its line
    name = tree.get("ruleset") if isinstance(tree, LMap) else None
    if not isinstance(name, str):
        # Broken YAML or no name: the loader without a schema says what is wrong, where.
        load_ruleset_text(text, filename=filename)
        raise RulesetInvalid([RuleError(filename, 1, None, "the file names no ruleset")])
    if name not in POINTS:
        raise RulesetInvalid([RuleError(filename, tree.line_of("ruleset"), None,
                                        f"ruleset '{name}' is not a decision point (known: {', '.join(POINTS)})")])
    return load_ruleset_text(text, filename=filename, schema=rulebook.schemas[name], actions=rulebook.catalogs[name])


def _engine_for(ruleset: Ruleset) -> RuleEngine:
    engine = RuleEngine()
    try:
        engine.load(ruleset)
    except RuleEngineError as exc:
        # The loader checks the engine's limits first, so this is not expected; said as the file's error all the same.
        engine.close()
        raise RulesetInvalid([RuleError(ruleset.path, None, None, str(exc))]) from None
    return engine


def _test_files(tests_dir: Path, name: str) -> list[Path]:
    """The rule test files of ``tests_dir`` about ruleset ``name`` (an unreadable one is `oms rules test`'s to
    report)."""
    found = []
    for path in sorted(tests_dir.glob("*.y*ml")) if tests_dir.is_dir() else []:
        try:
            tree = load_located(path.read_text(encoding="utf-8"), [])
        except (OSError, UnicodeDecodeError, YamlProblem):
            continue
        if isinstance(tree, LMap) and tree.get("ruleset") == name:
            found.append(path)
    return found


def _run_tests(engine: RuleEngine, name: str, tests_dir: Path) -> list[RuleTestResult]:
    return [r for path in _test_files(tests_dir, name) for r in _run_file(engine, path)]


def candidate_tests(rulebook: Rulebook, ruleset: Ruleset, tests_dir: Path | None = None) -> list[RuleTestResult]:
    """The candidate's own rule tests (``tests_dir``, default the rules directory's ``tests``), run on it."""
    engine = _engine_for(ruleset)
    try:
        return _run_tests(engine, ruleset.name, Path(tests_dir or rulebook.dir / "tests"))
    finally:
        engine.close()


# -- the report -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """One side of a decision: the version that made it, the rules it fired, the actions and the outcome.

    ``outcome`` after the change is given where it follows from the actions alone (screening); elsewhere it
    depends on what the stage finds when it decides (stock, carriers' quotes) and is None.
    """

    version: str
    fired: list[str]
    actions: list[dict[str, Any]]
    outcome: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "fired": self.fired, "actions": self.actions, "outcome": self.outcome}


@dataclass(frozen=True)
class Changed:
    decision: int                # the stored decision's id
    order: str
    decided_at: str
    before: Side
    after: Side

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "order": self.order, "decided_at": self.decided_at,
                "before": self.before.to_dict(), "after": self.after.to_dict()}


@dataclass(frozen=True)
class NotReplayed:
    decision: int
    order: str
    decided_at: str
    version: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "order": self.order, "decided_at": self.decided_at,
                "version": self.version, "why": self.why}


@dataclass(frozen=True)
class DryRunReport:
    ruleset: str                 # the decision point
    version: str                 # the candidate's content hash
    file: str
    active_version: str | None   # the version in force in the database
    last: int                    # how many decisions were asked for
    decisions: int               # how many were read (fewer when fewer are stored)
    changed: list[Changed]
    unchanged: int
    errors: list[NotReplayed]
    tests: list[RuleTestResult] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        return len(self.changed) + self.unchanged

    @property
    def tests_failed(self) -> int:
        return sum(not t.passed for t in self.tests)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset, "version": self.version, "file": self.file,
            "active_version": self.active_version, "last": self.last,
            "counts": {"decisions": self.decisions, "evaluated": self.evaluated, "changed": len(self.changed),
                       "unchanged": self.unchanged, "errors": len(self.errors)},
            "changed": [c.to_dict() for c in self.changed],
            "errors": [e.to_dict() for e in self.errors],
            "tests": tests_dict(self.tests),
        }


def tests_dict(results: list[RuleTestResult]) -> dict[str, Any]:
    failed = sum(not r.passed for r in results)
    return {"passed": len(results) - failed, "failed": failed,
            "results": [{"file": r.file, "case": r.case, "passed": r.passed, "message": r.message} for r in results]}


# -- outcomes ---------------------------------------------------------------------------------------------------
def _screening_outcome(decision: Decision) -> dict[str, Any]:
    """What pipeline/screen.py records for these actions (a refusal wins over a bin, a bin over a hold)."""
    actions = decision.actions
    for kind in ("refuse", "bin"):
        reasons = [a.params["reason"] for a in actions if a.name == kind]
        if reasons:
            return {kind: True, "reasons": reasons}
    reasons = [a.params["reason"] for a in actions if a.name == "hold"]
    return {"hold": bool(reasons), "reasons": reasons}


# The points whose recorded outcome follows from the rules' actions alone.
OUTCOMES: dict[str, Callable[[Decision], dict[str, Any]]] = {DecisionPoint.BLOCKING.value: _screening_outcome}


# -- replaying --------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """As the database gives it back (JSON), so a stored and a fresh decision compare equal when they are."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _stored_side(version: str, fired: Any, outcome: Any) -> Side:
    rules = [f for f in (fired or []) if isinstance(f, Mapping)]
    return Side(version, [str(f.get("rule")) for f in rules],
                [a for f in rules for a in (f.get("actions") or [])], outcome)


def _fresh_side(decision: Decision, point: str) -> Side:
    derive = OUTCOMES.get(point)
    return Side(decision.version, decision.fired_names, _plain([{a.name: dict(a.params)} for a in decision.actions]),
                _plain(derive(decision)) if derive else None)


def _covered(path: str, read: Mapping[str, str]) -> bool:
    """Was ``path`` stored by a version that read ``read``: read itself, or under a field it copied whole."""
    if path in read:
        return True
    parts = path.split(".")
    return any(read.get(".".join(parts[:i])) == ANY_TYPE for i in range(1, len(parts)))


def _present(facts: Mapping[str, Any], path: str, lists: tuple[str, ...]) -> bool:
    owner = next((lp for lp in lists if path.startswith(lp + ".")), None)
    return lookup(facts, owner or path) is not MISSING


class _Versions:
    """The fields each stored version of the point read (None: the version is not stored, or no longer loads)."""

    def __init__(self, rulebook: Rulebook, point: str, texts: Mapping[str, str]) -> None:
        self.rulebook, self.point, self.texts = rulebook, point, texts
        self.read: dict[str, dict[str, str] | None] = {}

    def fields(self, version: str) -> dict[str, str] | None:
        if version not in self.read:
            text = self.texts.get(version)
            try:
                self.read[version] = None if text is None else dict(load_ruleset_text(
                    text, filename=f"{self.point}@{version}", schema=self.rulebook.schemas[self.point],
                    actions=self.rulebook.catalogs[self.point]).field_types)
            except RulesetInvalid:
                self.read[version] = None
        return self.read[version]


def _why_not(candidate: Ruleset, version: str, facts: Mapping[str, Any] | None,
             read: dict[str, str] | None) -> str | None:
    """Why these stored facts cannot replay the candidate faithfully (None: they can)."""
    if facts is None and read != {}:
        return ("no facts stored with this decision (it followed from an earlier decision, or the rules read "
                "nothing the order had)")
    if read is None:
        absent = sorted(p for p in candidate.field_types if not _present(facts or {}, p, candidate.list_paths))
        if absent:
            return (f"version {version} is not stored (or no longer validates), and its facts lack "
                    f"{', '.join(absent)}: not read then, or missing on the order, cannot be told apart")
        return None
    unread = sorted(p for p in candidate.field_types if not _covered(p, read))
    if unread:
        return f"the candidate reads {', '.join(unread)}, which version {version} did not read: never stored"
    return None


def dry_run(*, db: Database, rulebook: Rulebook, text: str, filename: str, last: int = DEFAULT_LAST,
            tests_dir: Path | None = None) -> DryRunReport:
    """Replay the candidate ``text`` on the latest ``last`` decisions of its point; RulesetInvalid if it is invalid.

    Reads the database, writes nothing: the candidate is neither stored nor made active.
    """
    if not 1 <= last <= MAX_LAST:
        raise ValueError(f"last must be from 1 to {MAX_LAST:,}")
    candidate = load_candidate(rulebook, text, filename)
    point = candidate.name
    with db.read() as s:
        rows = s.execute(select(DecisionRecord.id, DecisionRecord.at, DecisionRecord.version, DecisionRecord.fired,
                                DecisionRecord.outcome, DecisionRecord.facts, Order.number)
                         .join(Order, Order.id == DecisionRecord.order_id)
                         .where(DecisionRecord.point == point)
                         .order_by(DecisionRecord.id.desc()).limit(last)).all()
        wanted = {r.version for r in rows}
        texts = dict(s.execute(select(RuleVersion.version, RuleVersion.text)
                               .where(RuleVersion.ruleset == point, RuleVersion.version.in_(wanted))).all()) \
            if wanted else {}
        active = s.scalar(select(RuleVersion.version).join(ActiveRule, ActiveRule.version_id == RuleVersion.id)
                          .where(ActiveRule.ruleset == point))
    versions = _Versions(rulebook, point, texts)
    changed: list[Changed] = []
    errors: list[NotReplayed] = []
    unchanged = 0
    # Evaluated outside the read transaction: a long replay holds no database snapshot open.
    engine = _engine_for(candidate)
    try:
        for r in rows:
            at = _iso(r.at)
            why = _why_not(candidate, r.version, r.facts, versions.fields(r.version))
            if why is not None:
                errors.append(NotReplayed(r.id, r.number, at, r.version, why))
                continue
            try:
                decision = engine.evaluate(point, r.facts or {})
            except (FactError, RuleEngineError) as exc:
                errors.append(NotReplayed(r.id, r.number, at, r.version, f"evaluation failed: {exc}"))
                continue
            before = _stored_side(r.version, r.fired, r.outcome)
            after = _fresh_side(decision, point)
            same = (before.fired, _plain(before.actions)) == (after.fired, after.actions) and (
                after.outcome is None or _plain(before.outcome) == after.outcome)
            if same:
                unchanged += 1
            else:
                changed.append(Changed(r.id, r.number, at, before, after))
        tests = _run_tests(engine, point, Path(tests_dir or rulebook.dir / "tests"))
    finally:
        engine.close()
    return DryRunReport(ruleset=point, version=candidate.version, file=filename, active_version=active, last=last,
                        decisions=len(rows), changed=changed, unchanged=unchanged, errors=errors, tests=tests)

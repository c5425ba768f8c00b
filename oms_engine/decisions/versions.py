"""Ruleset versions in the database: every process decides with the active ones.

Operations edit the YAML files in the rules directory and publish them
(``POST /api/rules/reload`` or ``oms rules publish``): every ruleset is
validated as a set, each changed file is stored as a version (its text, its
content hash, who, when), and one change makes them active in a single
transaction. Every process (API, workers on any machine) checks for a new
change between pipeline passes with one small query and swaps the active
versions in, and each decision stage checks again in its own transaction
right after claiming orders, so an order stored after a rules change is
decided by that change.
``oms rules activate VERSION`` makes a stored version active again and
``oms rules rollback`` undoes the latest change. A version that does not
validate can never become active; the rules in force stay as they were.
A candidate can also be stored without being made active
(``POST /api/rules/candidates``, :meth:`RuleStore.store`): activating it is a
change of its own, made later, by whoever decides to.
On a database with no rules yet, the first process to start publishes the
rules directory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import OmsError
from ..rules import Ruleset, RulesetInvalid
from ..storage.db import Database
from ..storage.models import ActiveRule, RuleChange, RuleVersion
from .dryrun import load_candidate
from .points import POINTS
from .rulebook import Rulebook

log = logging.getLogger("oms.rules")


class RuleVersionError(OmsError):
    pass


@dataclass(frozen=True)
class Change:
    id: int | None               # None: nothing changed, nothing stored
    changed: dict[str, tuple[str | None, str | None]]


class RuleStore:
    def __init__(self, *, db: Database, clock: Clock, rulebook: Rulebook) -> None:
        self.db, self.clock, self.rulebook = db, clock, rulebook
        self.seen: int | None = None      # the latest change this process has installed

    # -- reading ---------------------------------------------------------------------
    def _active_texts(self, s: Session) -> dict[str, tuple[str, str]]:
        rows = s.execute(select(RuleVersion.ruleset, RuleVersion.version, RuleVersion.text)
                         .join(ActiveRule, ActiveRule.version_id == RuleVersion.id))
        return {name: (f"{name}@{version}", text) for name, version, text in rows}

    def _latest(self, s: Session) -> int | None:
        return s.scalar(select(func.max(RuleChange.id)))

    def start(self, *, strict: bool = True) -> None:
        """Install the active versions; a database with none gets the rules directory published.

        Not ``strict``: active rules that do not validate here are logged and none are installed.
        """
        with self.db.read() as s:
            latest, texts = self._latest(s), self._active_texts(s)
        if not texts:
            try:
                self.publish(self._dir_texts(self.rulebook.validate_dir()), actor="oms:start",
                             note=f"rules directory {self.rulebook.dir}")
                return
            except IntegrityError:  # another process published them first
                with self.db.read() as s:
                    latest, texts = self._latest(s), self._active_texts(s)
        missing = [p for p in POINTS if p not in texts]
        if missing:
            # A decision point new in this version of the OMS: its ruleset comes from the rules directory, once.
            try:
                fresh = self._dir_texts(self.rulebook.validate_dir())
                self.publish({**texts, **{p: fresh[p] for p in missing}}, actor="oms:start",
                             note=f"new decision point(s) {', '.join(missing)} from {self.rulebook.dir}")
            except (RulesetInvalid, IntegrityError) as exc:
                log.error("could not publish the rules of new decision point(s) %s: %s", ", ".join(missing), exc)
            with self.db.read() as s:
                latest, texts = self._latest(s), self._active_texts(s)
        try:
            self.rulebook.install(self.rulebook.validate_texts(texts))
        except RulesetInvalid as exc:
            if strict:
                raise RuleVersionError(f"the active rules (change {latest}) do not validate with this process's "
                                       f"plugins; publish rules that do:\n{exc}") from None
            log.error("the active rules (change %s) do not validate here; no rules installed:\n%s", latest, exc)
        self.seen = latest

    def refresh(self) -> list[str]:
        """Install the active versions if they changed since this process last looked; the names changed."""
        with self.db.read() as s:
            return self.refresh_in(s)

    def refresh_in(self, s: Session) -> list[str]:
        """:meth:`refresh` with the caller's transaction.

        A decision stage calls it after claiming its orders and before
        deciding them: whatever rules change committed before those orders
        were visible to the claim is visible here too (a later statement of
        the same transaction, on SQLite under the write lock), so an order
        stored after a publish or rollback is never decided by the rules it replaced.
        """
        latest = self._latest(s)
        if latest == self.seen:
            return []
        texts = self._active_texts(s)
        try:
            changed = self.rulebook.install(self.rulebook.validate_texts(texts))
        except RulesetInvalid as exc:
            # Validated when stored; failing here means this process differs (a plugin missing).
            log.error("the active rules (change %s) do not validate in this process; keeping the rules in force:"
                      "\n%s", latest, exc)
            self.seen = latest
            return []
        if changed:
            log.info("rules change %s installed: %s", latest, ", ".join(changed))
        self.seen = latest
        return changed

    # -- changing ---------------------------------------------------------------------
    @staticmethod
    def _dir_texts(rulesets: Mapping[str, Ruleset]) -> dict[str, tuple[str, str]]:
        return {name: (rs.path, rs.source) for name, rs in rulesets.items()}

    def publish_dir(self, *, actor: str, note: str = "", directory: Path | None = None) -> Change:
        """Validate the rules directory and make it the active rules everywhere."""
        return self.publish(self._dir_texts(self.rulebook.validate_dir(directory)), actor=actor, note=note)

    def publish(self, texts: Mapping[str, tuple[str, str]], *, actor: str, note: str = "",
                reverts: int | None = None) -> Change:
        """Validate ``{ruleset: (filename, text)}`` as a set, store and activate it; RulesetInvalid changes nothing."""
        rulesets = self.rulebook.validate_texts(texts)
        now = self.clock.now()
        with self.db.session() as s:
            active = dict(s.execute(select(ActiveRule.ruleset, RuleVersion.version)
                                    .join(RuleVersion, RuleVersion.id == ActiveRule.version_id)
                                    .with_for_update(of=ActiveRule)).all())
            changed = {name: (active.get(name), rs.version) for name, rs in rulesets.items()
                       if active.get(name) != rs.version}
            changed.update({name: (version, None) for name, version in active.items() if name not in rulesets})
            if not changed:
                return Change(None, {})
            change = RuleChange(at=now, actor=actor[:100], note=note, entries={k: list(v) for k, v in changed.items()},
                                reverts=reverts)
            s.add(change)
            s.flush()
            for name in changed:
                if name not in rulesets:
                    s.execute(ActiveRule.__table__.delete().where(ActiveRule.ruleset == name))
                    continue
                rs = rulesets[name]
                version_id = s.scalar(select(RuleVersion.id).where(RuleVersion.ruleset == name,
                                                                   RuleVersion.version == rs.version))
                if version_id is None:
                    row = RuleVersion(ruleset=name, version=rs.version, text=rs.source, author=actor[:100],
                                      created_at=now)
                    s.add(row)
                    s.flush()
                    version_id = row.id
                current = s.get(ActiveRule, name)
                if current is None:
                    s.add(ActiveRule(ruleset=name, version_id=version_id, change_id=change.id))
                else:
                    current.version_id, current.change_id = version_id, change.id
            if reverts is not None:
                s.execute(update(RuleChange).where(RuleChange.id == reverts).values(rolled_back_by=change.id))
            change_id = change.id
        self.rulebook.install(rulesets)
        self.seen = change_id
        log.info("rules change %s by %s: %s", change_id, actor,
                 ", ".join(f"{k} {a or '-'} -> {b or '-'}" for k, (a, b) in changed.items()))
        return Change(change_id, changed)

    def store(self, text: str, *, filename: str, actor: str) -> dict[str, Any]:
        """Validate one candidate ruleset and store it as a version of its point, without making it active.

        ``stored`` is False when that exact text was stored before (a version is its content hash). Make it active
        with :meth:`activate`; until then no process decides with it.
        """
        rs = load_candidate(self.rulebook, text, filename)
        stored = False
        try:
            with self.db.session() as s:
                if s.scalar(select(RuleVersion.id).where(RuleVersion.ruleset == rs.name,
                                                         RuleVersion.version == rs.version)) is None:
                    s.add(RuleVersion(ruleset=rs.name, version=rs.version, text=rs.source, author=actor[:100],
                                      created_at=self.clock.now()))
                    stored = True
        except IntegrityError:  # stored by someone else between the look and the insert: the same text
            stored = False
        if stored:
            log.info("ruleset %s@%s stored by %s, not active", rs.name, rs.version, actor)
        [row] = self.versions(rs.name, version=rs.version)
        return {**row, "stored": stored}

    def _find(self, s: Session, version: str) -> RuleVersion:
        """A stored version by its hash (a unique prefix will do), optionally as RULESET@HASH."""
        name, _, digest = version.rpartition("@")
        stmt = select(RuleVersion).where(RuleVersion.version.startswith(digest, autoescape=True))
        if name:
            stmt = stmt.where(RuleVersion.ruleset == name)
        found = list(s.scalars(stmt.limit(2)))
        if not found or len(digest) < 4:
            raise RuleVersionError(f"no stored ruleset version '{version}' (give at least 4 characters of its hash; "
                                   "'oms rules versions' lists them)")
        if len(found) > 1:
            raise RuleVersionError(f"'{version}' matches several versions; give more of the hash")
        return found[0]

    def activate(self, version: str, *, actor: str, note: str = "") -> Change:
        """Make a stored version of one ruleset active again (validated with the others in force)."""
        with self.db.read() as s:
            row = self._find(s, version)
            texts = self._active_texts(s)
            texts[row.ruleset] = (f"{row.ruleset}@{row.version}", row.text)
        return self.publish(texts, actor=actor, note=note or f"activate {row.ruleset}@{row.version}")

    def rollback(self, *, actor: str) -> Change:
        """Undo the latest change that is not undone yet (a rollback is not itself undone by the next one)."""
        with self.db.read() as s:
            last = s.scalars(select(RuleChange).where(RuleChange.rolled_back_by.is_(None),
                                                      RuleChange.reverts.is_(None))
                             .order_by(RuleChange.id.desc()).limit(1)).first()
            if last is None:
                raise RuleVersionError("there is no rules change to roll back")
            texts = self._active_texts(s)
            for name, (before, _after) in last.entries.items():
                if before is None:
                    texts.pop(name, None)
                    continue
                text = s.scalar(select(RuleVersion.text).where(RuleVersion.ruleset == name,
                                                               RuleVersion.version == before))
                texts[name] = (f"{name}@{before}", text or "")
            last_id = last.id
        if not any(before for before, _ in last.entries.values()):
            raise RuleVersionError(f"change {last_id} is the first rules of this database: there is nothing "
                                   "before it to roll back to")
        return self.publish(texts, actor=actor, note=f"rollback of change {last_id}", reverts=last_id)

    def versions(self, ruleset: str | None = None, *, version: str | None = None) -> list[dict[str, Any]]:
        """Every stored version (newest first per ruleset): who stored it, and who last made it active, when.

        ``activated_*`` are None for a version never made active (a stored candidate).
        """
        with self.db.read() as s:
            active = dict(s.execute(select(ActiveRule.ruleset, ActiveRule.version_id)).all())
            stmt = select(RuleVersion).order_by(RuleVersion.ruleset, RuleVersion.id.desc())
            if ruleset:
                stmt = stmt.where(RuleVersion.ruleset == ruleset)
            if version:
                stmt = stmt.where(RuleVersion.version == version)
            # Which change last made each version active: the changes name versions by hash in their entries (JSON),
            # read in Python, which every backend does alike; there are as many changes as publications.
            activated: dict[tuple[str, str], RuleChange] = {}
            for c in s.scalars(select(RuleChange).order_by(RuleChange.id)):
                for name, (_before, after) in c.entries.items():
                    if after is not None:
                        activated[(name, after)] = c
            rows = []
            for v in s.scalars(stmt):
                c = activated.get((v.ruleset, v.version))
                rows.append({"ruleset": v.ruleset, "version": v.version, "author": v.author,
                             "created_at": _iso(v.created_at), "active": active.get(v.ruleset) == v.id,
                             "activated_by": c.actor if c else None, "activated_at": _iso(c.at) if c else None,
                             "activated_in": c.id if c else None})
            return rows

    def changes(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [{"id": c.id, "at": _iso(c.at), "actor": c.actor, "note": c.note, "entries": c.entries,
                     "rolled_back_by": c.rolled_back_by, "reverts": c.reverts}
                    for c in s.scalars(select(RuleChange).order_by(RuleChange.id.desc()).limit(limit))]


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")

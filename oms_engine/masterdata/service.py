"""Creating, changing, deactivating and listing master records, each change with its history.

:meth:`MasterData.apply` takes records of one entity (file rows, an API body,
a CLI line) and, in one transaction:

1. checks every record against the entity's schema (schemas.py) and every
   reference it makes (a product's supplier, a mapping's SKU...), and that
   no key appears twice; each problem names where the record came from
   (``products.csv:12``), the field and what is wrong;
2. with any problem, writes nothing (``skip_bad``: writes every good record
   and reports the bad ones);
3. creates the records that are new and changes the ones that differ, their
   ``version`` bumped, a :class:`~oms_engine.storage.models.MasterChange`
   row for each (field: before, after; who; which row of which file);
   records that are already as given are left alone, so importing a file
   again changes nothing;
4. tells the listeners (``on_change``) which keys changed, in the same
   transaction: orders waiting for a SKU go on, a warehouse's WMS is sent
   the new item, the warehouse cache is refreshed.

A record is never deleted: ``active: false`` (or :meth:`set_active`)
deactivates it, and the change is in its history like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import OmsError
from ..money import decimal_text
from ..storage.db import Database, append, insert_rows
from ..storage.models import MasterChange
from .entities import ENTITIES, Entity
from .files import Row, read_rows

# Called in the transaction of a change: (session, entity, keys created or changed, keys deactivated).
Listener = Callable[[Session, Entity, list[tuple[Any, ...]], list[tuple[Any, ...]]], None]
_CHUNK = 500


@dataclass(frozen=True)
class RowError:
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}" if self.field else f"{self.where}: {self.message}"


@dataclass
class Report:
    entity: str
    source: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = True

    @property
    def changed(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deactivated)

    def summary(self) -> str:
        head = (f"{self.entity}s from {self.source}: {len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.deactivated)} deactivated, {self.unchanged} unchanged")
        if self.errors:
            head += f", {len(self.errors)} bad row(s) " + ("skipped" if self.applied else "(nothing imported)")
        return head

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "source": self.source, "applied": self.applied, "created": self.created,
                "updated": self.updated, "deactivated": self.deactivated, "unchanged": self.unchanged,
                "errors": [{"where": e.where, "field": e.field, "message": e.message} for e in self.errors]}


class MasterDataError(OmsError, ValueError):
    pass


class ImportRefused(MasterDataError):
    """Records with problems: nothing was written. ``report.errors`` lists each."""

    def __init__(self, report: Report) -> None:
        lines = [str(e) for e in report.errors[:20]]
        more = f"\n... and {len(report.errors) - 20} more" if len(report.errors) > 20 else ""
        super().__init__(f"{report.entity}s from {report.source}: nothing imported, {len(report.errors)} "
                         "problem(s):\n" + "\n".join(lines) + more)
        self.report = report


def key_parts(ent: Entity, text: str) -> tuple[str, ...]:
    """A key written as its parts joined by '/' (``SF/COLD``); only the last part may hold a '/' itself
    (a channel's SKU)."""
    parts = tuple(text.split("/", len(ent.keys) - 1))
    if len(parts) != len(ent.keys) or not all(parts):
        raise MasterDataError(f"a {ent.name} is named {'/'.join(k.upper() for k in ent.keys)}, got '{text[:100]}'")
    return parts


def checked_rows(rows: Sequence[Row], schema: type[BaseModel], keys: Sequence[str], report: Report, *,
                 prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[tuple[Row, Any]]:
    """The rows that pass ``schema`` and name a key (``keys``) no earlier row named; each problem goes in
    ``report`` with where the row came from and the field."""
    good: list[tuple[Row, Any]] = []
    seen: dict[tuple[Any, ...], str] = {}
    for row in rows:
        if row.error is not None:
            report.errors.append(RowError(row.where, "", row.error))
            continue
        try:
            record = schema.model_validate(prepare(row.data) if prepare else row.data)
        except ValidationError as exc:
            report.errors.extend(RowError(row.where, _field_of(e), _message(e)) for e in exc.errors())
            continue
        key = tuple(getattr(record, k) for k in keys)
        if key in seen:
            report.errors.append(RowError(row.where, ",".join(keys),
                                          f"{'/'.join(map(str, key))} appears again (first at {seen[key]})"))
            continue
        seen[key] = row.where
        good.append((row, record))
    return good


def entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        raise MasterDataError(f"unknown master data '{name}' (known: {', '.join(ENTITIES)})") from None


def _field_of(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(record)"


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")


def stored_input(ent: Entity, record: Any) -> dict[str, Any]:
    """A stored record as its schema takes it (so a partial change can be laid over it)."""
    data = {name: getattr(record, name) for name in (*ent.keys, *ent.fields, "active")}
    if "price" in data:   # money is given as a decimal amount
        data["price"] = decimal_text(data["price"], data["currency"])
    if ent.as_input is not None:
        data = ent.as_input(data)
    return {k: v for k, v in data.items() if v is not None}


class MasterData:
    def __init__(self, *, db: Database, clock: Clock,
                 checks: dict[str, Callable[[BaseModel], tuple[str, str] | None]] | None = None) -> None:
        """``checks``: per entity (plural), a check of one record against what only the running OMS knows
        (the connectors its plugins registered): (field, problem) or None."""
        self.db, self.clock = db, clock
        self.checks = dict(checks or {})
        self.on_change: list[Listener] = []

    # -- changing --------------------------------------------------------------------------
    def import_file(self, name: str, path: Path | str, *, actor: str, skip_bad: bool = False) -> Report:
        ent = entity(name)
        rows = read_rows(path)
        return self.apply(ent.plural, rows, actor=actor, source=str(path), skip_bad=skip_bad)

    def apply(self, name: str, rows: Sequence[Row], *, actor: str, source: str, skip_bad: bool = False,
              merge: bool = False) -> Report:
        """Create or change records (see the module docstring), in a transaction of its own; ImportRefused
        (nothing written) when a record has a problem and ``skip_bad`` is not set. ``merge``: a record
        gives only the fields it changes, the rest kept as stored."""
        ent = entity(name)

        parents, children = _split_children(ent, rows)

        def run() -> Report:
            with self.db.session() as s:
                report = self.apply_in(s, ent, parents, actor=actor, source=source, skip_bad=skip_bad, merge=merge)
                if children and (report.applied or skip_bad):
                    child = ENTITIES[ent.children[1]]  # type: ignore[index]
                    sub = self.apply_in(s, child, children, actor=actor, source=source, skip_bad=skip_bad,
                                        merge=merge)
                    report.errors += sub.errors
                    report.applied = report.applied and sub.applied
                    report.created += [f"{child.name} {k}" for k in sub.created]
                    report.updated += [f"{child.name} {k}" for k in sub.updated]
                    report.deactivated += [f"{child.name} {k}" for k in sub.deactivated]
                    report.unchanged += sub.unchanged
                if not report.applied:
                    raise ImportRefused(report)   # and whatever the parents wrote is rolled back
                return report

        return self.db.run_retrying(run, what=f"{ent.name} changes from {source}")

    def apply_in(self, s: Session, ent: Entity, rows: Sequence[Row], *, actor: str, source: str,
                 skip_bad: bool = False, merge: bool = False) -> Report:
        report = Report(ent.name, source)
        stored = self._stored(s, ent, rows) if merge else {}

        def laid_over(data: dict[str, Any]) -> dict[str, Any]:
            key = tuple(data.get(k) for k in ent.keys)
            return {**stored_input(ent, stored[key]), **data} if key in stored else data

        good = checked_rows(rows, ent.schema, ent.keys, report, prepare=laid_over if merge else None)
        check = self.checks.get(ent.plural)
        if check is not None:
            kept = []
            for row, record in good:
                problem = check(record)
                if problem is None:
                    kept.append((row, record))
                else:
                    report.errors.append(RowError(row.where, *problem))
            good = kept
        if ent.references is not None and good:
            bad = {}
            for i, fld, msg in ent.references(s, [r for _, r in good]):
                bad[i] = True
                report.errors.append(RowError(good[i][0].where, fld, msg))
            good = [g for i, g in enumerate(good) if i not in bad]
        if report.errors and not skip_bad:
            report.applied = False
            return report
        self._write(s, ent, good, report, actor)
        return report

    def set_active(self, name: str, key: Sequence[str], active: bool, *, actor: str, source: str = "") -> Report:
        """Deactivate (or reactivate) one record; a record already so changes nothing."""
        ent = entity(name)
        if len(key) != len(ent.keys):
            raise MasterDataError(f"a {ent.name} is named by {', '.join(ent.keys)}")

        def run() -> Report:
            with self.db.session() as s:
                record = s.get(ent.model, tuple(key) if len(key) > 1 else key[0])
                if record is None:
                    raise MasterDataError(f"no {ent.name} '{ent.key_text(tuple(key))}'")
                data = {**stored_input(ent, record), "active": active}
                return self.apply_in(s, ent, [Row(source or "request", data)], actor=actor,
                                     source=source or "request")

        return self.db.run_retrying(run, what=f"{ent.name} {ent.key_text(tuple(key))}")

    def _stored(self, s: Session, ent: Entity, rows: Iterable[Row]) -> dict[tuple[Any, ...], Any]:
        keys = {tuple(r.data.get(k) for k in ent.keys) for r in rows if r.error is None}
        keys = {k for k in keys if all(isinstance(p, str) for p in k)}
        return self._load(s, ent, keys)

    def _load(self, s: Session, ent: Entity, keys: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], Any]:
        wanted = sorted(set(keys))
        cols = [getattr(ent.model, k) for k in ent.keys]
        found: dict[tuple[Any, ...], Any] = {}
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i:i + _CHUNK]
            if len(cols) == 1:
                cond = cols[0].in_([k[0] for k in part])
            else:
                cond = or_(*(and_(*(c == v for c, v in zip(cols, k, strict=True))) for k in part))
            for rec in s.scalars(select(ent.model).where(cond)):
                found[ent.key_of(rec)] = rec
        return found

    def _write(self, s: Session, ent: Entity, good: list[tuple[Row, BaseModel]], report: Report, actor: str) -> None:
        now = self.clock.now()
        existing = self._load(s, ent, [ent.key_of(r) for _, r in good])
        new_rows: list[dict[str, Any]] = []
        changed: list[tuple[Any, ...]] = []
        deactivated: list[tuple[Any, ...]] = []
        for row, record in good:
            values = record.model_dump(include=set(ent.keys) | set(ent.fields) | {"active"})
            key = ent.key_of(record)
            text = ent.key_text(key)
            before = existing.get(key)
            if before is None:
                new_rows.append({**values, "version": 1, "updated_at": now})
                append(s, MasterChange, entity=ent.name, key=text, action="create", version=1, actor=actor,
                       source=row.where[:300], at=now,
                       changes={k: [None, v] for k, v in values.items() if k not in ent.keys})
                report.created.append(text)
                changed.append(key)
                continue
            diff = {k: [getattr(before, k), v] for k, v in values.items()
                    if k not in ent.keys and getattr(before, k) != v}
            if not diff:
                report.unchanged += 1
                continue
            version = before.version + 1
            was_active = before.active
            s.execute(update(ent.model).where(*(getattr(ent.model, k) == v for k, v in zip(ent.keys, key, strict=True)))
                      .values(**{k: v for k, (_, v) in diff.items()}, version=version, updated_at=now),
                      execution_options={"synchronize_session": False})
            s.expire(before)
            if "active" in diff and was_active and not values["active"]:
                action = "deactivate"
                report.deactivated.append(text)
                deactivated.append(key)
            else:
                action = "reactivate" if "active" in diff else "update"
                report.updated.append(text)
                changed.append(key)
            append(s, MasterChange, entity=ent.name, key=text, action=action, version=version, actor=actor,
                   source=row.where[:300], at=now, changes=diff)
        if new_rows:
            insert_rows(s, ent.model, new_rows)
        if changed or deactivated:
            for listener in self.on_change:
                listener(s, ent, changed, deactivated)

    # -- reading -----------------------------------------------------------------------------
    def list(self, name: str, *, active: bool | None = None, prefix: str | None = None, limit: int = 100,
             after: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Records in key order; ``after``: the key (all its parts) of the last record of the page before."""
        ent = entity(name)
        cols = [getattr(ent.model, k) for k in ent.keys]
        stmt = select(ent.model).order_by(*cols).limit(limit)
        if active is not None:
            stmt = stmt.where(ent.model.active.is_(active))  # type: ignore[attr-defined]
        if prefix:
            stmt = stmt.where(cols[0].startswith(prefix, autoescape=True))
        if after:
            if len(after) != len(cols):
                raise MasterDataError(f"'after' names a {ent.name} by {', '.join(ent.keys)}")
            # Keyset order over every part: (a, b) > (x, y) as a > x, or a = x and b > y.
            later = [and_(*(c == v for c, v in zip(cols[:i], after[:i], strict=True)), cols[i] > after[i])
                     for i in range(len(cols))]
            stmt = stmt.where(or_(*later))
        with self.db.read() as s:
            return [record_dict(ent, r) for r in s.scalars(stmt)]

    def get(self, name: str, key: Sequence[str], *, history: int = 50) -> dict[str, Any]:
        ent = entity(name)
        with self.db.read() as s:
            record = s.get(ent.model, tuple(key) if len(key) > 1 else key[0])
            if record is None:
                raise MasterDataLookup(f"no {ent.name} '{ent.key_text(tuple(key))}'")
            out = record_dict(ent, record)
            out["history"] = self._history(s, ent, ent.key_text(tuple(key)), history)
            return out

    @staticmethod
    def _history(s: Session, ent: Entity, key: str, limit: int) -> list[dict[str, Any]]:
        rows = s.scalars(select(MasterChange).where(MasterChange.entity == ent.name, MasterChange.key == key)
                         .order_by(MasterChange.id.desc()).limit(limit))
        return [{"at": c.at.isoformat(), "action": c.action, "version": c.version, "actor": c.actor,
                 "source": c.source, "changes": c.changes} for c in rows]


def _split_children(ent: Entity, rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """Records nested in their parent's rows (a carrier's services) taken out, each keyed to its parent."""
    if ent.children is None:
        return list(rows), []
    field_name, _, parent_field = ent.children
    parents: list[Row] = []
    children: list[Row] = []
    for row in rows:
        nested = row.data.get(field_name) if row.error is None else None
        if nested is None:
            parents.append(row)
            continue
        parents.append(Row(row.where, {k: v for k, v in row.data.items() if k != field_name}))
        if not isinstance(nested, list):
            children.append(Row(f"{row.where} {field_name}", {}, f"'{field_name}' must be a list"))
            continue
        for i, item in enumerate(nested, start=1):
            where = f"{row.where} {field_name}[{i}]"
            if not isinstance(item, dict):
                children.append(Row(where, {}, "an object is needed"))
            else:
                children.append(Row(where, {**item, parent_field: row.data.get(ent.keys[0])}))
    return parents, children


class MasterDataLookup(MasterDataError, LookupError):
    pass


def record_dict(ent: Entity, record: Any) -> dict[str, Any]:
    out = {k: getattr(record, k) for k in (*ent.keys, *ent.fields, "active", "version")}
    updated = getattr(record, "updated_at", None)
    out["updated_at"] = updated.isoformat() if updated else None
    return out

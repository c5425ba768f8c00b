"""The hot path's statements on SQLite's driver, sqlite3 (see driver.py): compiled once by SQLAlchemy
with the engine's dialect, bound a column at a time, run with ``executemany`` or as one multi-row
``INSERT ... RETURNING`` per page."""

from __future__ import annotations

import re
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.sql import ClauseElement, sqltypes

from .binding import Processor, executemany, fetch_all, processed, read_rows, run_on_cursor

_EXPANDING = re.compile(r"\(__\[POSTCOMPILE_(\w+)\]\)")
# Bound parameters per statement at most: SQLite's default since 3.32 (older builds say less: getlimit).
_MAX_VARIABLES = 32766


# SQLAlchemy's default storage format of DATETIME on SQLite, which datetime.isoformat also writes.
_DATETIME_FORMAT = ("%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d")


def _datetime_text(process: Processor) -> Processor:
    """SQLAlchemy's DATETIME bind processor, by ``isoformat`` for naive datetimes (the same text, a fifth
    of the cost: a timestamp is formatted for nearly every row written); anything else goes to it."""
    def text(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return process(value)
    return text


class _Plan:
    """A statement compiled once: its SQL and how each parameter is bound, in order.

    Rows are turned into parameter tuples a column at a time: the values are picked by an
    ``itemgetter``, and only the columns whose type has a processor are touched in Python. None
    goes through the processor as well, as SQLAlchemy does: JSON stores it as 'null'.
    """

    def __init__(self, conn: Connection, stmt: ClauseElement, keys: Sequence[str] | None) -> None:
        dialect = conn.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        self.sql = compiled.string
        self.expanding = {m.group(1) for m in _EXPANDING.finditer(self.sql)}
        # Values no row gives: columns left out whose default SQLAlchemy computes in Python (default=0,
        # default=dict: called once per call, the same JSON for every row), and the statement's own
        # literals (``reserved + :r >= 0``).
        self.fixed: dict[str, Any] = {}
        self.made: dict[str, Callable[[Any], Any]] = {}
        for col in getattr(compiled, "insert_prefetch", ()) or ():
            default = col.default
            if default is None or (keys is not None and col.key in keys):
                continue
            if default.is_scalar:
                self.fixed[col.key] = default.arg
            elif default.is_callable:
                self.made[col.key] = default.arg
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.processors: dict[str, tuple[Processor, bool]] = {}
        self.processed: list[tuple[int, Processor, bool]] = []
        for i, name in enumerate(self.names):
            bind = compiled.binds[name]
            if name not in self.fixed and name not in self.made and not bind.required and bind.callable is None:
                self.fixed[name] = bind.value
            type_ = bind.type.dialect_impl(dialect)
            process = type_.bind_processor(dialect)
            if process is not None and getattr(type_, "_storage_format", None) == _DATETIME_FORMAT:
                process = _datetime_text(process)
            if process is not None:
                cacheable = not isinstance(type_, sqltypes.JSON)
                self.processors[name] = (process, cacheable)
                self.processed.append((i, process, cacheable))
        self.pick = _picker(self.names)
        # The values rows give, apart from those the call gives every row (fixed and made above).
        self.given = tuple(n for n in self.names if n not in self.fixed and n not in self.made)
        self.pick_given = _picker(self.given)
        self.results: list[tuple[int, Processor]] = []
        if getattr(stmt, "is_select", False):
            for i, col in enumerate(stmt.selected_columns):  # type: ignore[attr-defined]
                process = col.type.dialect_impl(dialect).result_processor(dialect, None)
                if process is not None:
                    self.results.append((i, process))

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        columns: list[Any]
        if self.fixed or self.made:
            # A value the call gives every row is a column of its own, not a copy of every row with it.
            same = {**self.fixed, **{k: make(None) for k, make in self.made.items()}}
            given = iter(list(zip(*map(self.pick_given, rows), strict=True)) if self.given else ())
            columns = [[same[n]] * len(rows) if n in same else next(given) for n in self.names]
        else:
            tuples = list(map(self.pick, rows))
            if not self.processed:
                return tuples
            columns = list(zip(*tuples, strict=True))
        for i, process, cacheable in self.processed:
            columns[i] = processed(process, columns[i], cacheable)
        return list(zip(*columns, strict=True))

    def bound(self, params: Mapping[str, Any]) -> list[Any]:
        """One statement's positional parameters; an expanding one gives as many as its list holds."""
        out: list[Any] = []
        for name in self.names:
            value = params[name] if name in params else self.fixed[name]
            process, cacheable = self.processors.get(name, (None, False))
            if name in self.expanding:
                out.extend(value if process is None else processed(process, value, cacheable))
            else:
                out.append(value if process is None else process(value))
        return out



def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's values of these names, as a tuple (``itemgetter`` of one name gives the bare value)."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda row: (row[name],)
    return lambda row: ()


# Per engine (its dialect holds the JSON serializer the processors use), gone with it.
_PLANS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _Plan]] = weakref.WeakKeyDictionary()


def _plan(conn: Connection, stmt: ClauseElement, keys: Sequence[str] | None, cache_key: Any) -> _Plan:
    plans = _PLANS.setdefault(conn.dialect, {})
    key = (cache_key, tuple(keys) if keys is not None else None)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _Plan(conn, stmt, keys)
    return plan


def _executemany(conn: Connection, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> int:
    # Parameters as SQLAlchemy hands them over: a list of tuples for executemany, one tuple for execute.
    return run_on_cursor(conn, plan.sql, plan.parameters(rows), True, executemany)  # type: ignore[no-any-return]


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    _executemany(conn, _plan(conn, table.insert(), tuple(rows[0]), table), rows)


def insert_returning(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                     returning: Sequence[str]) -> list[tuple[Any, ...]]:
    columns = [table.c[c] for c in returning]
    plan = _plan(conn, table.insert(), tuple(rows[0]), table)
    head, _, values = plan.sql.partition(" VALUES ")
    returned = [(i, p) for i, c in enumerate(columns)
                if (p := c.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)) is not None]
    tail = " RETURNING " + ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in columns)
    limit = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    page = max(1, min(limit, _MAX_VARIABLES) // max(1, len(plan.names)))
    params = plan.parameters(rows)
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(params), page):
        part = params[i:i + page]
        sql = head + " VALUES " + ", ".join([values] * len(part)) + tail
        out += read_rows(run_on_cursor(conn, sql, tuple(v for p in part for v in p), False, fetch_all), returned)
    return out


def execute_many(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    return _executemany(conn, _plan(conn, stmt, None, stmt), rows)


def fetch(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    plan = _plan(conn, stmt, None, stmt)
    sql = plan.sql
    if plan.expanding:
        def expand(m: re.Match[str]) -> str:
            values = params[m.group(1)]
            if not values:
                return "(NULL)"   # x IN (NULL) holds for no row
            return "(" + ", ".join("?" * len(values)) + ")"
        sql = _EXPANDING.sub(expand, sql)
    return read_rows(run_on_cursor(conn, sql, tuple(plan.bound(params)), False, fetch_all), plan.results)

"""The hot path's bulk statements on PostgreSQL, on psycopg directly: COPY for inserts, ANY for lookups.

Profiled on PostgreSQL, a third of the pipeline's time was psycopg turning SQL text
into a query: SQLAlchemy sends a batch's rows as one multi-row INSERT whose text
changes with the number of rows, and a lookup by hundreds of keys as ``IN (...)``
with a parameter per key, so no text repeats and none is parsed once. Here:

- rows are inserted with ``COPY ... FROM STDIN``: no SQL per row, no parameters to
  parse, about half the time of the multi-row INSERT (14.6 against 27.4
  microseconds a row for 1,100 stock movements);
- a lookup by a list of keys is ``col = ANY(%(keys)s::type[])``: one parameter, the
  same text every time, so psycopg parses it once and prepares it on the server.

Both run on the session's connection inside its transaction, through
``binding.run_on_cursor`` (cursor events, SQLAlchemy's exceptions). Values go
through the same type processors SQLAlchemy would apply, and the column defaults
SQLAlchemy computes in Python are filled the same way.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.sql import sqltypes

from .binding import Processor, fetch_all, processed, read_rows, run_on_cursor

_EXPANDING = re.compile(r"IN \(__\[POSTCOMPILE_(\w+)\]\)")


class _Copy:
    """COPY of a table's given columns, plus those whose Python default SQLAlchemy would fill."""

    def __init__(self, conn: Connection, table: Table, keys: tuple[str, ...]) -> None:
        dialect = conn.dialect
        self.keys = keys
        self.defaults: dict[str, Any] = {}
        for col in table.c:
            if col.key in keys or col.default is None:
                continue
            default = col.default
            if default.is_scalar or default.is_callable:  # type: ignore[attr-defined]
                self.defaults[col.key] = default.arg  # type: ignore[attr-defined]
        self.columns = (*keys, *self.defaults)
        quote = dialect.identifier_preparer.quote
        self.sql = (f"COPY {dialect.identifier_preparer.format_table(table)} "
                    f"({', '.join(quote(table.c[k].name) for k in self.columns)}) FROM STDIN")
        self.processed: list[tuple[int, Processor, bool]] = []
        for i, key in enumerate(self.columns):
            process = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processed.append((i, process, False))

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        made = [d(None) if callable(d) else d for d in self.defaults.values()]
        keys = self.keys
        out = [(*(row[k] for k in keys), *made) for row in rows]
        if not self.processed:
            return out
        columns: list[Any] = list(zip(*out, strict=True))
        for i, process, cacheable in self.processed:
            columns[i] = processed(process, columns[i], cacheable)
        return list(zip(*columns, strict=True))


# Per engine (its dialect holds the JSON serializer the processors use), gone with it.
_COPIES: weakref.WeakKeyDictionary[Any, dict[tuple[Table, tuple[str, ...]], _Copy]] = weakref.WeakKeyDictionary()


def _copy_all(cursor: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def copy_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (all with the same keys) with one COPY."""
    keys = tuple(rows[0])
    plans = _COPIES.setdefault(conn.dialect, {})
    plan = plans.get((table, keys))
    if plan is None:
        plan = plans[(table, keys)] = _Copy(conn, table, keys)
    run_on_cursor(conn, plan.sql, plan.rows(rows), True, _copy_all)


class _Lookup:
    """A SELECT whose ``IN`` lists are ``= ANY`` of one array parameter each."""

    def __init__(self, conn: Connection, stmt: Any) -> None:
        dialect = conn.dialect
        compiled = stmt.compile(dialect=dialect)
        arrays: dict[str, str] = {}
        for name, bind in compiled.binds.items():
            if bind.expanding:
                type_ = bind.type.dialect_impl(dialect)
                # Text without its length: a cast to VARCHAR(n)[] would cut a longer key short, and the
                # cut key could match another row. (The primary key's index serves either.)
                arrays[name] = "TEXT" if isinstance(type_, sqltypes.String) else type_.compile(dialect=dialect)
        self.sql = _EXPANDING.sub(lambda m: f"= ANY(%({m.group(1)})s::{arrays[m.group(1)]}[])", compiled.string)
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process
        self.arrays = set(arrays)
        self.results = [(i, p) for i, col in enumerate(stmt.selected_columns)
                        if (p := col.type.dialect_impl(dialect).result_processor(dialect, None)) is not None]

    def params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        for name, process in self.processors.items():
            value = out[name]
            out[name] = [process(v) for v in value] if name in self.arrays else process(value)
        for name in self.arrays:
            out[name] = list(out[name])
        return out


_LOOKUPS: weakref.WeakKeyDictionary[Any, dict[Any, _Lookup]] = weakref.WeakKeyDictionary()


def fetch_any(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    plans = _LOOKUPS.setdefault(conn.dialect, {})
    plan = plans.get(stmt)   # by the statement itself (identity), which the entry keeps alive
    if plan is None:
        plan = plans[stmt] = _Lookup(conn, stmt)
    return read_rows(run_on_cursor(conn, plan.sql, plan.params(params), False, fetch_all), plan.results)

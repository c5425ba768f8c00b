"""What every direct-to-driver path shares: values through their types' processors a column at a time,
and a statement run on the session's own driver connection as SQLAlchemy would run it (driver.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any]


def processed(process: Processor, values: Sequence[Any], cacheable: bool) -> list[Any]:
    """Every value through its type's processor; each distinct value once where values can be keys (a
    batch's rows share a handful of timestamps, and formatting one costs more than writing it)."""
    if cacheable:
        try:
            done = {v: process(v) for v in set(values)}
        except TypeError:   # a value that cannot be a key
            pass
        else:
            return [done[v] for v in values]
    return list(map(process, values))


def read_rows(rows: list[Any], processors: Sequence[tuple[int, Processor]]) -> list[Any]:
    """Rows read, through their columns' result processors (a column at a time)."""
    if not processors or not rows:
        return rows
    columns: list[Any] = list(zip(*rows, strict=True))
    for i, process in processors:
        columns[i] = list(map(process, columns[i]))
    return list(zip(*columns, strict=True))


def run_on_cursor(conn: Connection, sql: str, params: Any, many: bool,
                  work: Callable[[Any, str, Any], Any]) -> Any:
    """``work(cursor, sql, params)`` on a cursor of the connection's own driver connection, seen by the
    engine's cursor events, a driver error raised as SQLAlchemy raises it."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        # The engine's cursor events still see every statement (logging, tracing, fault injection in
        # tests); there is no SQLAlchemy execution context, so they get a bare namespace for one.
        context = None
        if conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute:
            context = SimpleNamespace(executemany=many, driver_path=True)
            for listen in conn.dispatch.before_cursor_execute:
                sql, params = listen(conn, cursor, sql, params, context, many)
        result = work(cursor, sql, params)
        if context is not None:
            for listen in conn.dispatch.after_cursor_execute:
                listen(conn, cursor, sql, params, context, many)
        return result
    except Exception as exc:
        base = conn.dialect.loaded_dbapi.Error
        if isinstance(exc, base):
            raise DBAPIError.instance(sql, params, exc, base, dialect=conn.dialect, ismulti=many) from exc
        raise
    finally:
        cursor.close()


def executemany(cursor: Any, sql: str, params: Any) -> int:
    cursor.executemany(sql, params)
    return cursor.rowcount  # type: ignore[no-any-return]


def fetch_all(cursor: Any, sql: str, params: Any) -> list[Any]:
    return cursor.execute(sql, params).fetchall()  # type: ignore[no-any-return]

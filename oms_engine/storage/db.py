"""Engine and sessions: SQLite (WAL) by default, PostgreSQL by URL.

SQLite: WAL so readers never block the writer, a busy timeout so a second
process waits instead of failing, ``synchronous=FULL`` so a committed order
survives power loss, foreign keys on, and ``BEGIN IMMEDIATE`` so a write
transaction takes the write lock up front instead of failing half-way with
"database is locked" when it first writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .driver import insert_many, insert_returning
from .retry import LostRace, is_retryable, run_retrying

T = TypeVar("T")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _json_dumps(value: Any) -> str:
    # orjson writes JSON columns several times faster than json; what it refuses (an integer beyond
    # 64 bits, a non-string key) goes to json, which accepts or refuses it as it always has.
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def make_engine(url: str, **kw: Any) -> Engine:
    u = make_url(url)
    kw.setdefault("json_serializer", _json_dumps)
    kw.setdefault("json_deserializer", orjson.loads)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            # pysqlite's own transaction handling would defer BEGIN; we issue it.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # A 64 MB page cache and in-memory temp tables: the hot tables of a batch stay in memory.
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Readers take no lock up front, so they never wait behind a writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("oms_readonly") else "BEGIN IMMEDIATE")

        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, pool_pre_ping=True, **kw)


_APPEND = "oms_append"
_LOCKED = "oms_locked"         # (root transaction, keys of the rows it locked)
_LOST_RACE = "oms_lost_race"   # (root transaction, the error) when it lost a race inside a savepoint


def append(s: Session, model: type, **values: Any) -> None:
    """Queue an append-only row (history, decisions, outbox, movements...).

    Queued rows are written with one multi-row INSERT per table at the next
    :func:`drain`: at every stage boundary, at the end of a savepoint, and
    before commit. They skip the ORM's per-object bookkeeping, which is most
    of the cost of a transition on the hot path.
    """
    s.info.setdefault(_APPEND, {}).setdefault(model, []).append(values)


def drain(s: Session, only: type | None = None) -> None:
    """Write what is queued: the changes of tracked order records (orders/records.py) and the appended
    rows (of every table, or of ``only`` when a reader needs just that one)."""
    if only is None:
        for flush in s.info.get(_FLUSHERS, ()):
            flush(s)
    buffered: dict[type, list[dict[str, Any]]] | None = s.info.get(_APPEND)
    if not buffered:
        return
    if only is not None:
        rows = buffered.pop(only, None)
        if rows:
            insert_rows(s, only, rows)
        return
    del s.info[_APPEND]
    s.flush()  # rows may refer to objects added through the ORM
    # Tables that others refer to first: a row may name one queued for another table (a payment's event).
    for model, rows in sorted(buffered.items(), key=lambda kv: _rank(kv[0])):
        if rows:
            insert_rows(s, model, rows)


_TABLE_ORDER: dict[str, int] = {}


def _rank(model: type) -> int:
    """Where ``model``'s table comes in an order that puts every table before those referring to it."""
    table = model.__table__  # type: ignore[attr-defined]
    if table.name not in _TABLE_ORDER:
        _TABLE_ORDER.update((t.name, i) for i, t in enumerate(table.metadata.sorted_tables))
    return _TABLE_ORDER.get(table.name, 0)


def _by_keys(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], list[int]]:
    # A Core INSERT takes its columns from the first parameter set: one statement per set of keys.
    # Nearly always every row has the first one's keys; that is checked without a loop in Python.
    first = rows[0].keys() if rows else None
    if first is not None and all(map(first.__eq__, map(dict.keys, rows))):
        return {tuple(first): list(range(len(rows)))}
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(tuple(row), []).append(i)
    return groups


def insert_rows(s: Session, model: type, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT rows without the ORM: they need none of its bulk insert's bookkeeping, which costs more
    than the INSERT itself. One statement per set of keys, on the database driver (driver.py): an
    executemany on SQLite, a COPY on PostgreSQL."""
    table = model.__table__  # type: ignore[attr-defined]
    conn = s.connection()
    for idx in _by_keys(rows).values():
        insert_many(conn, table, [rows[i] for i in idx])


def insert_returning_ids(s: Session, table: Any, rows: Sequence[dict[str, Any]], *, key: str) -> list[int]:
    """INSERT rows (driver.py), returning their new ids in the order given.

    ``key`` names a unique column every row gives: the ids are matched to the rows by it. Asking
    SQLAlchemy for RETURNING rows in parameter order instead makes it insert one row per statement
    on SQLite (a table with no insert sentinel); matched by key, it sends hundreds per statement.
    """
    conn = s.connection()
    found: dict[Any, int] = {}
    for idx in _by_keys(rows).values():
        found.update((k, new_id) for new_id, k in insert_returning(conn, table, [rows[i] for i in idx], ("id", key)))
    return [found[row[key]] for row in rows]


_FLUSHERS = "oms_flushers"
# session.info keys whose values a savepoint puts back as they were when it rolls back.
_RESTORED = "oms_restored"


def on_drain(s: Session, flush: Callable[[Session], None]) -> None:
    """Have ``flush(s)`` write its own queued changes whenever the session drains (once per session)."""
    flushers: list[Callable[[Session], None]] = s.info.setdefault(_FLUSHERS, [])
    if flush not in flushers:
        flushers.append(flush)


def restored_on_rollback(s: Session, key: str) -> None:
    """A savepoint that rolls back puts ``s.info[key]`` back as it was when the savepoint began: a dict
    (copied), or an object with ``snapshot()`` and ``restore(snapshot)``."""
    keys: set[str] = s.info.setdefault(_RESTORED, set())
    keys.add(key)


def _before_commit(s: Session) -> None:
    # before_commit also fires when a SAVEPOINT is released: only the real commit counts.
    if s.in_nested_transaction():
        return
    lost = s.info.pop(_LOST_RACE, None)
    if lost is not None and lost[0] is s.get_transaction():
        # Whatever was done after the race was lost was done on a transaction that must run again.
        raise LostRace(f"the transaction lost a race inside a savepoint: {lost[1]}") from lost[1]
    drain(s)


@contextmanager
def savepoint(s: Session) -> Iterator[None]:
    """A SAVEPOINT that also takes back the rows queued with :func:`append` inside it.

    On failure the queue is restored as it was: rows queued inside are dropped,
    and rows queued before but written inside (and so rolled back) are queued again.
    So is the record of the row locks taken (:func:`locked_rows`): PostgreSQL lets
    go of the locks a rolled-back savepoint took.

    A lost race (a deadlock, a serialization failure) is raised as
    :class:`~oms_engine.storage.retry.LostRace`: rolling back to the savepoint
    cannot save the transaction's place in the race, so whoever handles the
    savepoint's own failures must not take it for one of them; the whole
    transaction is run again instead.
    """
    before = {m: list(rows) for m, rows in s.info.get(_APPEND, {}).items()}
    kept = {key: _snapshot(s.info.get(key)) for key in s.info.get(_RESTORED, ())}
    locks = s.info.get(_LOCKED)
    locks_before = (locks[0], set(locks[1])) if locks is not None else None
    try:
        with s.begin_nested():
            yield
    except BaseException as exc:
        s.info[_APPEND] = before
        for key in s.info.get(_RESTORED, set()):
            # A key first used inside the savepoint goes back to nothing (None).
            _restore(s, key, kept.get(key))
        if locks_before is None:
            s.info.pop(_LOCKED, None)
        else:
            s.info[_LOCKED] = locks_before
        if isinstance(exc, Exception) and is_retryable(exc):
            # Noted on the transaction as well: should a caller handle the LostRace as a failure of
            # its own work and go on, the transaction still refuses to commit (see _before_commit).
            s.info[_LOST_RACE] = (s.get_transaction(), exc)
            if not isinstance(exc, LostRace):
                raise LostRace(f"lost a race inside a savepoint: {exc}") from exc
        raise


def _snapshot(value: Any) -> Any:
    if value is None:
        return None
    return value.snapshot() if hasattr(value, "snapshot") else dict(value)


def _restore(s: Session, key: str, snap: Any) -> None:
    value = s.info.get(key)
    if hasattr(value, "restore"):
        value.restore(snap)   # None: as new
    elif snap is None:
        s.info.pop(key, None)
    else:
        s.info[key] = snap


def locked_rows(s: Session) -> set[Any]:
    """Keys of the rows this transaction holds locks on, as noted by whoever locked them.

    The stock ledger notes each stock row it locks, so that it can lock the rest
    in the one global order (see oms_engine/stock/ledger.py). The set belongs to
    the session's current transaction and starts empty with the next one.
    """
    s.connection()  # begins the transaction if none is open yet, so the set is keyed to it
    root = s.get_transaction()
    held: tuple[Any, set[Any]] | None = s.info.get(_LOCKED)
    if held is None or held[0] is not root:
        held = (root, set())
        s.info[_LOCKED] = held
    return held[1]


def row_locks_apply(s: Session) -> bool:
    """True on PostgreSQL, where writers take row locks; SQLite's single writer holds the whole database."""
    return s.get_bind().dialect.name == "postgresql"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Whoever commits a session, queued rows go with it (and a lost race stops it).
        event.listen(self.sessionmaker, "before_commit", _before_commit)
        self._reader = sessionmaker(self.engine.execution_options(oms_readonly=True), expire_on_commit=False,
                                    autoflush=False)

    def lend(self, key: str, value: Any) -> None:
        """Every session opened by :meth:`session` from now on finds ``value`` at ``s.info[key]``.

        For a service that code deep inside a transaction needs and whose callers cannot hand it down (the
        e-invoice submitter that issuing an invoice queues for, invoices/submission.py).
        """
        info = dict(self.sessionmaker.kw.get("info") or {})
        info[key] = value
        self.sessionmaker.configure(info=info)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.sessionmaker() as s, s.begin():
            yield s
            drain(s)

    def run_retrying(self, fn: Callable[[], T], *, what: str) -> T:
        """``fn()``, which opens its own transaction(s), run again from the start while it loses races.

        See storage/retry.py: for work that may meet other processes on the same rows.
        """
        return run_retrying(fn, what=what)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        with self._reader() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()

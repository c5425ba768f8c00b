"""Engine and sessions: SQLite (WAL) by default, PostgreSQL by URL.

SQLite: WAL so readers never block the writer, a busy timeout so a second
process waits instead of failing, ``synchronous=FULL`` so a committed order
survives power loss, foreign keys on, and ``BEGIN IMMEDIATE`` so a write
transaction takes the write lock up front instead of failing half-way with
"database is locked" when it first writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kw: Any) -> Engine:
    u = make_url(url)
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


def append(s: Session, model: type, **values: Any) -> None:
    """Queue an append-only row (history, decisions, outbox, movements...).

    Queued rows are written with one multi-row INSERT per table at the next
    :func:`drain`: at every stage boundary, at the end of a savepoint, and
    before commit. They skip the ORM's per-object bookkeeping, which is most
    of the cost of a transition on the hot path.
    """
    s.info.setdefault(_APPEND, {}).setdefault(model, []).append(values)


def drain(s: Session, only: type | None = None) -> None:
    """Write the queued rows (of every table, or of ``only`` when a reader needs just that one)."""
    buffered: dict[type, list[dict[str, Any]]] | None = s.info.get(_APPEND)
    if not buffered:
        return
    if only is not None:
        rows = buffered.pop(only, None)
        if rows:
            s.execute(insert(only), rows)
        return
    del s.info[_APPEND]
    s.flush()  # rows may refer to objects added through the ORM
    for model, rows in buffered.items():
        if rows:
            s.execute(insert(model), rows)


def _drain_on_commit(s: Session) -> None:
    # before_commit also fires when a SAVEPOINT is released: only the real commit drains.
    if not s.in_nested_transaction():
        drain(s)


@contextmanager
def savepoint(s: Session) -> Iterator[None]:
    """A SAVEPOINT that also takes back the rows queued with :func:`append` inside it.

    On failure the queue is restored as it was: rows queued inside are dropped,
    and rows queued before but written inside (and so rolled back) are queued again.
    """
    before = {m: list(rows) for m, rows in s.info.get(_APPEND, {}).items()}
    try:
        with s.begin_nested():
            yield
    except BaseException:
        s.info[_APPEND] = before
        raise


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Whoever commits a session, queued rows go with it.
        event.listen(self.sessionmaker, "before_commit", _drain_on_commit)
        self._reader = sessionmaker(self.engine.execution_options(oms_readonly=True), expire_on_commit=False,
                                    autoflush=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.sessionmaker() as s, s.begin():
            yield s
            drain(s)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        with self._reader() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()

"""The driver path (storage/driver.py) stores and reads exactly what SQLAlchemy's own path does.

The hot path's bulk statements skip SQLAlchemy's execution: on SQLite they run on sqlite3,
on PostgreSQL inserts go by COPY and lookups by ``= ANY`` (driver_pg.py). Whatever goes in
(timestamps, JSON, NULLs, column defaults, a statement's own literals) must come out as
if written and read through ``Connection.execute``, errors must be SQLAlchemy's, and the
engine's cursor events must still see each statement, on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, bindparam, event, select, update
from sqlalchemy.exc import IntegrityError

from oms_engine.storage.db import make_engine
from oms_engine.storage.driver import execute_many, fetch, insert_many, insert_returning
from oms_engine.storage.migrate import upgrade
from oms_engine.storage.models import Customer, OutboxMessage
from tests.conftest import pg_schema

OUTBOX = OutboxMessage.__table__
CUSTOMERS = Customer.__table__
BY_ID = (select(OUTBOX.c.id, OUTBOX.c.order_number, OUTBOX.c.payload, OUTBOX.c.status, OUTBOX.c.attempts,
                OUTBOX.c.created_at, OUTBOX.c.sent_at)
         .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True))).order_by(OUTBOX.c.id))
PENDING_BEFORE = (select(OUTBOX.c.id).where(OUTBOX.c.status == bindparam("status"),
                                            OUTBOX.c.available_at <= bindparam("at")).order_by(OUTBOX.c.id))
RETRY = (update(OUTBOX).where(OUTBOX.c.id == bindparam("_id"), OUTBOX.c.attempts < 3)
         .values(attempts=OUTBOX.c.attempts + bindparam("n"), last_error=bindparam("why")))
T0 = datetime(2026, 12, 2, 8, 30, 0, 123456)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def message(i: int, **over: Any) -> dict[str, Any]:
    row = {"kind": "connector", "target": "wms", "topic": "dispatch", "payload": {"n": i, "lines": [i, "x"]},
           "created_at": T0 + timedelta(seconds=i), "available_at": T0}
    row.update(over)
    return row


def through_sqlalchemy(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*BY_ID.selected_columns).order_by(OUTBOX.c.id))]


def test_rows_written_on_the_driver_read_back_as_given_with_their_defaults(engine: Engine) -> None:
    rows = [message(i) for i in range(5)] + [message(5, order_number="ORD-5", sent_at=T0, status="sent")]
    with engine.begin() as conn:
        insert_many(conn, OUTBOX, rows[:5])
        insert_many(conn, OUTBOX, rows[5:])
    stored = through_sqlalchemy(engine)
    assert stored == [(i + 1, "", {"n": i, "lines": [i, "x"]}, "pending", 0, T0 + timedelta(seconds=i), None)
                      for i in range(5)] + [(6, "ORD-5", {"n": 5, "lines": [5, "x"]}, "sent", 0,
                                             T0 + timedelta(seconds=5), T0)]
    with engine.connect() as conn:
        assert fetch(conn, BY_ID, {"ids": [6, 2, 99]}) == [stored[1], stored[5]]
        assert fetch(conn, BY_ID, {"ids": []}) == []
        assert fetch(conn, PENDING_BEFORE, {"status": "pending", "at": T0}) == [(i,) for i in range(1, 6)]
        assert fetch(conn, PENDING_BEFORE, {"status": "pending", "at": T0 - timedelta(microseconds=1)}) == []


def test_an_update_counts_the_rows_it_changed_and_keeps_the_statements_literals(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_many(conn, OUTBOX, [message(i, attempts=2 * i) for i in range(3)])   # attempts 0, 2, 4
        changed = execute_many(conn, RETRY, [{"_id": 1, "n": 1, "why": "slow"}, {"_id": 2, "n": 5, "why": "down"},
                                             {"_id": 3, "n": 1, "why": "never"}])
    assert changed == 2   # the third has had its three attempts
    with engine.connect() as conn:
        assert conn.execute(select(OUTBOX.c.attempts, OUTBOX.c.last_error).order_by(OUTBOX.c.id)).all() == [
            (1, "slow"), (7, "down"), (4, "")]


def test_a_refused_row_is_sqlalchemys_integrity_error_and_nothing_of_the_batch_stays(engine: Engine) -> None:
    customers = [{"ref": f"C-{i}", "name": "n", "email": "", "phone": "", "level": "normal"} for i in range(3)]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_many(conn, CUSTOMERS, [*customers, customers[1]])
    with engine.connect() as conn:
        assert conn.execute(select(CUSTOMERS.c.ref)).all() == []


def test_the_engines_cursor_events_see_the_statements(engine: Engine) -> None:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        seen.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", before)
    try:
        with engine.begin() as conn:
            insert_many(conn, OUTBOX, [message(1)])
            execute_many(conn, RETRY, [{"_id": 1, "n": 1, "why": ""}])
            fetch(conn, BY_ID, {"ids": [1]})
    finally:
        event.remove(engine, "before_cursor_execute", before)
    # PostgreSQL takes the rows with COPY (driver_pg.py).
    inserted = "COPY" if engine.dialect.name == "postgresql" else "INSERT"
    assert [s for s in seen if s in ("INSERT", "COPY", "UPDATE", "SELECT")] == [inserted, "UPDATE", "SELECT"]


_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=8)
_WHEN = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated database per backend for all the examples (a fresh one per example is too slow)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('driver') / 'oms.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    with pg_schema() as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


# JSON columns hold objects or nothing (a bare number would come back as a number: SQLite gives the
# column numeric affinity, whichever path wrote it).
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(_TEXT, st.none() | st.dictionaries(_TEXT, _JSON, max_size=4), _WHEN,
                                st.none() | _WHEN), min_size=1, max_size=6))
def test_any_batch_reads_back_as_sqlalchemy_reads_it(any_engine: Engine, batch: list[Any]) -> None:
    with any_engine.begin() as conn:
        conn.execute(OUTBOX.delete())
        insert_many(conn, OUTBOX, [message(0, order_number=t, payload=j, created_at=c, sent_at=s)
                                   for t, j, c, s in batch])
    stored = through_sqlalchemy(any_engine)
    with any_engine.connect() as conn:
        assert fetch(conn, BY_ID, {"ids": [r[0] for r in stored]}) == stored
    assert [(r[1], r[2], r[5], r[6]) for r in stored] == [tuple(b) for b in batch]


def test_inserted_rows_return_their_new_ids_over_several_pages(engine: Engine) -> None:
    # Five thousand customers of eight values each are more parameters than one SQLite statement takes.
    customers = [{"ref": f"C-{i:05d}", "name": f"n{i}", "email": "", "phone": "", "level": "regular",
                  "blacklisted": i % 7 == 0, "created_at": T0} for i in range(5000)]
    with engine.begin() as conn:
        returned = insert_returning(conn, CUSTOMERS, customers, ("id", "ref", "blacklisted"))
    with engine.connect() as conn:
        stored = conn.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.ref, CUSTOMERS.c.blacklisted)).all()
    assert sorted(returned) == sorted(tuple(r) for r in stored)
    assert len(stored) == 5000 and sum(b for _, _, b in returned) == 715


BY_REF = select(CUSTOMERS.c.ref).where(CUSTOMERS.c.ref.in_(bindparam("refs", expanding=True)))


def test_a_key_longer_than_its_column_matches_no_row_that_shares_its_start(engine: Engine) -> None:
    # On PostgreSQL the list is one array parameter: cast to the column's VARCHAR(128) it would be cut
    # to 128 characters and find the customer whose ref is exactly that start.
    ref = "R" * 128
    with engine.begin() as conn:
        insert_many(conn, CUSTOMERS, [{"ref": ref, "created_at": T0}])
    with engine.connect() as conn:
        assert fetch(conn, BY_REF, {"refs": [ref + "-other"]}) == []
        assert fetch(conn, BY_REF, {"refs": [ref + "-other", ref]}) == [(ref,)]


@given(when=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_timestamps_are_written_as_the_text_sqlalchemy_writes(when: datetime) -> None:
    """SQLite compares timestamps as text: the driver path's must be SQLAlchemy's to the character."""
    from sqlalchemy.dialects import sqlite

    from oms_engine.storage.driver_sqlite import _datetime_text

    dialect = sqlite.dialect()
    sqlalchemys = sqlite.DATETIME().bind_processor(dialect)
    assert sqlalchemys is not None
    assert _datetime_text(sqlalchemys)(when) == sqlalchemys(when)
    aware = when.replace(tzinfo=UTC)   # not the OMS's way, but SQLAlchemy's answer all the same
    assert _datetime_text(sqlalchemys)(aware) == sqlalchemys(aware)

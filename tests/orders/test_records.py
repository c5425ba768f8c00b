"""Orders read as records (orders/records.py): what a stage changes is written back, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from oms_engine.engine import OMS
from oms_engine.orders.records import load_records
from oms_engine.storage.db import drain, savepoint
from oms_engine.storage.models import Order
from tests.support import order_json, payload


@contextmanager
def order_updates(oms: OMS) -> Iterator[list[Any]]:
    """The values of each parameter set of every UPDATE of orders sent while the block runs."""
    sent: list[Any] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE ORDERS"):
            # sqlite3 is given tuples, psycopg dicts by name
            sent.extend(tuple(p.values()) if isinstance(p, dict) else tuple(p) for p in (params if many else [params]))

    event.listen(oms.db.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(oms.db.engine, "before_cursor_execute", note)


def _ingest(oms: OMS, *refs: str) -> list[int]:
    oms.intake.ingest("json", payload(*(order_json(r) for r in refs)), source="test")
    with oms.db.read() as s:
        return list(s.scalars(select(Order.id).order_by(Order.id)))


def test_only_the_columns_changed_are_written_and_a_value_put_back_is_no_change(oms: OMS) -> None:
    first, second, third = _ingest(oms, "R-1", "R-2", "R-3")
    with order_updates(oms) as sent, oms.db.session() as s:
        a, b, c = load_records(s, [first, second, third])
        a.note, a.warehouse = "call before delivery", "WH-SH"
        b.note = "changed my mind"
        b.note = ""                      # back to what was read
        c.stage = c.stage                # the same value again
        drain(s)
        assert len(sent) == 1
        [row] = sent
        assert "call before delivery" in row and "WH-SH" in row and first in row
        assert len(row) == 3             # the two columns and the key: the others are left as they are
        sent.clear()
        drain(s)                         # written once: a second drain has nothing to send
        assert sent == []
        a.note = "and ring twice"        # a change after the drain goes at the next one
        drain(s)
        assert len(sent) == 1 and "and ring twice" in sent[0]
    with oms.db.read() as s:
        got = {o.id: (o.note, o.warehouse) for o in s.scalars(select(Order))}
    assert got == {first: ("and ring twice", "WH-SH"), second: ("", None), third: ("", None)}


def test_records_read_back_as_the_orm_reads_them(oms: OMS) -> None:
    [oid] = _ingest(oms, "R-9")
    with oms.db.session() as s:
        [rec] = load_records(s, [oid], track=False)
        orm = s.get(Order, oid)
        assert orm is not None
        for column in Order.__table__.columns:
            assert getattr(rec, column.key) == getattr(orm, column.key), column.key
        assert [(ln.line_no, ln.sku, ln.quantity) for ln in rec.lines] == \
            [(ln.line_no, ln.sku, ln.quantity) for ln in orm.lines]
        assert rec.customer.ref == orm.customer.ref
        assert rec.dirty == set()


def test_a_change_written_inside_a_savepoint_rolled_back_is_written_when_made_again(oms: OMS) -> None:
    """The savepoint took the write back: a record must not go on taking the value as stored, or the
    same change made again (as a retry does) would be left out."""
    [oid] = _ingest(oms, "R-5")
    with order_updates(oms) as sent, oms.db.session() as s:
        [rec] = load_records(s, [oid])
        try:
            with savepoint(s):
                rec.note = "leave at the door"
                drain(s)
                raise RuntimeError("a later row of the savepoint failed")
        except RuntimeError:
            pass
        assert len(sent) == 1            # written, then rolled back with the savepoint
        rec.note = "leave at the door"   # the retry
    assert len(sent) == 2
    with oms.db.read() as s:
        assert s.get(Order, oid).note == "leave at the door"   # type: ignore[union-attr]

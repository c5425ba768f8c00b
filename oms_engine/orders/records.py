"""Orders as plain records: how the pipeline reads and writes orders in bulk.

The ORM's unit of work costs tens of microseconds per object loaded, changed
and flushed; a batch stage touches thousands of orders and lines. So the hot
path reads orders, their lines and customers with three Core queries per
batch into :class:`OrderRec` (slotted, with the ORM model's attribute names,
so the state machine, the facts and the views treat both alike), notes which
fields a transition changes, and writes the changes of the whole batch with
one ``UPDATE ... WHERE id = ?`` executemany per set of changed columns when
the session drains (before every read that needs them and before commit).
Commands that work on one order keep using the ORM (queries.get_order).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import field, make_dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..storage.db import insert_returning_ids, insert_rows, on_drain, restored_on_rollback
from ..storage.driver import execute_many, fetch
from ..storage.models import Customer, Order, OrderLine

ORDER_COLUMNS: tuple[str, ...] = tuple(c.key for c in Order.__table__.columns)
# The channel's promotion details of a line are kept for people (order show, explain.py), never read by the
# pipeline: its records leave them out (None), last, so a row read fills the columns before them.
_NOT_READ = ("promotions",)
LINE_COLUMNS: tuple[str, ...] = (*(c.key for c in OrderLine.__table__.columns if c.key not in _NOT_READ),
                                 *_NOT_READ)
_READ_LINE_COLUMNS = LINE_COLUMNS[:-len(_NOT_READ)]
CUSTOMER_COLUMNS: tuple[str, ...] = ("id", "ref", "name", "email", "phone", "level", "blacklisted")
_TRACKED = "oms_records"   # session.info: records whose changes are written at the next drain
_CHUNK = 500


def _record(name: str, columns: tuple[str, ...]) -> Any:
    # A slotted dataclass: its generated __init__ takes a row read (a tuple in column order) as
    # positional arguments, or some columns by name (the rest None), with no loop per column.
    cls = make_dataclass(name, [(c, Any, field(default=None)) for c in columns], slots=True, eq=False)
    cls.__module__ = __name__
    return cls


CustomerRec = _record("CustomerRec", CUSTOMER_COLUMNS)
LineRec = _record("LineRec", LINE_COLUMNS)


# An order's slots: its columns in ORDER_COLUMNS order, then its lines, its customer, the columns
# assigned since it was read or written, and the values it was read or last written with.
_OrderSlots = _record("_OrderSlots", (*ORDER_COLUMNS, "lines", "customer", "_assigned", "_read"))
_ORDER_VALUES = attrgetter(*ORDER_COLUMNS)
_COLUMN_AT = {c: i for i, c in enumerate(ORDER_COLUMNS) if c != "id"}


class OrderRec(_OrderSlots):  # type: ignore[misc, valid-type]
    """An order row with its lines and customer; the columns changed since it was read are written back.

    A record is filled as a plain ``_OrderSlots`` by its generated ``__init__``, a row read as
    its positional arguments, and then made an OrderRec, whose ``__setattr__`` notes each column
    assigned. The two classes have the same slots, so the class can be switched; filling through
    that ``__setattr__`` cost a Python call per column of every order of every stage. At the drain
    only records with a column assigned are looked at, and a column assigned the value it was read
    with (or put back to it) is no change.
    """

    __slots__ = ()

    id: int
    number: str
    parent_id: int | None
    status: str
    stage: str | None
    warehouse: str | None
    lines: list[LineRec]
    customer: CustomerRec

    @classmethod
    def of_row(cls, row: Sequence[Any], lines: list[LineRec], customer: CustomerRec) -> OrderRec:
        """From a row read, in ORDER_COLUMNS order."""
        row = tuple(row)
        rec = _OrderSlots(*row, lines, customer, set(), row)
        rec.__class__ = cls
        return rec  # type: ignore[no-any-return]

    @classmethod
    def of_values(cls, values: dict[str, Any], lines: list[LineRec], customer: CustomerRec) -> OrderRec:
        """From column values by name (the columns not given are None)."""
        return cls.of_row(tuple(map(values.get, ORDER_COLUMNS)), lines, customer)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _COLUMN_AT:
            self._assigned.add(name)

    @property
    def dirty(self) -> set[str]:
        """The columns assigned a value other than the one read (or written last)."""
        read = self._read
        return {c for c in self._assigned if getattr(self, c) != read[_COLUMN_AT[c]]}

    def clean(self) -> None:
        """What the record holds now is what the database holds."""
        if self._assigned:
            object.__setattr__(self, "_read", _ORDER_VALUES(self))
            self._assigned.clear()

    def __repr__(self) -> str:
        return f"OrderRec({self.number}, {self.status})"


def _by_ids(table: Any, columns: Sequence[str], key: str, *order_by: str) -> Any:
    return (select(*(table.c[c] for c in columns)).where(table.c[key].in_(bindparam("ids", expanding=True)))
            .order_by(*(table.c[c] for c in order_by)))


_ORDERS_BY_ID = _by_ids(Order.__table__, ORDER_COLUMNS, "id", "id")
_LINES_BY_ORDER = _by_ids(OrderLine.__table__, _READ_LINE_COLUMNS, "order_id", "order_id", "line_no")
_CUSTOMERS_BY_ID = _by_ids(Customer.__table__, CUSTOMER_COLUMNS, "id")


def _rows(s: Session, stmt: Any, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    return fetch(s.connection(), stmt, {"ids": ids})


_ORDER_ID = ORDER_COLUMNS.index("id")
_ORDER_CUSTOMER = ORDER_COLUMNS.index("customer_id")
_LINE_ORDER = LINE_COLUMNS.index("order_id")
_CUSTOMER_ID = CUSTOMER_COLUMNS.index("id")


def load_records(s: Session, ids: Sequence[int], *, track: bool = True, customers: bool = True) -> list[OrderRec]:
    """Orders by id, in id order, with lines and customer: three queries per 500 orders.

    ``track``: their changes are written when the session drains (see :func:`flush_records`).
    ``customers=False``: without their customers (``customer`` is None), for work that never looks at
    them (queuing a warehouse document): one query less.
    """
    ids = sorted(set(ids))
    if not ids:
        return []
    order_rows: list[tuple[Any, ...]] = []
    lines: dict[int, list[LineRec]] = defaultdict(list)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        order_rows += _rows(s, _ORDERS_BY_ID, part)
        for row in _rows(s, _LINES_BY_ORDER, part):
            lines[row[_LINE_ORDER]].append(LineRec(*row))
    if customers:
        buyers = load_customers(s, {r[_ORDER_CUSTOMER] for r in order_rows})
        records = [OrderRec.of_row(r, lines[r[_ORDER_ID]], buyers[r[_ORDER_CUSTOMER]]) for r in order_rows]
    else:
        records = [OrderRec.of_row(r, lines[r[_ORDER_ID]], None) for r in order_rows]
    if track:
        track_records(s, records)
    return records


def load_customers(s: Session, ids: Iterable[int]) -> dict[int, CustomerRec]:
    wanted = sorted(set(ids))
    out: dict[int, CustomerRec] = {}
    for i in range(0, len(wanted), _CHUNK):
        for row in _rows(s, _CUSTOMERS_BY_ID, wanted[i:i + _CHUNK]):
            out[row[_CUSTOMER_ID]] = CustomerRec(*row)
    return out


def load_records_by_number(s: Session, numbers: Sequence[str]) -> list[OrderRec]:
    if not numbers:
        return []
    ids: list[int] = []
    wanted = sorted(set(numbers))
    for i in range(0, len(wanted), _CHUNK):
        ids += list(s.scalars(select(Order.id).where(Order.number.in_(wanted[i:i + _CHUNK]))))
    return load_records(s, ids)


class _Tracked(dict[int, OrderRec]):
    """A session's tracked records, by id. A savepoint rolled back forgets the records it added (their
    orders are gone with it) and puts the others' account of what the database holds back as it was:
    what they wrote inside the savepoint was taken back with it, so making that change again must
    write it again."""

    def snapshot(self) -> tuple[dict[int, OrderRec], list[tuple[OrderRec, tuple[Any, ...], set[str]]]]:
        return dict(self), [(rec, rec._read, set(rec._assigned)) for rec in self.values()]

    def restore(self, snap: tuple[dict[int, OrderRec], list[tuple[OrderRec, tuple[Any, ...], set[str]]]] | None
                ) -> None:
        self.clear()
        if snap is None:
            return
        members, states = snap
        self.update(members)
        for rec, read, assigned in states:
            rec._read = read
            rec._assigned.clear()
            rec._assigned.update(assigned)


def track_records(s: Session, records: Iterable[OrderRec]) -> None:
    """Write these records' changes whenever the session drains (see :class:`_Tracked` for savepoints)."""
    tracked: _Tracked | None = s.info.get(_TRACKED)
    if tracked is None:
        tracked = s.info[_TRACKED] = _Tracked()
        on_drain(s, flush_records)
        restored_on_rollback(s, _TRACKED)
    for rec in records:
        tracked[rec.id] = rec


_UPDATES: dict[frozenset[str], Any] = {}


def _update_statement(columns: frozenset[str]) -> Any:
    stmt = _UPDATES.get(columns)
    if stmt is None:
        # On the table: an ORM UPDATE given many parameter sets is a bulk update by primary key instead.
        table = Order.__table__
        stmt = table.update().where(table.c.id == bindparam("_id")).values({c: bindparam(c) for c in sorted(columns)})
        _UPDATES[columns] = stmt
    return stmt


def flush_records(s: Session) -> None:
    """Write the changed fields of every tracked record: one executemany per set of changed columns."""
    tracked: _Tracked | None = s.info.get(_TRACKED)
    if not tracked:
        return
    groups: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for rec in tracked.values():
        if rec._assigned:
            changed = rec.dirty
            if changed:
                cols = frozenset(changed)
                groups[cols].append({"_id": rec.id, **{c: getattr(rec, c) for c in cols}})
            rec.clean()
    conn = s.connection()
    for cols, rows in groups.items():
        execute_many(conn, _update_statement(cols), rows)


def forget_records(s: Session) -> None:
    """After a rollback: the tracked records describe a transaction that is gone."""
    s.info.pop(_TRACKED, None)


def insert_orders(s: Session, orders: Sequence[dict[str, Any]], lines: Sequence[Sequence[dict[str, Any]]],
                  customers: Sequence[CustomerRec]) -> list[OrderRec]:
    """Insert orders (column values) with their lines: two executemany statements for the lot.

    Returns their records, tracked (see :func:`track_records`), in the order given.
    """
    if not orders:
        return []
    ids = insert_returning_ids(s, Order.__table__, orders, key="number")
    line_rows: list[dict[str, Any]] = []
    records: list[OrderRec] = []
    for oid, values, order_lines, customer in zip(ids, orders, lines, customers, strict=True):
        recs = []
        for ln in order_lines:
            row = {**ln, "order_id": oid}
            line_rows.append(row)
            recs.append(LineRec(**row))
        records.append(OrderRec.of_values({**values, "id": oid}, recs, customer))
    if line_rows:
        insert_rows(s, OrderLine, line_rows)
    track_records(s, records)
    return records

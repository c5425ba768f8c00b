"""Stock moves of one transaction: decided in memory on figures read under the lock, written in bulk.

A stage (or an intake payload) reserves and hands over stock for hundreds of
orders at once. Instead of one conditional UPDATE per line, :class:`StockBatch`
reads the stock rows the batch may touch once, under the lock (PostgreSQL:
``SELECT ... FOR UPDATE`` in the global (warehouse, sku) order, ledger.py;
SQLite: inside the ``BEGIN IMMEDIATE`` write transaction, which no other
writer can enter), decides every move on those exact figures, and at drain
writes one conditional ``UPDATE`` per stock row touched (executemany), the
reservation rows and the ledger rows. The UPDATE still states the invariant
(``on_hand - reserved`` and ``reserved`` stay non-negative): should a figure
ever be wrong, fewer rows change than were sent and the transaction fails
instead of overselling; CHECK constraints back it again.

Every movement, of every type (movements.py), is posted here: reservations
and their release on the hot path, which touch only ``reserved``, and the
movements of goods in and out, which also move the row's value at average
cost and so read the row's on hand and value (once per row, under the same
lock) before the first of them. A movement of goods into a warehouse that
has no row for the SKU yet creates it.

Each ledger row is also a ``stock.movement`` event when the OMS publishes
events (events/sink.py): the rows posted here are told here (reservations,
their release, sale-outs; and a :meth:`StockBatch.post` asked to ``tell``),
the ledger's verbs tell theirs themselves (ledger.py). Without a sink that
costs one look-up per transaction and one ``is None`` test per reservation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..errors import OmsError
from ..events.sink import sink_of
from ..storage.db import append, on_drain, restored_on_rollback, row_locks_apply
from ..storage.driver import execute_many, fetch
from ..storage.models import Reservation, Stock, StockMovement
from .locking import lock_stock
from .movements import EFFECTS, Movement, MovementError, deltas, value_in, value_out

if TYPE_CHECKING:
    from ..events.sink import EventSink

_KEY = "oms_stock_batch"


# Called at every write with the SKUs whose available stock went up in the transaction (goods in, stock
# released): held orders waiting for them may be served now (orders/waits.py). Registered by the engine.
_FREED_LISTENERS: list[Callable[[Session, set[str]], None]] = []


def on_freed(listener: Callable[[Session, set[str]], None]) -> None:
    if listener not in _FREED_LISTENERS:
        _FREED_LISTENERS.append(listener)


class StockError(OmsError):
    """A stock movement that cannot be made (it would take available below zero, say): nothing changed."""

_ABSENT = object()
_CHUNK = 500

# On the table, not the mapped class: an ORM UPDATE given many parameter sets becomes a bulk update by
# primary key, which this is not.
_STOCK = Stock.__table__.c
_APPLY = (update(Stock.__table__).where(_STOCK.warehouse == bindparam("w"), _STOCK.sku == bindparam("k"),
                                        _STOCK.on_hand + bindparam("h") >= _STOCK.reserved + bindparam("r"),
                                        _STOCK.reserved + bindparam("r") >= 0,
                                        _STOCK.value + bindparam("v") >= 0)
          .values(on_hand=_STOCK.on_hand + bindparam("h"), reserved=_STOCK.reserved + bindparam("r"),
                  value=_STOCK.value + bindparam("v")))
_AVAILABLE = (select(_STOCK.sku, _STOCK.on_hand - _STOCK.reserved)
              .where(_STOCK.warehouse == bindparam("w"), _STOCK.sku.in_(bindparam("skus", expanding=True))))
_FIGURES = (select(_STOCK.sku, _STOCK.on_hand, _STOCK.value)
            .where(_STOCK.warehouse == bindparam("w"), _STOCK.sku.in_(bindparam("skus", expanding=True))))


def _new_rows(insert_: Any) -> Any:
    return insert_(Stock.__table__).values(warehouse=bindparam("w"), sku=bindparam("k"), on_hand=0, reserved=0,
                                           value=0).on_conflict_do_nothing()


# A row for a (warehouse, SKU) that goods come into for the first time; built once per dialect.
_NEW_ROWS = {"sqlite": _new_rows(sqlite_insert), "postgresql": _new_rows(pg_insert)}


class StockBatch:
    def __init__(self, s: Session) -> None:
        self.s = s
        self.available: dict[tuple[str, str], int] = {}
        self._deltas: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])   # on_hand, reserved, value
        self._gone: list[int] = []   # reservation rows released, shipped or handed over
        # Every change of ``available`` (key, figure before or _ABSENT), so that a savepoint rolled back
        # undoes its own changes: copying the figures instead cost a copy of thousands per savepoint.
        self._undo: list[tuple[tuple[str, str], Any]] = []
        # On hand and value of the rows goods move in or out of: (on_hand, value), read once under the
        # lock and kept current as movements are posted; undone like ``available``.
        self._figures: dict[tuple[str, str], tuple[int, int]] = {}
        self._figures_undo: list[tuple[tuple[str, str], Any]] = []
        self._absent: set[tuple[str, str]] = set()   # rows read that do not exist (yet)
        self._freed: set[str] = set()   # SKUs whose available went up (see on_freed)
        self._last_value = 0
        # Looked up once: a session's sink is set when it is opened (Database.lend), and the batch is the session's.
        self.events: EventSink | None = sink_of(s)

    # -- figures ------------------------------------------------------------------------------
    def load(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read (and on PostgreSQL lock) the stock rows not read yet; missing rows count as 0."""
        available = self.available
        todo = sorted({k for k in keys if k not in available})
        if not todo:
            return
        if row_locks_apply(self.s):
            fresh = lock_stock(self.s, todo)
            missing = [k for k in todo if k not in fresh]
            if missing:  # locked earlier in this transaction by another path: read them as they are now
                fresh.update(self._read(missing))
        else:
            fresh = self._read(todo)
        self._undo.extend((key, _ABSENT) for key in todo)
        for key in todo:
            d = self._deltas.get(key)
            if key not in fresh:
                self._absent.add(key)
            available[key] = fresh.get(key, 0) + (d[0] - d[1] if d else 0)

    def load_figures(self, keys: Iterable[tuple[str, str]]) -> None:
        """On hand and value of these rows (read under the lock :meth:`load` takes), for goods in and out."""
        todo = sorted({k for k in keys if k not in self._figures})
        if not todo:
            return
        self.load(todo)
        by_warehouse: dict[str, list[str]] = defaultdict(list)
        for w, k in todo:
            by_warehouse[w].append(k)
        conn = self.s.connection()
        read: dict[tuple[str, str], tuple[int, int]] = {}
        for w, skus in by_warehouse.items():
            for i in range(0, len(skus), _CHUNK):
                read.update({(w, k): (h, v) for k, h, v in fetch(conn, _FIGURES, {"w": w, "skus": skus[i:i + _CHUNK]})})
        for key in todo:
            h, v = read.get(key, (0, 0))
            d = self._deltas.get(key)
            if d:   # what this transaction already moved and has not written yet
                h, v = h + d[0], v + d[2]
            self._figures_undo.append((key, _ABSENT))
            self._figures[key] = (h, v)

    def on_hand(self, warehouse: str, sku: str) -> int:
        """On hand now, as this transaction sees it."""
        self.load_figures([(warehouse, sku)])
        return self._figures[(warehouse, sku)][0]

    def _read(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        return read_available(self.s, keys)

    def qty(self, warehouse: str, sku: str) -> int:
        return self.available.get((warehouse, sku), 0)

    # -- moves ----------------------------------------------------------------------------------
    def post(self, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, at: datetime,
             order_id: int | None = None, unit_cost: int | None = None, value: int | None = None,
             actor: str = "", note: str = "", lot: str | None = None, damaged: int = 0, tell: bool = False) -> int:
        """Post one movement of ``qty`` (signed for adjustments, transfers and counts); returns the value it
        moved. ``unit_cost``: what goods in cost a unit; ``value``: the value goods in bring, as given
        (a transfer in takes what its transfer out took). ``damaged``: the change of damaged stock the
        movement makes, recorded on its ledger row; damaged.py posts those movements and keeps that
        status (a regrade's on-hand part comes here). ``tell``: tell the event sink of it, for a caller that
        is not one of the ledger's verbs (they tell it themselves, ledger.py). Raises StockError, and changes
        nothing, when available would go below zero."""
        try:
            h, r = deltas(kind, qty)
        except MovementError as exc:
            raise StockError(str(exc)) from None
        effect = EFFECTS[kind]
        if effect.damaged * qty != damaged or not (h or r):
            # Damaged stock is not a stock row's: only its own module moves it, with its table.
            raise StockError(f"{kind.value}: a movement of damaged stock is posted by stock/damaged.py")
        if unit_cost is not None and (unit_cost < 0 or not effect.costed or h <= 0):
            raise StockError(f"{kind.value}: a unit cost is only for goods in at cost, and not negative")
        key = (warehouse, sku)
        if key not in self.available:
            self.load([key])
        if self.available[key] + h - r < 0:
            raise StockError(f"{kind.value} of {qty} {sku} at {warehouse}: only {self.available[key]} available")
        self._apply(key, kind, h, r, order_id, document, at, unit_cost=unit_cost, value=value, actor=actor,
                    note=note, lot=lot, damaged=damaged)
        if tell and self.events is not None:
            self.events.movement(self.s, kind.value, warehouse, sku, qty, on_hand=h, reserved=r, damaged=damaged,
                                 document=document, at=at, order_id=order_id, lot=lot)
        return self._last_value

    def _apply(self, key: tuple[str, str], kind: Movement, h: int, r: int, order_id: int | None, document: str,
               at: datetime, *, unit_cost: int | None = None, value: int | None = None, actor: str = "",
               note: str = "", lot: str | None = None, damaged: int = 0) -> None:
        if h:
            # Read before this movement counts among the transaction's pending deltas, which the figures
            # read take in (load_figures): read after, its own quantity would count twice.
            self.load_figures([key])
        d = self._deltas[key]
        d[0] += h
        d[1] += r
        if h - r:
            self._add(key, h - r)
            if h - r > 0:
                self._freed.add(key[1])
        row: dict[str, Any] = {"warehouse": key[0], "sku": key[1], "kind": kind.value, "on_hand_delta": h,
                               "reserved_delta": r, "order_id": order_id, "document": document, "at": at}
        if lot is not None:
            row["lot"] = lot
        self._last_value = 0
        if h:
            # Goods in or out: the row's value moves too, at average cost (movements.py).
            on_hand, worth = self._figures[key]
            v = (value if value is not None else value_in(worth, on_hand, h, unit_cost)) if h > 0 \
                else -value_out(worth, on_hand, -h)
            self._figures_undo.append((key, (on_hand, worth)))
            self._figures[key] = (on_hand + h, worth + v)
            d[2] += v
            self._last_value = v
            row.update(value_delta=v, unit_cost=unit_cost, actor=actor, note=note)
            if damaged:
                # A regrade: one row for both sides. Only goods movements get here, never a reservation,
                # and the column is left to its server default otherwise (not one more value per row).
                row["damaged_delta"] = damaged
        append(self.s, StockMovement, **row)

    def _add(self, key: tuple[str, str], qty: int) -> None:
        before = self.available.get(key, _ABSENT)
        self._undo.append((key, before))
        self.available[key] = (0 if before is _ABSENT else before) + qty

    def reserve(self, order_id: int, document: str, line_no: int, warehouse: str, sku: str, qty: int,
                at: datetime) -> bool:
        """Hold ``qty`` for a line at ``warehouse`` if the figure allows; False (nothing done) otherwise."""
        if qty <= 0:
            raise StockError(f"cannot reserve a quantity of {qty}")
        key = (warehouse, sku)
        if key not in self.available:
            self.load([key])
        if self.available[key] < qty:
            return False
        self._apply(key, Movement.RESERVE, 0, qty, order_id, document, at)
        append(self.s, Reservation, order_id=order_id, line_no=line_no, warehouse=warehouse, sku=sku, quantity=qty)
        if self.events is not None:
            self.events.movement(self.s, Movement.RESERVE.value, warehouse, sku, qty, on_hand=0, reserved=qty,
                                 damaged=0, document=document, at=at, order_id=order_id, lot=None)
        return True

    def give_back(self, held: Sequence[Any], document: str, at: datetime, kind: Movement = Movement.RELEASE
                  ) -> None:
        """Release (or ship) reservation rows (each with id, order_id, warehouse, sku and quantity).

        The rows are deleted with the batch's other writes (reservations_of drains first, so a reader
        in this transaction never sees them); the stock figures move at once.
        """
        keys = [(r.warehouse, r.sku) for r in held]
        self.load(keys)
        if EFFECTS[kind].on_hand:
            self.load_figures(keys)   # goods leave: their value with them, every row read at once
        for r in held:
            h, d = deltas(kind, r.quantity)
            self._apply((r.warehouse, r.sku), kind, h, d, r.order_id, document, at, lot=getattr(r, "lot", None))
        events = self.events
        if events is not None:   # a loop of its own: the rows pay nothing without a sink
            for r in held:
                h, d = deltas(kind, r.quantity)
                events.movement(self.s, kind.value, r.warehouse, r.sku, r.quantity, on_hand=h, reserved=d, damaged=0,
                                document=document, at=at, order_id=r.order_id, lot=getattr(r, "lot", None))
        self.hand_over(held)

    def hand_over(self, held: Sequence[Any]) -> None:
        """The reservation rows go (their units are re-booked to another order by the caller): no stock move."""
        self._gone.extend(r.id for r in held)

    # -- savepoints -------------------------------------------------------------------------------
    def snapshot(self) -> Any:
        return (len(self._undo), {k: list(v) for k, v in self._deltas.items()}, list(self._gone),
                len(self._figures_undo), set(self._absent), set(self._freed))

    def restore(self, snap: Any) -> None:
        """Back to the snapshot (None: as new), in place: a StockView may hold ``available``."""
        mark, moved, gone, figures_mark, absent, freed = snap if snap is not None else (0, {}, [], 0, set(), set())
        available = self.available
        for key, before in reversed(self._undo[mark:]):
            if before is _ABSENT:
                available.pop(key, None)   # read after the snapshot: read again (and locked) when next needed
            else:
                available[key] = before
        del self._undo[mark:]
        for key, fig in reversed(self._figures_undo[figures_mark:]):
            if fig is _ABSENT:
                self._figures.pop(key, None)
            else:
                self._figures[key] = fig
        del self._figures_undo[figures_mark:]
        self._deltas = defaultdict(lambda: [0, 0, 0], moved)
        self._gone = gone
        self._absent = absent
        self._freed = freed

    # -- writing ----------------------------------------------------------------------------------
    def write(self, s: Session) -> None:
        """One conditional UPDATE per stock row moved; fewer rows changed than sent is a failure."""
        changes = [{"w": w, "k": k, "h": h, "r": r, "v": v} for (w, k), (h, r, v) in sorted(self._deltas.items())
                   if h or r or v]
        self._deltas.clear()
        gone, self._gone = self._gone, []
        if self._absent:
            # Goods come into a warehouse that never held the SKU: its row first, then the movement.
            new = [{"w": c["w"], "k": c["k"]} for c in changes if (c["w"], c["k"]) in self._absent]
            if new:
                execute_many(s.connection(), _NEW_ROWS[s.get_bind().dialect.name], new)
                self._absent.difference_update((c["w"], c["k"]) for c in new)
        for i in range(0, len(gone), _CHUNK):
            s.execute(delete(Reservation).where(Reservation.id.in_(gone[i:i + _CHUNK])),
                      execution_options={"synchronize_session": False})
        if changes:
            changed = execute_many(s.connection(), _APPLY, changes)
            if changed != -1 and changed != len(changes):
                raise StockError(f"{len(changes) - changed} stock row(s) could not take the batch's moves: the "
                                 "figures it decided on were not the rows' (nothing was written)")
        if self._freed:
            # After the stock rows: waits are taken after stock, as everywhere (orders/waits.py).
            freed, self._freed = self._freed, set()
            for listener in _FREED_LISTENERS:
                listener(s, freed)


def read_available(s: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """on_hand - reserved of these stock rows, without locks; missing rows are left out.

    One query per warehouse (and 500 SKUs): ``warehouse = ? AND sku IN (...)`` walks the primary key,
    where a row-value ``(warehouse, sku) IN (...)`` makes SQLite scan the whole table.
    """
    by_warehouse: dict[str, list[str]] = defaultdict(list)
    for w, k in keys:
        by_warehouse[w].append(k)
    out: dict[tuple[str, str], int] = {}
    conn = s.connection()
    for w, skus in sorted(by_warehouse.items()):
        skus = sorted(set(skus))
        for i in range(0, len(skus), _CHUNK):
            out.update({(w, k): q for k, q in fetch(conn, _AVAILABLE, {"w": w, "skus": skus[i:i + _CHUNK]})})
    return out


def stock_batch(s: Session) -> StockBatch:
    """The transaction's stock batch, written whenever the session drains (and so before commit)."""
    batch: StockBatch | None = s.info.get(_KEY)
    if batch is None or batch.s is not s:
        batch = s.info[_KEY] = StockBatch(s)
        on_drain(s, batch.write)
        restored_on_rollback(s, _KEY)
    return batch

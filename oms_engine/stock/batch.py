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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from ..storage.db import append, on_drain, restored_on_rollback, row_locks_apply
from ..storage.driver import execute_many, fetch
from ..storage.models import Reservation, Stock, StockMovement
from .ledger import Movement, StockError, lock_stock

_KEY = "oms_stock_batch"
_ABSENT = object()
_CHUNK = 500

# On the table, not the mapped class: an ORM UPDATE given many parameter sets becomes a bulk update by
# primary key, which this is not.
_STOCK = Stock.__table__.c
_APPLY = (update(Stock.__table__).where(_STOCK.warehouse == bindparam("w"), _STOCK.sku == bindparam("k"),
                                        _STOCK.on_hand + bindparam("h") >= _STOCK.reserved + bindparam("r"),
                                        _STOCK.reserved + bindparam("r") >= 0)
          .values(on_hand=_STOCK.on_hand + bindparam("h"), reserved=_STOCK.reserved + bindparam("r")))
_AVAILABLE = (select(_STOCK.sku, _STOCK.on_hand - _STOCK.reserved)
              .where(_STOCK.warehouse == bindparam("w"), _STOCK.sku.in_(bindparam("skus", expanding=True))))


class StockBatch:
    def __init__(self, s: Session) -> None:
        self.s = s
        self.available: dict[tuple[str, str], int] = {}
        self._deltas: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])   # on_hand, reserved
        self._gone: list[int] = []   # reservation rows released, shipped or handed over
        # Every change of ``available`` (key, figure before or _ABSENT), so that a savepoint rolled back
        # undoes its own changes: copying the figures instead cost a copy of thousands per savepoint.
        self._undo: list[tuple[tuple[str, str], Any]] = []

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
            available[key] = fresh.get(key, 0) + (d[0] - d[1] if d else 0)

    def _read(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        return read_available(self.s, keys)

    def qty(self, warehouse: str, sku: str) -> int:
        return self.available.get((warehouse, sku), 0)

    # -- moves ----------------------------------------------------------------------------------
    def _move(self, key: tuple[str, str], kind: Movement, qty: int, order_id: int | None, document: str,
              at: datetime, ledger_kind: str | None = None) -> None:
        d = self._deltas[key]
        if kind is Movement.RESERVE:
            d[1] += qty
            self._add(key, -qty)
            deltas = (0, qty)
        elif kind is Movement.RELEASE:
            d[1] -= qty
            self._add(key, qty)
            deltas = (0, -qty)
        elif kind is Movement.SHIP:
            d[0] -= qty
            d[1] -= qty
            deltas = (-qty, -qty)
        else:
            d[0] += qty
            self._add(key, qty)
            deltas = (qty, 0)
        append(self.s, StockMovement, warehouse=key[0], sku=key[1], kind=ledger_kind or kind.value,
               on_hand_delta=deltas[0], reserved_delta=deltas[1], order_id=order_id, document=document, at=at)

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
        self._move(key, Movement.RESERVE, qty, order_id, document, at)
        append(self.s, Reservation, order_id=order_id, line_no=line_no, warehouse=warehouse, sku=sku, quantity=qty)
        return True

    def give_back(self, held: Sequence[Any], document: str, at: datetime, kind: Movement = Movement.RELEASE
                  ) -> None:
        """Release (or ship) reservation rows (each with id, order_id, warehouse, sku and quantity).

        The rows are deleted with the batch's other writes (reservations_of drains first, so a reader
        in this transaction never sees them); the stock figures move at once.
        """
        self.load((r.warehouse, r.sku) for r in held)
        for r in held:
            self._move((r.warehouse, r.sku), kind, r.quantity, r.order_id, document, at)
        self.hand_over(held)

    def hand_over(self, held: Sequence[Any]) -> None:
        """The reservation rows go (their units are re-booked to another order by the caller): no stock move."""
        self._gone.extend(r.id for r in held)

    # -- savepoints -------------------------------------------------------------------------------
    def snapshot(self) -> Any:
        return len(self._undo), {k: list(v) for k, v in self._deltas.items()}, list(self._gone)

    def restore(self, snap: Any) -> None:
        """Back to the snapshot (None: as new), in place: a StockView may hold ``available``."""
        mark, deltas, gone = snap if snap is not None else (0, {}, [])
        available = self.available
        for key, before in reversed(self._undo[mark:]):
            if before is _ABSENT:
                available.pop(key, None)   # read after the snapshot: read again (and locked) when next needed
            else:
                available[key] = before
        del self._undo[mark:]
        self._deltas = defaultdict(lambda: [0, 0], deltas)
        self._gone = gone

    # -- writing ----------------------------------------------------------------------------------
    def write(self, s: Session) -> None:
        """One conditional UPDATE per stock row moved; fewer rows changed than sent is a failure."""
        changes = [{"w": w, "k": k, "h": h, "r": r} for (w, k), (h, r) in sorted(self._deltas.items()) if h or r]
        self._deltas.clear()
        gone, self._gone = self._gone, []
        for i in range(0, len(gone), _CHUNK):
            s.execute(delete(Reservation).where(Reservation.id.in_(gone[i:i + _CHUNK])),
                      execution_options={"synchronize_session": False})
        if changes:
            changed = execute_many(s.connection(), _APPLY, changes)
            if changed != -1 and changed != len(changes):
                raise StockError(f"{len(changes) - changed} stock row(s) could not take the batch's moves: the "
                                 "figures it decided on were not the rows' (nothing was written)")


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

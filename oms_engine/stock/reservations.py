"""Stock held for order lines at warehouses: reserve, hand over, release, ship.

Each function says what it changes and what it locks. Reservations queued in
the current transaction (written in bulk at the next drain) are drained first
wherever reservations are read, so a reader never misses one.

Each function locks the stock rows it may touch, in the global order, before
it moves anything (see ledger.py); a caller that moves stock for several
orders in one transaction locks all of their rows first (:func:`lock_held`,
or a stock view read with ``lock=True``), so that the per-order locking finds
everything already held.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..plugin.views import StockView
from ..storage.db import append, drain, row_locks_apply, savepoint
from ..storage.models import Order, Reservation
from .ledger import Movement, StockError, lock_stock, move


def reserved_map(reservations: Iterable[Reservation]) -> dict[str, dict[int, int]]:
    """warehouse -> {line_no: quantity held there}: a line may be held in several warehouses."""
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for r in reservations:
        out[r.warehouse][r.line_no] = out[r.warehouse].get(r.line_no, 0) + r.quantity
    return dict(out)


def held_per_line(reservations: Iterable[Reservation], warehouse: str | None = None) -> dict[int, int]:
    """line_no -> quantity held (anywhere, or at ``warehouse``)."""
    held: dict[int, int] = defaultdict(int)
    for r in reservations:
        if warehouse is None or r.warehouse == warehouse:
            held[r.line_no] += r.quantity
    return dict(held)


def reserve(s: Session, order_id: int, document: str, line_no: int, warehouse: str, sku: str,
            qty: int, at: datetime) -> bool:
    """Hold ``qty`` of ``sku`` at ``warehouse`` for a line; False when it is not available."""
    if qty <= 0:
        raise StockError(f"cannot reserve a quantity of {qty}")
    if not move(s, warehouse=warehouse, sku=sku, kind=Movement.RESERVE, qty=qty,
                order_id=order_id, document=document, at=at):
        return False
    append(s, Reservation, order_id=order_id, line_no=line_no, warehouse=warehouse, sku=sku, quantity=qty)
    return True


def reserve_lines(s: Session, order_id: int, document: str, lines: Sequence[tuple[int, str, int]],
                  stock: StockView, at: datetime, prefer: str | None = None,
                  taken: dict[tuple[str, str], int] | None = None) -> list[str]:
    """Reserve each (line_no, sku, qty) greedily: preferred warehouse first, then priority.

    A line may be spread over warehouses. Returns the SKUs that could not be
    covered; what was reserved for them stays reserved (released on cancel).
    ``taken`` carries what earlier orders reserved since ``stock`` was read, so
    one stock view serves a whole payload. The conditional UPDATE is what
    guarantees availability.

    Locks every stock row of the view (not only this order's): when one view
    serves a whole payload, the payload's rows are all locked in the global
    order before its first order reserves, and the later orders find them
    held. The figures of rows locked now are refreshed in the view (when it
    can be changed), read under the lock, so the choice is made on exact stock.
    """
    short: list[str] = []
    ranked = sorted(stock.warehouses, key=lambda w: (w.code != prefer, w.priority, w.code))
    taken = taken if taken is not None else defaultdict(int)
    fresh = lock_stock(s, stock.available.keys())
    if fresh and isinstance(stock.available, MutableMapping):
        for key, q in fresh.items():
            # ``have`` below is the view less what was taken since it was read: make it the locked figure.
            stock.available[key] = q + taken.get(key, 0)
    for line_no, sku, qty in lines:
        left = qty
        for w in ranked:
            have = stock.qty(w.code, sku) - taken[(w.code, sku)]
            q = min(left, have)
            if q > 0 and reserve(s, order_id, document, line_no, w.code, sku, q, at):
                taken[(w.code, sku)] += q
                left -= q
            if left == 0:
                break
        if left:
            short.append(sku)
    return short


def reservations_of(s: Session, order_ids: Sequence[int]) -> dict[int, list[Reservation]]:
    drain(s, Reservation)  # reservations queued in this transaction count too
    out: dict[int, list[Reservation]] = defaultdict(list)
    for i in range(0, len(order_ids), 500):
        for r in s.scalars(select(Reservation).where(Reservation.order_id.in_(order_ids[i:i + 500]))
                           .order_by(Reservation.id)):
            out[r.order_id].append(r)
    return out


def lock_held(s: Session, orders: Sequence[Order]) -> None:
    """Lock the stock rows these orders hold, or may take goods back into, before any of them moves stock.

    For a stage or command about to cancel, ship or take back several orders in
    one transaction: their rows are locked at once in the global order. Nothing
    to do on SQLite.
    """
    if not orders or not row_locks_apply(s):
        return
    keys = {(r.warehouse, r.sku) for held in reservations_of(s, [o.id for o in orders]).values() for r in held}
    # A parcel coming back is received at the warehouse that shipped it.
    keys.update((o.warehouse, ln.sku) for o in orders if o.warehouse for ln in o.lines)
    lock_stock(s, keys)


def _consume(s: Session, order_id: int, document: str, at: datetime, kind: Movement) -> int:
    drain(s, Reservation)  # reservations queued in this transaction count too
    held = list(s.scalars(select(Reservation).where(Reservation.order_id == order_id)))
    lock_stock(s, {(r.warehouse, r.sku) for r in held})
    moved = 0
    for r in held:
        if not move(s, warehouse=r.warehouse, sku=r.sku, kind=kind, qty=r.quantity,
                    order_id=order_id, document=document, at=at):
            raise StockError(f"{kind.value} of {r.quantity} x {r.sku} at {r.warehouse} for reservation {r.id}: "
                             "the stock row does not back it")
        moved += r.quantity
    s.execute(delete(Reservation).where(Reservation.order_id == order_id))
    return moved


def release_order(s: Session, order_id: int, document: str, at: datetime) -> int:
    """Give every unit held for the order back to available stock."""
    return _consume(s, order_id, document, at, Movement.RELEASE)


def ship_order(s: Session, order_id: int, document: str, at: datetime) -> int:
    """Goods left the warehouse: on hand and reserved both drop by what was held."""
    return _consume(s, order_id, document, at, Movement.SHIP)


class _TargetShort(Exception):
    pass


def move_to_warehouse(s: Session, order_id: int, document: str, target: str,
                      lines: Mapping[int, tuple[str, int]], at: datetime) -> bool:
    """Make all of an order's reservations sit at ``target``.

    Reserve at the target first, then release elsewhere. If the target cannot
    take all of it, everything this call did is rolled back (its own savepoint)
    and it returns False, so the caller can simply try another warehouse.
    Locks the rows it may touch (at the target, and where the order holds
    stock now) before the savepoint, so a rollback keeps them locked.
    """
    drain(s, Reservation)  # reservations queued in this transaction count too
    current = list(s.scalars(select(Reservation).where(Reservation.order_id == order_id)))
    lock_stock(s, {(r.warehouse, r.sku) for r in current} | {(target, sku) for sku, _ in lines.values()})
    have_at_target = held_per_line(current, target)
    try:
        with savepoint(s):
            for line_no, (sku, qty) in lines.items():
                need = qty - have_at_target.get(line_no, 0)
                if need > 0 and not reserve(s, order_id, document, line_no, target, sku, need, at):
                    raise _TargetShort
    except _TargetShort:
        return False
    for r in current:
        if r.warehouse != target:
            move(s, warehouse=r.warehouse, sku=r.sku, kind=Movement.RELEASE, qty=r.quantity,
                 order_id=order_id, document=document, at=at)
            s.delete(r)
    return True

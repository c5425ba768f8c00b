"""Stock held for order lines at warehouses: reserve, hand over, release, ship.

Every move goes through the transaction's :class:`~oms_engine.stock.batch.StockBatch`:
decided on figures read under the lock (on PostgreSQL the rows are locked in
the global order the first time the batch reads them), written in bulk when
the session drains. A caller that moves stock for many orders in one
transaction loads all their rows first (:meth:`StockBatch.load`, or
:func:`lock_held`), so the rows are locked in one go, in order.

Reservation rows are read as plain tuples (:class:`Held`); reading them
drains the session first, so rows queued in this transaction count too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..orders.kits import requirements
from ..plugin.views import WarehouseView
from ..storage.db import drain, row_locks_apply
from ..storage.driver import fetch
from ..storage.models import Reservation
from . import lots
from .batch import stock_batch
from .movements import Movement


class Held(NamedTuple):
    """One reservation row."""

    id: int
    order_id: int
    line_no: int
    warehouse: str
    sku: str
    quantity: int
    lot: str | None = None      # the lot the units are taken from (stock/lots.py)


_R = Reservation.__table__.c
_HELD_BY_ORDER = (select(_R.id, _R.order_id, _R.line_no, _R.warehouse, _R.sku, _R.quantity, _R.lot)
                  .where(_R.order_id.in_(bindparam("ids", expanding=True))).order_by(_R.id))


def reserved_map(reservations: Iterable[Any]) -> dict[str, dict[int, int]]:
    """warehouse -> {line_no: quantity held there}: a line may be held in several warehouses."""
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for r in reservations:
        out[r.warehouse][r.line_no] = out[r.warehouse].get(r.line_no, 0) + r.quantity
    return dict(out)


def held_per_line(reservations: Iterable[Any], warehouse: str | None = None) -> dict[int, int]:
    """line_no -> quantity held (anywhere, or at ``warehouse``)."""
    held: dict[int, int] = defaultdict(int)
    for r in reservations:
        if warehouse is None or r.warehouse == warehouse:
            held[r.line_no] += r.quantity
    return dict(held)


def reserve_lines(s: Session, order_id: int, document: str, lines: Sequence[tuple[int, str, int]],
                  warehouses: Sequence[WarehouseView], at: datetime, prefer: str | None = None) -> list[str]:
    """Reserve each (line_no, sku, qty) greedily: preferred warehouse first, then priority.

    A line may be spread over warehouses. Returns the SKUs that could not be
    covered; what was reserved for them stays reserved (released on cancel).
    """
    batch = stock_batch(s)
    ranked = _ranked(warehouses, prefer)
    load_for_reserving(s, [(sku, qty) for _, sku, qty in lines], ranked, prefer)
    short: list[str] = []
    for line_no, sku, qty in lines:
        left = qty
        for w in ranked:
            q = min(left, batch.qty(w.code, sku))
            if q > 0 and batch.reserve(order_id, document, line_no, w.code, sku, q, at):
                left -= q
            if left == 0:
                break
        if left:
            short.append(sku)
    return short


def _ranked(warehouses: Sequence[WarehouseView], prefer: str | None = None) -> list[WarehouseView]:
    return sorted(warehouses, key=lambda w: (w.code != prefer, w.priority, w.code))


def load_for_reserving(s: Session, wanted: Iterable[tuple[str, int]], warehouses: Sequence[WarehouseView],
                       prefer: str | None = None) -> None:
    """Read the stock rows that reserving these (sku, quantity) by :func:`reserve_lines`'s ranking may take.

    With row locks (PostgreSQL) that is every ranked warehouse's row of every SKU, locked at once in
    the global order. Without (SQLite's one writer), the first-ranked warehouse's rows, and the other
    warehouses' rows only of the SKUs it cannot cover: the greedy reservation never looks further,
    and reading four rows of five that are never used was a tenth of intake.
    """
    batch = stock_batch(s)
    ranked = _ranked(warehouses, prefer)
    need: dict[str, int] = defaultdict(int)
    for sku, qty in wanted:
        need[sku] += qty
    if not ranked or not need:
        return
    if row_locks_apply(s):
        batch.load((w.code, sku) for sku in need for w in ranked)
        return
    first = ranked[0].code
    batch.load((first, sku) for sku in need)
    batch.load((w.code, sku) for sku, qty in need.items() if batch.qty(first, sku) < qty for w in ranked[1:])


def reservations_of(s: Session, order_ids: Sequence[int]) -> dict[int, list[Held]]:
    drain(s)  # what this transaction queued (reservations made or given back) counts too
    out: dict[int, list[Held]] = defaultdict(list)
    ids = sorted(set(order_ids))
    conn = s.connection()
    for i in range(0, len(ids), 500):
        for r in fetch(conn, _HELD_BY_ORDER, {"ids": ids[i:i + 500]}):
            out[r[1]].append(Held(*r))
    return out


def lock_held(s: Session, orders: Sequence[Any]) -> None:
    """Read (and on PostgreSQL lock, in the global order) the stock rows these orders hold, or may take
    goods back into, before any of them moves stock: for a stage about to cancel, ship or take back
    several orders in one transaction."""
    if not orders:
        return
    keys = {(r.warehouse, r.sku) for held in reservations_of(s, [o.id for o in orders]).values() for r in held}
    # A parcel coming back is received at the warehouse that shipped it (a kit as its components).
    keys.update((o.warehouse, sku) for o in orders if o.warehouse for _, sku, _ in requirements(o.lines))
    stock_batch(s).load(keys)


def _consume(s: Session, order_id: int, document: str, at: datetime, kind: Movement) -> int:
    held = reservations_of(s, [order_id]).get(order_id, [])
    stock_batch(s).give_back(held, document, at, kind)
    lots.give_back(s, held, shipped=kind is Movement.SALE_OUT)
    return sum(r.quantity for r in held)


def release_order(s: Session, order_id: int, document: str, at: datetime) -> int:
    """Give every unit held for the order back to available stock."""
    return _consume(s, order_id, document, at, Movement.RELEASE)


def ship_order(s: Session, order_id: int, document: str, at: datetime) -> int:
    """Goods left the warehouse: on hand and reserved both drop by what was held."""
    return _consume(s, order_id, document, at, Movement.SALE_OUT)


def held_per_unit(reservations: Iterable[Any], warehouse: str | None = None) -> dict[tuple[int, str], int]:
    """(line_no, sku) -> quantity held (anywhere, or at ``warehouse``): a kit line holds several SKUs."""
    held: dict[tuple[int, str], int] = defaultdict(int)
    for r in reservations:
        if warehouse is None or r.warehouse == warehouse:
            held[(r.line_no, r.sku)] += r.quantity
    return dict(held)


def move_to_warehouse(s: Session, order_id: int, document: str, target: str,
                      needs: Mapping[tuple[int, str], int], held: Sequence[Any], at: datetime) -> bool:
    """Make all of an order's reservations (``held``) sit at ``target``, or do nothing and answer False.

    ``needs``: (line_no, sku) -> units (orders/kits.py ``needs``). Reserves what is missing at the target,
    then releases what is held elsewhere.
    """
    batch = stock_batch(s)
    have = held_per_unit(held, target)
    need = {key: qty - have.get(key, 0) for key, qty in needs.items() if qty > have.get(key, 0)}
    per_sku: dict[str, int] = defaultdict(int)
    for (_, sku), q in need.items():
        per_sku[sku] += q
    batch.load([(target, sku) for sku in per_sku] + [(r.warehouse, r.sku) for r in held])
    if any(batch.qty(target, sku) < q for sku, q in per_sku.items()):
        return False
    for (line_no, sku), q in need.items():
        batch.reserve(order_id, document, line_no, target, sku, q, at)
    away = [r for r in held if r.warehouse != target]
    batch.give_back(away, document, at)
    lots.give_back(s, away, shipped=False)
    return True


def reserve(s: Session, order_id: int, document: str, line_no: int, warehouse: str, sku: str,
            qty: int, at: datetime) -> bool:
    """Hold ``qty`` of ``sku`` at ``warehouse`` for a line; False when it is not available."""
    return stock_batch(s).reserve(order_id, document, line_no, warehouse, sku, qty, at)

"""Stock per warehouse and SKU, moved only by conditional updates.

Every change is a single ``UPDATE ... WHERE on_hand - reserved >= :q`` whose
row count says whether it happened, plus an append-only movement row. No
read-then-write, so available stock cannot go below zero under any number of
concurrent processes, on SQLite or PostgreSQL (and CHECK constraints back it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from .db import append, drain, savepoint
from .domain import StockView, WarehouseView
from .models import Reservation, Stock, StockMovement, Warehouse


class StockError(Exception):
    pass


def warehouses(session: Session) -> list[Warehouse]:
    return list(session.scalars(select(Warehouse).order_by(Warehouse.priority, Warehouse.code)))


def warehouse_views(session: Session) -> tuple[WarehouseView, ...]:
    return tuple(
        WarehouseView(code=w.code, name=w.name, country=w.country, region=w.region, city=w.city,
                      priority=w.priority, lat=w.lat, lon=w.lon, capabilities=frozenset(w.capabilities or ()))
        for w in warehouses(session)
    )


def stock_view(session: Session, skus: Iterable[str], whs: tuple[WarehouseView, ...]) -> StockView:
    skus = sorted(set(skus))
    avail: dict[tuple[str, str], int] = {}
    for i in range(0, len(skus), 500):
        rows = session.execute(
            select(Stock.warehouse, Stock.sku, Stock.on_hand - Stock.reserved).where(Stock.sku.in_(skus[i:i + 500]))
        )
        for wh, sku, qty in rows:
            avail[(wh, sku)] = int(qty)
    return StockView(warehouses=whs, available=avail)


def _stock_update(kind: str) -> Any:
    """The conditional UPDATE for one kind of movement, built once: :q is the quantity."""
    stmt = update(Stock).where(Stock.warehouse == bindparam("w"), Stock.sku == bindparam("k"))
    if kind == "reserve":
        stmt = stmt.where(Stock.on_hand - Stock.reserved >= bindparam("q"))
        return stmt.values(reserved=Stock.reserved + bindparam("q"))
    if kind == "release":
        stmt = stmt.where(Stock.reserved >= bindparam("q"))
        return stmt.values(reserved=Stock.reserved - bindparam("q"))
    if kind == "ship":
        stmt = stmt.where(Stock.reserved >= bindparam("q"), Stock.on_hand >= bindparam("q"))
        return stmt.values(on_hand=Stock.on_hand - bindparam("q"), reserved=Stock.reserved - bindparam("q"))
    # receive, return: goods come in
    return stmt.values(on_hand=Stock.on_hand + bindparam("q"))


_UPDATES = {kind: _stock_update(kind) for kind in ("reserve", "release", "ship", "receive")}
_DELTAS = {"reserve": (0, 1), "release": (0, -1), "ship": (-1, -1), "receive": (1, 0)}


def _move(session: Session, *, warehouse: str, sku: str, kind: str, qty: int, order_id: int | None,
          document: str, at: datetime, ledger_kind: str | None = None) -> bool:
    result = session.execute(_UPDATES[kind], {"w": warehouse, "k": sku, "q": qty},
                             execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    d_on_hand, d_reserved = _DELTAS[kind]
    append(session, StockMovement, warehouse=warehouse, sku=sku, kind=ledger_kind or kind,
           on_hand_delta=d_on_hand * qty, reserved_delta=d_reserved * qty, order_id=order_id, document=document,
           at=at)
    return True


def reserve(session: Session, order_id: int, document: str, line_no: int, warehouse: str, sku: str,
            qty: int, at: datetime) -> bool:
    if qty <= 0:
        raise StockError(f"cannot reserve a quantity of {qty}")
    if not _move(session, warehouse=warehouse, sku=sku, kind="reserve", qty=qty,
                 order_id=order_id, document=document, at=at):
        return False
    append(session, Reservation, order_id=order_id, line_no=line_no, warehouse=warehouse, sku=sku, quantity=qty)
    return True


def reserve_lines(session: Session, order_id: int, document: str, lines: Sequence[tuple[int, str, int]],
                  stock: StockView, at: datetime, prefer: str | None = None,
                  taken: dict[tuple[str, str], int] | None = None) -> list[str]:
    """Reserve each (line_no, sku, qty) greedily: preferred warehouse first, then priority.

    A line may be spread over warehouses. Returns the SKUs that could not be
    covered; what was reserved for them stays reserved (released on cancel).
    ``taken`` carries what earlier orders reserved since ``stock`` was read, so
    one stock view serves a whole payload. The view is only a guide: the
    conditional UPDATE is what guarantees availability.
    """
    short: list[str] = []
    order = sorted(stock.warehouses, key=lambda w: (w.code != prefer, w.priority, w.code))
    taken = taken if taken is not None else defaultdict(int)
    for line_no, sku, qty in lines:
        left = qty
        for w in order:
            have = stock.qty(w.code, sku) - taken[(w.code, sku)]
            q = min(left, have)
            if q > 0 and reserve(session, order_id, document, line_no, w.code, sku, q, at):
                taken[(w.code, sku)] += q
                left -= q
            if left == 0:
                break
        if left:
            short.append(sku)
    return short


def reservations_of(session: Session, order_ids: Sequence[int]) -> dict[int, list[Reservation]]:
    drain(session, Reservation)  # reservations queued in this transaction count too
    out: dict[int, list[Reservation]] = defaultdict(list)
    for i in range(0, len(order_ids), 500):
        for r in session.scalars(select(Reservation).where(Reservation.order_id.in_(order_ids[i:i + 500]))
                                 .order_by(Reservation.id)):
            out[r.order_id].append(r)
    return out


def release_order(session: Session, order_id: int, document: str, at: datetime) -> int:
    drain(session, Reservation)  # reservations queued in this transaction count too
    released = 0
    for r in session.scalars(select(Reservation).where(Reservation.order_id == order_id)):
        if not _move(session, warehouse=r.warehouse, sku=r.sku, kind="release", qty=r.quantity,
                     order_id=order_id, document=document, at=at):
            raise StockError(f"reservation {r.id} of {r.sku} at {r.warehouse} is not backed by stock")
        released += r.quantity
    session.execute(delete(Reservation).where(Reservation.order_id == order_id))
    return released


def ship_order(session: Session, order_id: int, document: str, at: datetime) -> int:
    """Goods left the warehouse: on hand and reserved both drop."""
    drain(session, Reservation)  # reservations queued in this transaction count too
    shipped = 0
    for r in session.scalars(select(Reservation).where(Reservation.order_id == order_id)):
        if not _move(session, warehouse=r.warehouse, sku=r.sku, kind="ship", qty=r.quantity,
                     order_id=order_id, document=document, at=at):
            raise StockError(f"shipping {r.quantity} x {r.sku} from {r.warehouse}: stock rows disagree")
        shipped += r.quantity
    session.execute(delete(Reservation).where(Reservation.order_id == order_id))
    return shipped


def receive(session: Session, warehouse: str, sku: str, qty: int, kind: str, document: str,
            at: datetime, order_id: int | None = None) -> None:
    if qty <= 0:
        raise StockError(f"cannot receive a quantity of {qty}")
    if not _move(session, warehouse=warehouse, sku=sku, kind="receive", qty=qty, order_id=order_id,
                 document=document, at=at, ledger_kind=kind):
        raise StockError(f"no stock row for {sku} at {warehouse}")


class _TargetShort(Exception):
    pass


def move_to_warehouse(session: Session, order_id: int, document: str, target: str,
                      lines: Mapping[int, tuple[str, int]], at: datetime) -> bool:
    """Make all of an order's reservations sit at ``target``.

    Reserve at the target first, then release elsewhere. If the target cannot
    take all of it, everything this call did is rolled back (its own savepoint)
    and it returns False, so the caller can simply try another warehouse.
    """
    drain(session, Reservation)  # reservations queued in this transaction count too
    current = list(session.scalars(select(Reservation).where(Reservation.order_id == order_id)))
    have_at_target: dict[int, int] = defaultdict(int)
    for r in current:
        if r.warehouse == target:
            have_at_target[r.line_no] += r.quantity
    try:
        with savepoint(session):
            for line_no, (sku, qty) in lines.items():
                need = qty - have_at_target[line_no]
                if need > 0 and not reserve(session, order_id, document, line_no, target, sku, need, at):
                    raise _TargetShort
    except _TargetShort:
        return False
    for r in current:
        if r.warehouse != target:
            _move(session, warehouse=r.warehouse, sku=r.sku, kind="release", qty=r.quantity,
                  order_id=order_id, document=document, at=at)
            session.delete(r)
    return True

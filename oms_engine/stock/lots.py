"""Lots: lot-tracked products (``products.lot_tracked``) are kept per lot with its expiry.

The stock row of (warehouse, sku) stays the balance every other part of the
OMS reads: its on hand is the sum of its lots' (``stock_lots``). Each goods
movement of a lot-tracked product names its lot (``stock_movements.lot``):

* goods in (opening, purchase receipt, customer return, adjustment up,
  transfer in) add to the lot, created with its expiry the first time;
* an order routed to a warehouse takes lots for its reservation, earliest
  expiry first, of those that still have the channel's minimum remaining
  shelf life on the day (config ``min_shelf_life_days``); its reservation
  rows then name their lots (:func:`allocate`); a warehouse without enough
  such lots cannot take the order, and routing tries the next;
* its reservation released gives the lots' units back; shipped, they leave
  the lots;
* a parcel coming back returns into the lots it left (:func:`shipped_lots`).

The lot goes to the warehouse on the document's lines and comes back on its
receipts. Lot rows are written at once (no batching): few products are
lot-tracked, and their rows are small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..storage.db import drain
from ..storage.models import Product, Reservation, StockLot, StockMovement
from .batch import StockError

_TRACKED = "oms_lot_tracked"   # session.info: sku -> lot-tracked, read once per transaction


def tracked(s: Session, skus: Iterable[str]) -> set[str]:
    """Which of these SKUs are kept in lots."""
    known: dict[str, bool] = s.info.setdefault(_TRACKED, {})
    todo = sorted({k for k in skus if k not in known})
    for i in range(0, len(todo), 500):
        found = dict(s.execute(select(Product.sku, Product.lot_tracked).where(Product.sku.in_(todo[i:i + 500])))
                     .all())
        for sku in todo[i:i + 500]:
            known[sku] = bool(found.get(sku, False))
    return {k for k in skus if known.get(k)}


def move(s: Session, warehouse: str, sku: str, lot: str, qty: int, *, expires_on: date | None = None) -> None:
    """``qty`` units (negative: out) of a lot on hand; goods in create the lot. StockError when a lot has
    fewer free units than go out."""
    row = s.get(StockLot, (warehouse, sku, lot), with_for_update=s.get_bind().dialect.name == "postgresql")
    if row is None:
        if qty < 0:
            raise StockError(f"{sku} at {warehouse} has no lot '{lot}'")
        s.add(StockLot(warehouse=warehouse, sku=sku, lot=lot, expires_on=expires_on, on_hand=qty, reserved=0))
        s.flush()
        return
    if expires_on is not None and row.expires_on is not None and row.expires_on != expires_on:
        raise StockError(f"lot '{lot}' of {sku} expires on {row.expires_on}, not {expires_on}")
    if row.on_hand - row.reserved + qty < 0:
        raise StockError(f"lot '{lot}' of {sku} at {warehouse}: only {row.on_hand - row.reserved} free")
    row.on_hand += qty
    if row.expires_on is None and expires_on is not None:
        row.expires_on = expires_on
    s.flush()


def earliest_expiry(now: datetime, min_days: int) -> date:
    """The first expiry a lot may have to be sold today with ``min_days`` of shelf life left."""
    return (now + timedelta(days=min_days)).date()


def _free_lots(s: Session, warehouse: str, sku: str, not_before: date) -> list[StockLot]:
    stmt = (select(StockLot).where(StockLot.warehouse == warehouse, StockLot.sku == sku,
                                   StockLot.on_hand > StockLot.reserved,
                                   (StockLot.expires_on.is_(None)) | (StockLot.expires_on >= not_before))
            # Earliest expiry first; a lot without an expiry last; then by name, so the choice is stable.
            .order_by(StockLot.expires_on.is_(None), StockLot.expires_on, StockLot.lot))
    if s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return list(s.scalars(stmt))


def allocate(s: Session, order_id: int, warehouse: str, not_before: date) -> str | None:
    """Give the order's reservation rows of lot-tracked SKUs at ``warehouse`` their lots, earliest expiry
    first among those expiring on or after ``not_before``; a row is divided when it takes several lots.
    Returns why it cannot (nothing is changed then: the caller rolls back to before the move), or None."""
    drain(s, Reservation)
    rows = list(s.scalars(select(Reservation).where(Reservation.order_id == order_id,
                                                    Reservation.warehouse == warehouse,
                                                    Reservation.lot.is_(None))
                          .order_by(Reservation.id)))
    lotted = tracked(s, {r.sku for r in rows})
    for r in [r for r in rows if r.sku in lotted]:
        left = r.quantity
        taken: list[tuple[StockLot, int]] = []
        for lot in _free_lots(s, warehouse, r.sku, not_before):
            q = min(left, lot.on_hand - lot.reserved)
            taken.append((lot, q))
            left -= q
            if not left:
                break
        if left:
            return (f"{warehouse} has not {r.quantity} of {r.sku} in lots expiring on or after "
                    f"{not_before.isoformat()}")
        for i, (lot, q) in enumerate(taken):
            lot.reserved += q
            if i == 0:
                r.lot, r.quantity = lot.lot, q
            else:
                s.add(Reservation(order_id=r.order_id, line_no=r.line_no, warehouse=r.warehouse, sku=r.sku,
                                  quantity=q, lot=lot.lot))
    s.flush()
    return None


def give_back(s: Session, held: Sequence[Any], *, shipped: bool) -> None:
    """Reservation rows released (or shipped): their lots' reserved (and on hand) go down."""
    for r in held:
        lot = getattr(r, "lot", None)
        if not lot:
            continue
        values: dict[str, Any] = {"reserved": StockLot.reserved - r.quantity}
        if shipped:
            values["on_hand"] = StockLot.on_hand - r.quantity
        s.execute(update(StockLot).where(StockLot.warehouse == r.warehouse, StockLot.sku == r.sku,
                                         StockLot.lot == lot).values(**values),
                  execution_options={"synchronize_session": False})


def shipped_lots(s: Session, order_id: int, warehouse: str, sku: str) -> list[tuple[str, int]]:
    """The lots (and units) of ``sku`` the order's parcel left ``warehouse`` with, as the ledger has them."""
    drain(s, StockMovement)
    rows = s.execute(select(StockMovement.lot, func.sum(-StockMovement.on_hand_delta))
                     .where(StockMovement.order_id == order_id, StockMovement.warehouse == warehouse,
                            StockMovement.sku == sku, StockMovement.kind == "sale_out",
                            StockMovement.lot.is_not(None))
                     .group_by(StockMovement.lot)).all()
    expiry = {lot.lot: lot.expires_on for lot in s.scalars(select(StockLot).where(
        StockLot.warehouse == warehouse, StockLot.sku == sku, StockLot.lot.in_([r[0] for r in rows])))}
    # Earliest expiry first, as they were taken.
    ordered = sorted(rows, key=lambda r: (expiry.get(r[0]) is None, expiry.get(r[0]) or date.max, r[0]))
    return [(lot, int(q)) for lot, q in ordered if q]


def split_return(s: Session, order_id: int, warehouse: str, sku: str, qty: int) -> list[tuple[str, int]]:
    """``qty`` units of ``sku`` coming back from an order, shared over the lots it left with: the
    latest-expiring first (they keep the longest shelf life)."""
    out: list[tuple[str, int]] = []
    left = qty
    for lot, q in reversed(shipped_lots(s, order_id, warehouse, sku)):
        take = min(left, q)
        out.append((lot, take))
        left -= take
        if not left:
            break
    if left:
        raise StockError(f"{qty} {sku} back from the order, but it shipped only {qty - left} in lots")
    return out


def held_lots(s: Session, order_ids: Sequence[int]) -> dict[tuple[int, int, str], list[dict[str, Any]]]:
    """(order id, line_no, sku) -> the lots its reservation takes: [{lot, expires_on, quantity}]."""
    drain(s, Reservation)
    out: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    rows = s.execute(select(Reservation.order_id, Reservation.line_no, Reservation.sku, Reservation.lot,
                            Reservation.quantity, StockLot.expires_on)
                     .join(StockLot, (StockLot.warehouse == Reservation.warehouse) & (StockLot.sku == Reservation.sku)
                           & (StockLot.lot == Reservation.lot))
                     .where(Reservation.order_id.in_(sorted(set(order_ids))), Reservation.lot.is_not(None))
                     .order_by(Reservation.order_id, Reservation.line_no, StockLot.expires_on, Reservation.lot))
    for oid, line_no, sku, lot, qty, expires in rows:
        out.setdefault((oid, line_no, sku), []).append(
            {"lot": lot, "expires_on": expires.isoformat() if expires else None, "quantity": qty})
    return out


def back_into(s: Session, order_id: int, warehouse: str, sku: str, qty: int) -> list[tuple[str | None, int]]:
    """(lot, units) ``qty`` of ``sku`` coming back from an order go into: the lots it shipped from, for a
    lot-tracked product; else one lot-less row."""
    if not tracked(s, [sku]):
        return [(None, qty)]
    return [(lot, q) for lot, q in split_return(s, order_id, warehouse, sku, qty)]


def lots_of(s: Session, warehouse: str | None = None, sku: str | None = None) -> list[StockLot]:
    stmt = select(StockLot).order_by(StockLot.warehouse, StockLot.sku, StockLot.expires_on.is_(None),
                                     StockLot.expires_on, StockLot.lot)
    if warehouse:
        stmt = stmt.where(StockLot.warehouse == warehouse)
    if sku:
        stmt = stmt.where(StockLot.sku == sku)
    return list(s.scalars(stmt))


def min_shelf_days(table: Mapping[str, int], channel: str) -> int:
    """The channel's minimum remaining shelf life (days), or the default one (``default``, else 0)."""
    return int(table.get(channel, table.get("default", 0)))

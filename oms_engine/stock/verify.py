"""``oms stock verify``: every balance recomputed from the ledger, and compared with what is stored.

For each warehouse and SKU: on hand, reserved and value are the sums of the
ledger's deltas (opening balances included), reserved is also the sum of the
reservation rows held there, available is on hand - reserved, and the damaged
units kept apart (damaged_stock) are the sum of its damaged deltas. Any stored
figure that differs is reported with both numbers; a stock row the ledger
does not know of, or a ledger the stock table has no row for, likewise. The
ledger is read once, by its own key, a warehouse at a time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..storage.models import DamagedStock, Product, Reservation, Stock, StockLot, StockMovement


@dataclass(frozen=True)
class Difference:
    warehouse: str
    sku: str
    figure: str         # on_hand, reserved, value, reservations, damaged
    stored: int
    recomputed: int

    def __str__(self) -> str:
        what = {"reservations": "reserved, by the reservation rows"}.get(self.figure, self.figure)
        table = "damaged_stock" if self.figure == "damaged" else "stock"
        return (f"{self.warehouse}/{self.sku}: {what} is {self.stored} in the {table} table, "
                f"{self.recomputed} recomputed")

    def to_dict(self) -> dict[str, Any]:
        return {"warehouse": self.warehouse, "sku": self.sku, "figure": self.figure, "stored": self.stored,
                "recomputed": self.recomputed}


@dataclass(frozen=True)
class Verification:
    rows: int                 # stock rows checked
    movements: int            # ledger rows read
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences


def verify(s: Session) -> Verification:
    ledger: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    movements = 0
    for w, sku, h, r, v, d, n in s.execute(
            select(StockMovement.warehouse, StockMovement.sku, func.sum(StockMovement.on_hand_delta),
                   func.sum(StockMovement.reserved_delta), func.sum(StockMovement.value_delta),
                   func.sum(StockMovement.damaged_delta), func.count())
            .group_by(StockMovement.warehouse, StockMovement.sku)):
        ledger[(w, sku)] = [int(h or 0), int(r or 0), int(v or 0), int(d or 0)]
        movements += int(n)
    held: dict[tuple[str, str], int] = defaultdict(int)
    for w, sku, q in s.execute(select(Reservation.warehouse, Reservation.sku, func.sum(Reservation.quantity))
                               .group_by(Reservation.warehouse, Reservation.sku)):
        held[(w, sku)] = int(q or 0)
    stored: dict[tuple[str, str], tuple[int, int, int]] = {
        (w, sku): (h, r, v) for w, sku, h, r, v in s.execute(
            select(Stock.warehouse, Stock.sku, Stock.on_hand, Stock.reserved, Stock.value))}
    damaged: dict[tuple[str, str], int] = {(w, sku): q for w, sku, q in s.execute(
        select(DamagedStock.warehouse, DamagedStock.sku, DamagedStock.quantity))}
    diffs: list[Difference] = []
    for key in sorted(set(stored) | set(ledger) | set(held) | set(damaged)):
        h, r, v = stored.get(key, (0, 0, 0))
        lh, lr, lv, ld = ledger.get(key, [0, 0, 0, 0])
        for figure, a, b in (("on_hand", h, lh), ("reserved", r, lr), ("value", v, lv),
                             ("reservations", r, held.get(key, 0)), ("damaged", damaged.get(key, 0), ld)):
            if a != b:
                diffs.append(Difference(key[0], key[1], figure, a, b))
    diffs += _lots(s, stored)
    return Verification(len(stored), movements, diffs)


def _lots(s: Session, stored: dict[tuple[str, str], tuple[int, int, int]]) -> list[Difference]:
    """A lot-tracked product's lots add up to its stock row, each lot to its own ledger rows, and the units
    reservations take from a lot are the lot's reserved."""
    lotted = set(s.scalars(select(Product.sku).where(Product.lot_tracked.is_(True))))
    if not lotted:
        return []
    lots = {(w, sku, lot): (h, r) for w, sku, lot, h, r in s.execute(
        select(StockLot.warehouse, StockLot.sku, StockLot.lot, StockLot.on_hand, StockLot.reserved))}
    ledger = {(w, sku, lot): int(h or 0) for w, sku, lot, h in s.execute(
        select(StockMovement.warehouse, StockMovement.sku, StockMovement.lot, func.sum(StockMovement.on_hand_delta))
        .where(StockMovement.sku.in_(sorted(lotted)), StockMovement.lot.is_not(None))
        .group_by(StockMovement.warehouse, StockMovement.sku, StockMovement.lot))}
    taken = {(w, sku, lot): int(q or 0) for w, sku, lot, q in s.execute(
        select(Reservation.warehouse, Reservation.sku, Reservation.lot, func.sum(Reservation.quantity))
        .where(Reservation.lot.is_not(None)).group_by(Reservation.warehouse, Reservation.sku, Reservation.lot))}
    diffs: list[Difference] = []
    per_row: dict[tuple[str, str], int] = defaultdict(int)
    for (w, sku, lot), (h, r) in lots.items():
        per_row[(w, sku)] += h
        for figure, a, b in ((f"lot {lot} on_hand", h, ledger.get((w, sku, lot), 0)),
                             (f"lot {lot} reserved", r, taken.get((w, sku, lot), 0))):
            if a != b:
                diffs.append(Difference(w, sku, figure, a, b))
    for key, (h, _, _) in stored.items():
        if key[1] in lotted and per_row.get(key, 0) != h:
            diffs.append(Difference(key[0], key[1], "on_hand of its lots", h, per_row.get(key, 0)))
    return diffs

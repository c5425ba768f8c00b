"""What a person (or the API) does to stock: receive, adjust, transfer, count, look, verify, and clear damaged
stock (scrap or regrade it, damaged.py).

Each change is one transaction, retried when it loses a race, posted
through the ledger's verbs (ledger.py) with who did it and why; a refused
change (an unknown warehouse or SKU, a count below what is reserved, a
movement that would take available below zero) raises :class:`StockError`
with the reason and writes nothing. Goods coming in mark what held orders
wait for, in the same transaction (batch.py's ``on_freed``; orders/waits.py),
so a receipt releases the backorders it covers without anyone acting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..money import MoneyError, to_minor
from ..storage.db import Database
from ..storage.models import Product, Stock, StockMovement, Warehouse
from . import damaged as damaged_stock
from .batch import StockError, stock_batch
from .ledger import count, post, transfer
from .movements import Movement
from .verify import Verification, verify

# What a person may post directly; reservations, releases and sales are the orders' own.
MANUAL = (Movement.PURCHASE_RECEIPT, Movement.CUSTOMER_RETURN, Movement.RETURN_TO_VENDOR, Movement.ADJUSTMENT)


@dataclass(frozen=True)
class Posted:
    kind: str
    warehouse: str
    sku: str
    quantity: int
    value: int
    on_hand: int
    available: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DamagedPosted(Posted):
    damaged: int        # the damaged units left at the warehouse after the movement


class StockService:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def _check(self, s: Session, warehouse: str, sku: str) -> Product:
        if s.get(Warehouse, warehouse) is None:
            raise StockError(f"no warehouse '{warehouse}'")
        product = s.get(Product, sku)
        if product is None:
            raise StockError(f"no product '{sku}' in the catalogue")
        return product

    @staticmethod
    def _figures(s: Session, warehouse: str, sku: str) -> tuple[int, int]:
        """On hand and available after the movement, as the transaction's stock batch has them."""
        batch = stock_batch(s)
        return batch.on_hand(warehouse, sku), batch.qty(warehouse, sku)

    def post(self, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, actor: str,
             note: str = "", unit_cost: str | None = None, lot: str | None = None,
             expires_on: date | None = None) -> Posted:
        """``lot`` (and, for goods coming into a new lot, ``expires_on``): a lot-tracked product's lot."""
        if kind not in MANUAL:
            raise StockError(f"'{kind.value}' movements are posted by orders, not by hand "
                             f"(by hand: {', '.join(m.value for m in MANUAL)})")
        if kind is Movement.ADJUSTMENT and not note.strip():
            raise StockError("an adjustment needs a reason")

        def run() -> Posted:
            with self.db.session() as s:
                product = self._check(s, warehouse, sku)
                cost = None
                if unit_cost is not None:
                    try:
                        cost = to_minor(unit_cost, product.currency)
                    except MoneyError as exc:
                        raise StockError(f"unit cost: {exc}") from None
                value = post(s, kind, warehouse, sku, qty, document=document[:64], at=self.clock.now(),
                             unit_cost=cost, actor=actor, note=note, lot=lot, expires_on=expires_on)
                on_hand, available = self._figures(s, warehouse, sku)
                return Posted(kind.value, warehouse, sku, qty, value, on_hand, available)

        return self.db.run_retrying(run, what=f"{kind.value} of {sku} at {warehouse}")

    def transfer(self, sku: str, qty: int, source: str, target: str, *, document: str, actor: str,
                 note: str = "", lot: str | None = None) -> Posted:
        def run() -> Posted:
            with self.db.session() as s:
                self._check(s, source, sku)
                self._check(s, target, sku)
                value = transfer(s, sku, qty, source, target, document=document[:64], at=self.clock.now(),
                                 actor=actor, note=note, lot=lot)
                on_hand, available = self._figures(s, target, sku)
                return Posted(Movement.TRANSFER.value, target, sku, qty, value, on_hand, available)

        return self.db.run_retrying(run, what=f"transfer of {sku} from {source} to {target}")

    def count(self, warehouse: str, sku: str, counted: int, *, document: str, actor: str, note: str = "",
              lot: str | None = None, expires_on: date | None = None) -> Posted:
        def run() -> Posted:
            with self.db.session() as s:
                self._check(s, warehouse, sku)
                diff = count(s, warehouse, sku, counted, document=document[:64], at=self.clock.now(), actor=actor,
                             note=note, lot=lot, expires_on=expires_on)
                on_hand, available = self._figures(s, warehouse, sku)
                return Posted(Movement.STOCKTAKE.value, warehouse, sku, diff, 0, on_hand, available)

        return self.db.run_retrying(run, what=f"count of {sku} at {warehouse}")

    def clear_damaged(self, kind: Movement, warehouse: str, sku: str, qty: int, *, document: str, actor: str,
                      note: str, lot: str | None = None, expires_on: date | None = None) -> DamagedPosted:
        """``scrap`` or ``regrade`` ``qty`` damaged units, saying why; StockError when fewer are damaged."""
        if kind not in (Movement.SCRAP, Movement.REGRADE):
            raise StockError(f"damaged stock is cleared by a scrap or a regrade, not a {kind.value}")
        if not note.strip():
            raise StockError(f"a {kind.value} needs a note: why the goods are written off or sellable again")

        def run() -> DamagedPosted:
            with self.db.session() as s:
                self._check(s, warehouse, sku)
                value = damaged_stock.post(s, kind, warehouse, sku, qty, document=document[:64],
                                           at=self.clock.now(), actor=actor, note=note, lot=lot,
                                           expires_on=expires_on)
                on_hand, available = self._figures(s, warehouse, sku)
                return DamagedPosted(kind.value, warehouse, sku, qty, value, on_hand, available,
                                     damaged_stock.quantity(s, warehouse, sku))

        return self.db.run_retrying(run, what=f"{kind.value} of {sku} at {warehouse}")

    # -- reading ------------------------------------------------------------------------------
    def balances(self, *, warehouse: str | None = None, sku: str | None = None, limit: int = 100,
                 after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """On hand, reserved, available and value per (sku, warehouse), in that order; ``after``: the last
        (sku, warehouse) of the page before."""
        stmt = select(Stock).order_by(Stock.sku, Stock.warehouse).limit(limit)
        if warehouse:
            stmt = stmt.where(Stock.warehouse == warehouse)
        if sku:
            stmt = stmt.where(Stock.sku == sku)
        if after:
            stmt = stmt.where((Stock.sku > after[0]) | ((Stock.sku == after[0]) & (Stock.warehouse > after[1])))
        with self.db.read() as s:
            return [{"warehouse": r.warehouse, "sku": r.sku, "on_hand": r.on_hand, "reserved": r.reserved,
                     "available": r.on_hand - r.reserved, "value": r.value} for r in s.scalars(stmt)]

    def ledger(self, *, warehouse: str | None = None, sku: str | None = None, kind: str | None = None,
               since: datetime | None = None, until: datetime | None = None, limit: int = 100,
               before_id: int | None = None) -> list[dict[str, Any]]:
        """Ledger rows, newest first."""
        m = StockMovement
        stmt = select(m).order_by(m.id.desc()).limit(limit)
        for col, val in ((m.warehouse, warehouse), (m.sku, sku), (m.kind, kind)):
            if val:
                stmt = stmt.where(col == val)
        if since:
            stmt = stmt.where(m.at >= since)
        if until:
            stmt = stmt.where(m.at < until)
        if before_id:
            stmt = stmt.where(m.id < before_id)
        with self.db.read() as s:
            return [movement_dict(r) for r in s.scalars(stmt)]

    def damaged(self, *, warehouse: str | None = None, sku: str | None = None, limit: int = 1000,
                after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """The damaged units kept apart, per (sku, warehouse); ``after``: the last of the page before."""
        with self.db.read() as s:
            return damaged_stock.balances(s, warehouse=warehouse, sku=sku, limit=limit, after=after)

    def verify(self) -> Verification:
        with self.db.read() as s:
            return verify(s)


def movement_dict(r: StockMovement) -> dict[str, Any]:
    return {"id": r.id, "at": r.at.isoformat(), "kind": r.kind, "warehouse": r.warehouse, "sku": r.sku,
            "on_hand_delta": r.on_hand_delta, "reserved_delta": r.reserved_delta,
            "damaged_delta": r.damaged_delta, "value_delta": r.value_delta,
            "unit_cost": r.unit_cost, "order_id": r.order_id, "document": r.document, "actor": r.actor,
            "note": r.note}

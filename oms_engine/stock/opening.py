"""Opening balances: ``oms stock import FILE`` posts each row as an ``opening`` movement of the ledger.

A row names a warehouse, a SKU, the quantity on hand and, optionally, what a
unit cost (a decimal amount in the product's currency), so the stock starts
valued. An opening balance is posted once per warehouse and SKU: a row whose
balance is already posted with the same quantity changes nothing (importing a
file again is harmless), one with another quantity is refused (the figure is
changed with an adjustment or a stocktake, which say why), and so is one for a
stock row that already moved. Rows are checked first, all of them; a file
with a bad row posts nothing unless ``skip_bad``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..masterdata.files import Row, read_rows
from ..masterdata.schemas import OpeningIn
from ..masterdata.service import ImportRefused, Report, RowError, checked_rows
from ..money import MoneyError, to_minor
from ..storage.db import Database
from ..storage.models import Product, Stock, StockMovement, Warehouse
from . import lots
from .batch import stock_batch
from .movements import Movement

_CHUNK = 500


def _by_warehouse(keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for w, k in sorted(set(keys)):
        out[w].append(k)
    return out


def _openings(s: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str, str | None], int]:
    """Opening quantity posted so far per (warehouse, sku, lot), of these keys (ix_movements_opening)."""
    out: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for w, skus in _by_warehouse(keys).items():
        for i in range(0, len(skus), _CHUNK):
            for sku, lot, q in s.execute(select(StockMovement.sku, StockMovement.lot, StockMovement.on_hand_delta)
                                         .where(StockMovement.kind == Movement.OPENING.value,
                                                StockMovement.warehouse == w,
                                                StockMovement.sku.in_(skus[i:i + _CHUNK]))):
                out[(w, sku, lot)] += q
    return out


def _stock_rows(s: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for w, skus in _by_warehouse(keys).items():
        for i in range(0, len(skus), _CHUNK):
            for sku, h, r in s.execute(select(Stock.sku, Stock.on_hand, Stock.reserved).where(
                    Stock.warehouse == w, Stock.sku.in_(skus[i:i + _CHUNK]))):
                out[(w, sku)] = (h, r)
    return out


def post_openings(s: Session, rows: Sequence[Row], *, actor: str, source: str, at: Any,
                  skip_bad: bool = False) -> Report:
    report = Report("opening balance", source)
    parsed: list[tuple[Row, OpeningIn]] = checked_rows(rows, OpeningIn, ("warehouse", "sku", "lot"), report)
    warehouses = set(s.scalars(select(Warehouse.code).where(Warehouse.code.in_({r.warehouse for _, r in parsed}))))
    currency: dict[str, str] = {}
    skus = sorted({r.sku for _, r in parsed})
    for i in range(0, len(skus), _CHUNK):
        for sku, cur in s.execute(select(Product.sku, Product.currency).where(Product.sku.in_(skus[i:i + _CHUNK]))):
            currency[sku] = cur
    keys = [(r.warehouse, r.sku) for _, r in parsed]
    posted = _openings(s, keys)
    stock = _stock_rows(s, keys)
    todo: list[tuple[Row, OpeningIn, int | None]] = []
    lotted = lots.tracked(s, currency)
    for row, rec in parsed:
        key = (rec.warehouse, rec.sku)
        problem: tuple[str, str] | None = None
        cost: int | None = None
        if rec.warehouse not in warehouses:
            problem = ("warehouse", f"no warehouse '{rec.warehouse}' (import warehouses first)")
        elif rec.sku not in currency:
            problem = ("sku", f"no product '{rec.sku}' in the catalogue (import products first)")
        elif (rec.sku in lotted) != bool(rec.lot):
            problem = ("lot", f"{rec.sku} is kept in lots: give each row its lot and expiry" if rec.sku in lotted
                       else f"{rec.sku} is not kept in lots: leave the lot empty")
        elif (*key, rec.lot) in posted:
            if posted[(*key, rec.lot)] == rec.quantity:
                report.unchanged += 1
                continue
            problem = ("quantity", f"{rec.warehouse}/{rec.sku} already has an opening balance of "
                       f"{posted[(*key, rec.lot)]}; change it with an adjustment or a stocktake")
        elif stock.get(key, (0, 0)) != (0, 0):
            h, r = stock[key]
            problem = ("quantity", f"{rec.warehouse}/{rec.sku} already holds {h} on hand ({r} reserved) from earlier "
                       "movements; change it with an adjustment or a stocktake")
        elif rec.unit_cost is not None:
            try:
                cost = to_minor(rec.unit_cost, currency[rec.sku])
            except MoneyError as exc:
                problem = ("unit_cost", str(exc))
        if problem is not None:
            report.errors.append(RowError(row.where, *problem))
            continue
        todo.append((row, rec, cost))
    if report.errors and not skip_bad:
        report.applied = False
        return report
    batch = stock_batch(s)
    batch.load((r.warehouse, r.sku) for _, r, _ in todo)
    batch.load_figures((r.warehouse, r.sku) for _, r, _ in todo)
    for row, rec, cost in todo:
        if rec.lot:
            lots.move(s, rec.warehouse, rec.sku, rec.lot, rec.quantity, expires_on=rec.expires_on)
        # Posted around the ledger's verbs, which would tell the event sink: the batch tells it instead.
        batch.post(Movement.OPENING, rec.warehouse, rec.sku, rec.quantity, document=f"opening:{row.where}"[:64],
                   at=at, unit_cost=cost, actor=actor, lot=rec.lot, tell=True)
        report.created.append(f"{rec.warehouse}/{rec.sku}" + (f"/{rec.lot}" if rec.lot else ""))
    return report


class Openings:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def import_rows(self, rows: Sequence[Row], *, actor: str, source: str, skip_bad: bool = False) -> Report:
        def run() -> Report:
            with self.db.session() as s:
                return post_openings(s, rows, actor=actor, source=source, at=self.clock.now(), skip_bad=skip_bad)

        report = self.db.run_retrying(run, what=f"opening balances from {source}")
        if not report.applied:
            raise ImportRefused(report)
        return report

    def import_file(self, path: Any, *, actor: str, skip_bad: bool = False) -> Report:
        return self.import_rows(read_rows(path), actor=actor, source=str(path), skip_bad=skip_bad)

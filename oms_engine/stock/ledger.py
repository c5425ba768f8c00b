"""Stock per warehouse and SKU, moved only by conditional updates, each with a ledger row.

Every change is a single ``UPDATE ... WHERE on_hand - reserved >= :q`` whose
row count says whether it happened, plus an append-only movement row with
its source document. No read-then-write, so available stock cannot go below
zero under any number of concurrent processes, on SQLite or PostgreSQL (and
CHECK constraints back it).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from ..errors import OmsError
from ..storage.db import append
from ..storage.models import Stock, StockMovement


class StockError(OmsError):
    pass


class Movement(StrEnum):
    RESERVE = "reserve"
    RELEASE = "release"
    SHIP = "ship"
    RECEIVE = "receive"     # goods in: purchase, return, adjustment
    RETURN = "return"


def _stock_update(kind: Movement) -> Any:
    """The conditional UPDATE for one kind of movement, built once: :q is the quantity."""
    stmt = update(Stock).where(Stock.warehouse == bindparam("w"), Stock.sku == bindparam("k"))
    if kind is Movement.RESERVE:
        stmt = stmt.where(Stock.on_hand - Stock.reserved >= bindparam("q"))
        return stmt.values(reserved=Stock.reserved + bindparam("q"))
    if kind is Movement.RELEASE:
        stmt = stmt.where(Stock.reserved >= bindparam("q"))
        return stmt.values(reserved=Stock.reserved - bindparam("q"))
    if kind is Movement.SHIP:
        stmt = stmt.where(Stock.reserved >= bindparam("q"), Stock.on_hand >= bindparam("q"))
        return stmt.values(on_hand=Stock.on_hand - bindparam("q"), reserved=Stock.reserved - bindparam("q"))
    return stmt.values(on_hand=Stock.on_hand + bindparam("q"))


_UPDATES = {kind: _stock_update(kind) for kind in (Movement.RESERVE, Movement.RELEASE, Movement.SHIP,
                                                   Movement.RECEIVE)}
_DELTAS = {Movement.RESERVE: (0, 1), Movement.RELEASE: (0, -1), Movement.SHIP: (-1, -1), Movement.RECEIVE: (1, 0)}


def move(s: Session, *, warehouse: str, sku: str, kind: Movement, qty: int, order_id: int | None,
         document: str, at: datetime, ledger_kind: str | None = None) -> bool:
    """One conditional stock change and its ledger row; False when the condition did not hold."""
    result = s.execute(_UPDATES[kind], {"w": warehouse, "k": sku, "q": qty},
                       execution_options={"synchronize_session": False})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    d_on_hand, d_reserved = _DELTAS[kind]
    append(s, StockMovement, warehouse=warehouse, sku=sku, kind=ledger_kind or kind.value,
           on_hand_delta=d_on_hand * qty, reserved_delta=d_reserved * qty, order_id=order_id, document=document,
           at=at)
    return True


def receive(s: Session, warehouse: str, sku: str, qty: int, kind: str, document: str,
            at: datetime, order_id: int | None = None) -> None:
    """Goods come in (a purchase, a return, an adjustment): on hand grows."""
    if qty <= 0:
        raise StockError(f"cannot receive a quantity of {qty}")
    if not move(s, warehouse=warehouse, sku=sku, kind=Movement.RECEIVE, qty=qty, order_id=order_id,
                document=document, at=at, ledger_kind=kind):
        raise StockError(f"no stock row for {sku} at {warehouse}")

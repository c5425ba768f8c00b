"""What a held order waits for: a channel SKU to be mapped, or a catalogue SKU to come into stock.

An order held only for such reasons (nothing a person has to judge) gets
one :class:`~oms_engine.storage.models.OrderWait` row per thing it waits
for. Whatever may bring it (a mapping made, goods in, stock released) marks
those rows ready in its own transaction, touching no order row, so it takes
no lock an order holder could be waiting on (orders are always locked before
stock, and waits after both). The backorders stage then looks at the orders
whose waits are ready (orders/backorders.py). When an order leaves the
review queue its waits go (machine.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from ..storage.db import append
from ..storage.driver import fetch
from ..storage.models import OrderWait

_CHUNK = 500


class Wait(StrEnum):
    SKU = "sku"       # a channel SKU nothing maps to a product yet (key: the channel's SKU)
    STOCK = "stock"   # a catalogue SKU short of stock (key: the SKU)


def record_waits(s: Session, order_id: int, waits: Iterable[tuple[Wait, str]], at: datetime) -> None:
    for kind, key in dict.fromkeys(waits):
        append(s, OrderWait, order_id=order_id, kind=kind.value, key=key[:64], ready=False, since=at)


def clear_waits(s: Session, order_id: int) -> None:
    s.execute(delete(OrderWait).where(OrderWait.order_id == order_id),
              execution_options={"synchronize_session": False})


def replace_waits(s: Session, order_id: int, waits: Iterable[tuple[Wait, str]], at: datetime) -> None:
    clear_waits(s, order_id)
    record_waits(s, order_id, waits, at)


def mark_ready(s: Session, kind: Wait, keys: Iterable[str]) -> None:
    """What waits for one of ``keys`` may be there now."""
    wanted = sorted(set(keys))
    for i in range(0, len(wanted), _CHUNK):
        s.execute(update(OrderWait).where(OrderWait.kind == kind.value, OrderWait.key.in_(wanted[i:i + _CHUNK]),
                                          OrderWait.ready.is_(False)).values(ready=True),
                  execution_options={"synchronize_session": False})


_WAITING = select(exists().where(OrderWait.ready.is_(False)))


def stock_freed(s: Session, skus: Iterable[str]) -> None:
    """The stock batch's listener: available stock of these SKUs went up in this transaction."""
    # Most of the time no order waits at all: one probe of an index, no UPDATE of a list of SKUs.
    if fetch(s.connection(), _WAITING, {})[0][0]:
        mark_ready(s, Wait.STOCK, skus)

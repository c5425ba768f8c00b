"""Warehouses (master data, cached briefly) and the stock views strategies decide on."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..plugin.views import StockView, WarehouseView
from ..storage.models import Warehouse
from .batch import read_available
from .locking import lock_stock


def warehouse_views(s: Session) -> tuple[WarehouseView, ...]:
    return tuple(
        WarehouseView(code=w.code, name=w.name, country=w.country, region=w.region, city=w.city,
                      priority=w.priority, lat=w.lat, lon=w.lon, capabilities=frozenset(w.capabilities or ()))
        for w in s.scalars(select(Warehouse).order_by(Warehouse.priority, Warehouse.code))
    )


class WarehouseCache:
    """Warehouse master data, re-read at most every ``ttl`` seconds (it changes rarely)."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._cached: tuple[float, tuple[WarehouseView, ...]] | None = None

    def get(self, s: Session) -> tuple[WarehouseView, ...]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.ttl:
            self._cached = (now, warehouse_views(s))
        return self._cached[1]


def stock_view(s: Session, skus: Iterable[str], whs: tuple[WarehouseView, ...], *, lock: bool = False
               ) -> StockView:
    """Available quantity of these SKUs in every warehouse, read in chunks of 500.

    ``lock``: also lock every one of these stock rows until the transaction
    ends, in the global order (see ledger.py), for a batch that is about to
    move stock of these SKUs; the figures are then read under the lock.
    """
    wanted = set(skus)
    avail = read_available(s, [(w.code, sku) for w in whs for sku in wanted])
    if lock:
        avail.update(lock_stock(s, list(avail)))
    return StockView(warehouses=whs, available=avail)

"""Warehouses (master data, cached briefly) and the stock views strategies decide on.

Routing sees the active warehouses only; a deactivated warehouse still has
its WMS connector looked up here, so documents about orders it already holds
(a cancel, an interception) still reach it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..plugin.views import StockView, WarehouseView
from ..storage.models import Warehouse
from .batch import read_available
from .locking import lock_stock


@dataclass(frozen=True)
class WmsRoute:
    """Where a warehouse's documents go: its WMS connector and that connector's settings for it."""

    connector: str
    settings: dict[str, Any]


def _view(w: Warehouse) -> WarehouseView:
    return WarehouseView(code=w.code, name=w.name, country=w.country, region=w.region, city=w.city,
                         priority=w.priority, lat=w.lat, lon=w.lon, capabilities=frozenset(w.capabilities or ()),
                         regions=frozenset(w.regions or ()))


def warehouse_views(s: Session) -> tuple[WarehouseView, ...]:
    """The active warehouses, by priority then code."""
    return tuple(_view(w) for w in s.scalars(select(Warehouse).where(Warehouse.active.is_(True))
                                             .order_by(Warehouse.priority, Warehouse.code)))


class WarehouseCache:
    """Warehouse master data, re-read at most every ``ttl`` seconds (it changes rarely), and at once after a
    change this process made (:meth:`invalidate`)."""

    def __init__(self, ttl: float = 60.0, *, default_wms: str = "") -> None:
        self.ttl, self.default_wms = ttl, default_wms
        self._cached: tuple[float, tuple[WarehouseView, ...], dict[str, WmsRoute]] | None = None

    def _fresh(self, s: Session) -> tuple[float, tuple[WarehouseView, ...], dict[str, WmsRoute]]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.ttl:
            rows = list(s.scalars(select(Warehouse).order_by(Warehouse.priority, Warehouse.code)))
            views = tuple(_view(w) for w in rows if w.active)
            routes = {w.code: WmsRoute(w.wms_connector or self.default_wms, dict(w.wms_settings or {})) for w in rows}
            self._cached = (now, views, routes)
        return self._cached

    def get(self, s: Session) -> tuple[WarehouseView, ...]:
        return self._fresh(s)[1]

    def wms(self, s: Session, code: str) -> WmsRoute:
        """The WMS a warehouse's documents go to (config.yaml's ``wms_connector`` unless it names its own)."""
        routes = self._fresh(s)[2]
        route = routes.get(code)
        if route is None:   # created since the cache was filled (by another process)
            self.invalidate()
            route = self._fresh(s)[2].get(code)
        return route if route is not None else WmsRoute(self.default_wms, {})

    def invalidate(self) -> None:
        self._cached = None


def stock_view(s: Session, skus: Iterable[str], whs: tuple[WarehouseView, ...], *, lock: bool = False
               ) -> StockView:
    """Available quantity of these SKUs in every warehouse, read in chunks of 500.

    ``lock``: also lock every one of these stock rows until the transaction
    ends, in the global order (see locking.py), for a batch that is about to
    move stock of these SKUs; the figures are then read under the lock.
    """
    wanted = set(skus)
    avail = read_available(s, [(w.code, sku) for w in whs for sku in wanted])
    if lock:
        avail.update(lock_stock(s, list(avail)))
    return StockView(warehouses=whs, available=avail)

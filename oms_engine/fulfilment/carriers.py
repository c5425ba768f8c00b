"""Carriers and their services (master data, cached briefly): what courier matching chooses among, and where a
carrier's messages go.

A carrier names the connector that speaks to it (none: config.yaml's
``carrier_connector``) and that connector's settings for it (endpoint, the
environment variable holding its secret, prices...). An order whose carrier
is not in master data (made before carriers were, or by a connector's own
word in a callback) is served by the default connector with no settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..plugin.views import ServiceView
from ..storage.models import Carrier, CarrierService, Warehouse


@dataclass(frozen=True)
class CarrierRoute:
    """Where a carrier's messages go: its connector and that connector's settings for it."""

    connector: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class _Snapshot:
    at: float
    routes: dict[str, CarrierRoute]
    services: tuple[ServiceView, ...]           # active services of active carriers, by carrier then code
    by_warehouse: dict[str, frozenset[str]]     # warehouse -> the carriers it names (empty: every one)


class CarrierCache:
    """Carrier master data, re-read at most every ``ttl`` seconds, and at once after a change this process made
    (:meth:`invalidate`)."""

    def __init__(self, ttl: float = 60.0, *, default_connector: str = "") -> None:
        self.ttl, self.default_connector = ttl, default_connector
        self._cached: _Snapshot | None = None

    def _fresh(self, s: Session) -> _Snapshot:
        now = time.monotonic()
        if self._cached is None or now - self._cached.at > self.ttl:
            carriers = {c.code: c for c in s.scalars(select(Carrier))}
            routes = {code: CarrierRoute(c.connector or self.default_connector, dict(c.settings or {}))
                      for code, c in carriers.items()}
            services = tuple(
                ServiceView(carrier=sv.carrier, code=sv.code, name=sv.name,
                            connector=routes[sv.carrier].connector, attributes=dict(sv.attributes or {}))
                for sv in s.scalars(select(CarrierService).order_by(CarrierService.carrier, CarrierService.code))
                if sv.active and carriers[sv.carrier].active)
            by_warehouse = {code: frozenset(named or ()) for code, named in s.execute(
                select(Warehouse.code, Warehouse.carriers))}
            self._cached = _Snapshot(now, routes, services, by_warehouse)
        return self._cached

    def route(self, s: Session, carrier: str | None) -> CarrierRoute:
        """Where messages about a parcel with ``carrier`` go (the default connector for an unknown one)."""
        routes = self._fresh(s).routes
        if carrier and carrier not in routes:   # created since the cache was filled (by another process)
            self.invalidate()
            routes = self._fresh(s).routes
        found = routes.get(carrier or "")
        return found if found is not None else CarrierRoute(self.default_connector, {})

    def services(self, s: Session, warehouse: str) -> tuple[ServiceView, ...]:
        """The active services of the carriers that collect from ``warehouse``."""
        snap = self._fresh(s)
        named = snap.by_warehouse.get(warehouse, frozenset())
        return tuple(sv for sv in snap.services if not named or sv.carrier in named)

    def known(self, s: Session) -> bool:
        """Are any carriers in master data? (None: the one default connector carries everything.)"""
        return bool(self._fresh(s).routes)

    def settings(self, s: Session, carrier: str) -> dict[str, Any]:
        return self.route(s, carrier).settings

    def invalidate(self) -> None:
        self._cached = None

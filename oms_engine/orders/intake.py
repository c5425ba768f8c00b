"""Intake: payload -> raw row -> canonical orders -> stored orders.

The raw payload is committed on its own before anything parses it, so no
payload is ever lost to a parsing bug. Each order then gets its own savepoint:
a bad order is reported and the rest of the payload goes on, and the raw
payload's outcome says which order became what. An order that arrives again
(same channel and external id) is the same order; the second arrival reports
the existing number and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import OmsError
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.db import Database, savepoint
from ..storage.models import Order, RawPayload
from .canonical import CanonicalOrder, ParsedPayload
from .creation import OrderCreator, Prefetched
from .numbering import NumberGenerator

MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
log = logging.getLogger("oms.intake")


@dataclass(frozen=True)
class IngestResult:
    channel: str
    external_id: str | None
    number: str | None = None
    status: str | None = None
    error: str | None = None
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class PayloadTooLarge(OmsError, ValueError):
    pass


class Intake:
    def __init__(self, *, db: Database, clock: Clock, plugins: PluginRegistry, numbers: NumberGenerator,
                 creator: OrderCreator) -> None:
        self.db, self.clock, self.plugins, self.numbers, self.creator = db, clock, plugins, numbers, creator

    def store_raw(self, channel: str, body: bytes, source: str) -> int:
        with self.db.session() as s:
            row = RawPayload(channel=channel, source=source, body=body, sha256=hashlib.sha256(body).hexdigest(),
                             received_at=self.clock.now())
            s.add(row)
            s.flush()
            return row.id

    def _parse(self, channel: str, body: bytes) -> list[ParsedPayload]:
        adapter = self.plugins.channels.get(channel)
        try:
            with blame(self.plugins.channels.plugin_of(channel), f"channel '{channel}' parse"):
                return list(adapter.parse(body))
        except PluginFault as fault:
            log.error("%s", fault)
            return [ParsedPayload(None, error=f"the channel adapter failed: {fault}")]

    def _map_skus(self, channel: str, orders: list[CanonicalOrder]) -> tuple[dict[str, str], dict[str, str]]:
        """Every line's catalogue SKU, asked of the SKU mappers before the transaction starts."""
        mapped: dict[str, str] = {}
        failed: dict[str, str] = {}
        for sku in dict.fromkeys(ln.sku for o in orders for ln in o.lines):
            try:
                mapped[sku] = self.plugins.resolve_sku(channel, sku)
            except PluginFault as fault:
                failed[sku] = str(fault)
        return mapped, failed

    def ingest(self, channel: str, body: bytes, *, source: str = "") -> list[IngestResult]:
        if len(body) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"payload of {len(body):,} bytes exceeds the limit of {MAX_PAYLOAD_BYTES:,}")
        self.plugins.channels.get(channel)  # an unknown channel is refused before anything is stored
        payload_id = self.store_raw(channel, body, source)
        parsed = self._parse(channel, body)
        good = [item.order for item in parsed if item.order is not None]
        skus, sku_faults = self._map_skus(channel, good)
        self.numbers.prefetch(len(good))
        results: list[IngestResult] = []
        with self.db.session() as s:
            pre = self.creator.prefetch(s, channel, good, skus)
            for item in parsed:
                if item.order is None:
                    results.append(IngestResult(channel, item.external_id, error=item.error or "unreadable order"))
                    continue
                fault = next((sku_faults[ln.sku] for ln in item.order.lines if ln.sku in sku_faults), None)
                if fault is not None:
                    results.append(IngestResult(channel, item.order.external_id,
                                                error=f"the SKU could not be mapped: {fault}"))
                    continue
                results.append(self._one(s, item.order, payload_id, pre))
            raw = s.get(RawPayload, payload_id)
            assert raw is not None
            raw.outcome = "; ".join(
                f"{r.external_id}: {r.error or ('duplicate of ' if r.duplicate else '') + str(r.number)}"
                for r in results)[:4000] or "no orders in payload"
        return results

    def _one(self, s: Session, canon: CanonicalOrder, payload_id: int, pre: Prefetched) -> IngestResult:
        if canon.external_id in pre.seen:
            number, status = pre.seen[canon.external_id]
            return IngestResult(canon.channel, canon.external_id, number, status, duplicate=True)
        new_customer = canon.customer.ref not in pre.customers
        try:
            with savepoint(s):
                order = self.creator.create(s, canon, payload_id, pre)
        except SQLAlchemyError as exc:
            if new_customer:  # rolled back with the order: the next order of this customer makes it again
                pre.customers.pop(canon.customer.ref, None)
            return self._not_stored(s, canon, exc)
        pre.seen[canon.external_id] = (order.number, order.status)
        return IngestResult(canon.channel, canon.external_id, order.number, order.status)

    def _not_stored(self, s: Session, canon: CanonicalOrder, exc: SQLAlchemyError) -> IngestResult:
        if isinstance(exc, IntegrityError):
            # Another process stored the same channel order between our check and insert.
            existing = s.scalar(select(Order).where(Order.channel == canon.channel,
                                                    Order.external_id == canon.external_id))
            if existing is not None:
                return IngestResult(canon.channel, canon.external_id, existing.number, existing.status,
                                    duplicate=True)
        log.exception("order %s/%s could not be stored", canon.channel, canon.external_id)
        cause = type(getattr(exc, "orig", None) or exc).__name__
        return IngestResult(canon.channel, canon.external_id, error=f"the order could not be stored ({cause})")

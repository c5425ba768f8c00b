"""Stock back to the channels: what each channel account may sell of each of its SKUs, pushed when it changes.

An account pushes stock when config ``push_stock`` says which SKUs it lists
(``mapped``: those of its SKU mappings; ``all``: every active product under its
own SKU), it has a url, and its adapter can report. What it may sell of a SKU is
its available-to-sell: for each active warehouse, what is free there (on hand
less reserved) less a safety stock, times the share ``rules/stock.yaml`` gives
that channel of that warehouse (by channel, adapter, warehouse, region,
category, merchant; no rule: none), rounded down, summed over the warehouses.
Shares of one warehouse that add up to at most 100 % between channels mean no
two shops can sell the same unit.

The worker sweeps each pushing account every ``push_stock_every_seconds``
(``oms channels stock NAME`` does it at once): it reads the stock ledger's
movements since the last sweep (and a window before, so a movement committed
late is not missed), works out the SKUs they touched, and compares what the
account may sell of each with what it was last told (``channel_stock``). What
changed goes to the outbox as one ``channel.stock`` report of absolute
quantities, coalesced: a SKU already waiting in an unsent report of the account
has its quantity replaced there, so however often the stock moves and however
long the channel is down, each SKU waits in one report, with its latest
quantity, and an older quantity can never arrive after a newer one. A
report is of at most :data:`MAX_LEVELS` SKUs; more go in more reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.points import DecisionPoint
from ..decisions.rulebook import Rulebook
from ..messaging.outbox import Kind, OutboxWriter, Status, Topic
from ..storage.db import Database
from ..storage.models import (
    ChannelStock,
    OutboxMessage,
    Product,
    SkuMapping,
    Stock,
    StockMovement,
    StockPushCursor,
    Warehouse,
)
from .accounts import AccountError, Accounts

log = logging.getLogger("oms.channels")

POINT = DecisionPoint.STOCK.value
MAX_LEVELS = 500          # SKUs in one report: a page of the channels' bulk calls, a payload of some 30 KB
OVERLAP = 1_000           # movements read again each sweep: one committed after a later-numbered one is not missed
CHUNK = 500               # SKUs read at once


@dataclass(frozen=True)
class Share:
    percent: int
    safety_stock: int
    rule: str | None        # None: no rule matched, nothing offered


@dataclass
class PushReport:
    account: str
    skus: int = 0             # SKUs looked at
    changed: int = 0          # whose quantity changed: queued
    reports: int = 0          # reports queued (others coalesced into waiting ones)
    levels: dict[str, int] = field(default_factory=dict)     # channel SKU -> quantity queued

    def to_dict(self) -> dict[str, object]:
        return {"account": self.account, "skus": self.skus, "changed": self.changed, "reports": self.reports,
                "levels": self.levels}


class StockPush:
    def __init__(self, *, db: Database, clock: Clock, accounts: Accounts, rulebook: Rulebook,
                 outbox: OutboxWriter) -> None:
        self.db, self.clock, self.accounts, self.rulebook, self.outbox = db, clock, accounts, rulebook, outbox

    def pushing(self) -> list[str]:
        """The accounts that push stock."""
        out = []
        for name, acc in sorted(self.accounts.config.channel_accounts.items()):
            if acc.push_stock and acc.url and callable(getattr(self.accounts.adapter(name), "report", None)):
                out.append(name)
        return out

    def due(self, now: datetime | None = None) -> list[str]:
        """The pushing accounts whose last sweep is ``push_stock_every_seconds`` ago or more."""
        names = self.pushing()
        if not names:
            return []
        now = now or self.clock.now()
        with self.db.read() as s:
            last = dict(s.execute(select(StockPushCursor.account, StockPushCursor.swept_at)
                                  .where(StockPushCursor.account.in_(names))).all())
        every = {n: self.accounts.config.channel_accounts[n].push_stock_every_seconds for n in names}
        return [n for n in names if last.get(n) is None or last[n] + timedelta(seconds=every[n]) <= now]

    # -- what a channel may sell ---------------------------------------------------------------------------------
    def available(self, s: Session, name: str, skus: Sequence[str]) -> dict[str, int]:
        """What account ``name`` may sell of each of ``skus`` (catalogue SKUs) now. A kit has no stock of its own
        (orders/kits.py): in each warehouse, as many as its scarcest component makes whole, with the kit's share."""
        adapter = self.accounts.adapter_name(name)
        houses = {w.code: w for w in s.execute(select(Warehouse.code, Warehouse.country, Warehouse.region)
                                               .where(Warehouse.active.is_(True)))}
        shares: dict[tuple[str, ...], Share] = {}
        out = dict.fromkeys(skus, 0)
        for part in _chunks(list(skus), CHUNK):
            products = {p.sku: p for p in s.execute(select(Product.sku, Product.merchant, Product.attributes,
                                                           Product.components).where(Product.sku.in_(part)))}
            kits = {sku: [(str(c["sku"]), int(c["quantity"])) for c in p.components]
                    for sku, p in products.items() if p.components}
            needed = {sku for sku in part if sku not in kits} | {c for parts in kits.values() for c, _ in parts}
            free: dict[tuple[str, str], int] = {}     # (warehouse, sku) -> on hand less reserved
            for chunk in _chunks(sorted(needed), CHUNK):
                for row in s.execute(select(Stock.warehouse, Stock.sku, Stock.on_hand, Stock.reserved)
                                     .where(Stock.sku.in_(chunk))):
                    if row.warehouse in houses:
                        free[(row.warehouse, row.sku)] = row.on_hand - row.reserved

            def offered(house: Any, product: Any, units: int) -> int:
                category = str((product.attributes or {}).get("category") or "")
                key = (name, adapter, house.code, house.country, house.region, category, product.merchant or "")
                share = shares.get(key)
                if share is None:
                    share = shares[key] = self._share(key)
                units -= share.safety_stock
                return units * share.percent // 100 if units > 0 and share.percent else 0

            for sku in part:
                product = products.get(sku)
                if product is None:
                    continue
                for code, house in houses.items():
                    if sku in kits:
                        whole = [offered(house, product, free.get((code, c), 0)) // q for c, q in kits[sku]]
                        out[sku] += min(whole) if whole else 0
                    elif (code, sku) in free:
                        out[sku] += offered(house, product, free[(code, sku)])
        return out

    def _share(self, key: tuple[str, ...]) -> Share:
        channel, adapter, warehouse, country, region, category, merchant = key
        decision = self.rulebook.decide(POINT, {"stock": {
            "channel": channel, "adapter": adapter, "warehouse": warehouse, "country": country, "region": region,
            "category": category, "merchant": merchant}}) if POINT in self.rulebook.rulesets else None
        action = next((a for a in decision.actions if a.name == "share"), None) if decision is not None else None
        if action is None:
            return Share(0, 0, None)
        rule = decision.fired[0].name if decision is not None and decision.fired else None
        return Share(int(action.params["percent"]), int(action.params.get("safety_stock", 0)), rule)

    # -- sweeping ------------------------------------------------------------------------------------------------
    def sweep(self, name: str, *, full: bool = False) -> PushReport:
        """Queue what changed for account ``name`` since its last sweep (``full``: every SKU it lists)."""
        if name not in self.pushing():
            acc = self.accounts.config.channel_accounts.get(name)
            raise _error(name, acc)
        report = PushReport(name)
        now = self.clock.now()
        with self.db.session() as s:
            cursor = self._cursor(s, name, now)
            top = s.scalar(select(func.max(StockMovement.id))) or 0
            touched: set[str] | None = None
            if not full and cursor.movement_id:
                touched = self._with_kits(s, set(s.scalars(select(StockMovement.sku).distinct().where(
                    StockMovement.id > max(cursor.movement_id - OVERLAP, 0), StockMovement.id <= top))))
            listed = self._listings(s, name, touched)
            report.skus = len(listed)
            wanted = self.available(s, name, sorted({sku for _, sku in listed}))
            told = {r.channel_sku: r for r in s.scalars(select(ChannelStock).where(
                ChannelStock.account == name, ChannelStock.channel_sku.in_([c for c, _ in listed])))} \
                if len(listed) <= CHUNK else self._told(s, name)
            changed: dict[str, int] = {}
            for channel_sku, sku in listed:
                quantity = wanted.get(sku, 0)
                row = told.get(channel_sku)
                if row is None:
                    s.add(ChannelStock(account=name, channel_sku=channel_sku, sku=sku, quantity=quantity,
                                       queued_at=now))
                elif row.quantity != quantity or row.sku != sku:
                    row.quantity, row.sku, row.queued_at = quantity, sku, now
                else:
                    continue
                changed[channel_sku] = quantity
            report.changed, report.levels = len(changed), changed
            report.reports = self._queue(s, name, changed, now)
            cursor.movement_id, cursor.swept_at, cursor.updated_at = max(top, cursor.movement_id), now, now
        if changed:
            log.info("stock for %s: %d SKU(s) changed, %d new report(s)", name, len(changed), report.reports)
        return report

    def _cursor(self, s: Session, name: str, now: datetime) -> StockPushCursor:
        row = s.get(StockPushCursor, name, with_for_update=True)
        if row is None:
            try:
                with s.begin_nested():
                    s.add(StockPushCursor(account=name, movement_id=0, swept_at=None, updated_at=now))
            except IntegrityError:
                pass     # another process's first sweep made it at the same moment
            row = s.get(StockPushCursor, name, with_for_update=True)
            assert row is not None
        return row

    def _listings(self, s: Session, name: str, skus: set[str] | None) -> list[tuple[str, str]]:
        """(channel SKU, catalogue SKU) of what account ``name`` sells, of ``skus`` only unless None."""
        how = self.accounts.config.channel_accounts[name].push_stock
        if how == "mapped":
            stmt = select(SkuMapping.channel_sku, SkuMapping.sku).where(SkuMapping.channel == name,
                                                                        SkuMapping.active.is_(True))
            rows = [(c, k) for c, k in s.execute(stmt) if skus is None or k in skus]
        else:
            stmt = select(Product.sku).where(Product.active.is_(True))
            rows = [(k, k) for (k,) in s.execute(stmt) if skus is None or k in skus]
        return sorted(rows)

    @staticmethod
    def _with_kits(s: Session, skus: set[str]) -> set[str]:
        """``skus`` and the kits made of any of them: a kit's stock moves as its components' (orders/kits.py)."""
        # As text: a JSON comparison is not portable, and an empty bill is stored as "[]" on both backends.
        kits = s.execute(select(Product.sku, Product.components).where(
            Product.active.is_(True), cast(Product.components, Text) != "[]"))
        return skus | {sku for sku, parts in kits if parts and any(str(c.get("sku")) in skus for c in parts)}

    @staticmethod
    def _told(s: Session, name: str) -> dict[str, ChannelStock]:
        return {r.channel_sku: r for r in s.scalars(select(ChannelStock).where(ChannelStock.account == name))}

    def _queue(self, s: Session, name: str, changed: dict[str, int], now: datetime) -> int:
        """Put ``changed`` in the account's unsent reports: a SKU waiting in one is updated there, the rest fill
        the newest one with room, then new ones. Returns how many new reports it queued."""
        if not changed:
            return 0
        waiting = list(s.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == Kind.CHANNEL.value, OutboxMessage.target == name,
            OutboxMessage.topic == Topic.CHANNEL_STOCK.value, OutboxMessage.status == Status.PENDING.value)
            .order_by(OutboxMessage.id).with_for_update()))
        levels = {m.id: {lv["sku"]: int(lv["quantity"]) for lv in (m.payload or {}).get("levels", [])}
                  for m in waiting}
        rest: dict[str, int] = {}
        for channel_sku, quantity in changed.items():
            holder = next((m for m in waiting if channel_sku in levels[m.id]), None)
            if holder is not None:
                levels[holder.id][channel_sku] = quantity
            else:
                rest[channel_sku] = quantity
        for m in reversed(waiting):
            room = MAX_LEVELS - len(levels[m.id])
            for channel_sku in list(rest)[:max(room, 0)]:
                levels[m.id][channel_sku] = rest.pop(channel_sku)
        for m in waiting:
            payload = {"external_id": "", "levels": _levels(levels[m.id]), "at": _iso(now)}
            if payload["levels"] != (m.payload or {}).get("levels"):
                s.execute(update(OutboxMessage).where(OutboxMessage.id == m.id).values(payload=payload),
                          execution_options={"synchronize_session": False})
        fresh = 0
        items = list(rest.items())
        for part in _chunks(items, MAX_LEVELS):
            self.outbox.enqueue(s, None, Kind.CHANNEL, name, Topic.CHANNEL_STOCK,
                                {"external_id": "", "levels": _levels(dict(part)), "at": _iso(now)})
            fresh += 1
        return fresh


def _levels(levels: dict[str, int]) -> list[dict[str, Any]]:
    return [{"sku": k, "quantity": v} for k, v in sorted(levels.items())]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds") + "Z"


def _error(name: str, acc: Any) -> Exception:
    if acc is None:
        return AccountError(f"'{name}' is not a configured channel account (config channel_accounts)")
    if not acc.push_stock:
        return AccountError(f"channel account '{name}' pushes no stock: set channel_accounts.{name}.push_stock "
                            "to mapped or all")
    if not acc.url:
        return AccountError(f"channel account '{name}' has no url: set channel_accounts.{name}.url")
    return AccountError(f"channel account '{name}': its adapter '{acc.adapter}' cannot report to its channel")

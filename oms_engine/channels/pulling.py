"""Pulling a channel account's orders by cursor (``oms channels pull NAME``, and the worker on a schedule).

Each page the adapter fetches (its ``pull``, plugin/contracts.py: Puller) is taken in as the payloads a webhook
would have brought: kept raw, parsed by the adapter, each order stored once. Only then does the account's
cursor move on, and only from where this pull found it (compare and set), so:

* a pull killed at any moment resumes from the last page whose orders are all stored: nothing is skipped, and
  the page fetched again finds its orders stored already (the same content is a duplicate, changed content an
  update), so nothing is stored twice;
* two processes pulling one account at once cannot move its cursor past a page neither stored: the second to
  finish a page finds the cursor moved and stops.

A pull that fails (the channel unreachable, slow past the account's timeout, answering nonsense) leaves the
cursor where it was and records why; the next pull tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..orders.intake import Intake
from ..plugin.contracts import PulledPage
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.db import Database
from ..storage.models import ChannelCursor
from .accounts import AccountError, Accounts

log = logging.getLogger("oms.channels")
MAX_PAGES = 100


@dataclass
class PullReport:
    account: str
    pages: int = 0
    payloads: int = 0
    orders: int = 0           # stored by this pull
    repeated: int = 0         # known already (a page fetched again, or an order sent again unchanged)
    refused: list[str] = field(default_factory=list)    # orders that could not be read, with why
    cursor: str | None = None
    error: str = ""           # why the pull stopped early ("" : it went as far as the channel had orders)
    stopped: bool = False     # another process moved the cursor meanwhile

    def to_dict(self) -> dict[str, object]:
        return {"account": self.account, "pages": self.pages, "payloads": self.payloads, "orders": self.orders,
                "repeated": self.repeated, "refused": self.refused, "cursor": self.cursor, "error": self.error,
                "stopped": self.stopped}


class Pulling:
    def __init__(self, *, db: Database, clock: Clock, accounts: Accounts, plugins: PluginRegistry,
                 intake: Intake, transport: httpx.BaseTransport | None = None) -> None:
        """``transport``: an httpx transport for every pull's requests (None: the network)."""
        self.db, self.clock, self.accounts, self.plugins = db, clock, accounts, plugins
        self.intake, self.transport = intake, transport

    def can_pull(self, name: str) -> bool:
        return callable(getattr(self.accounts.adapter(name), "pull", None))

    def cursor(self, name: str) -> ChannelCursor | None:
        with self.db.read() as s:
            return s.get(ChannelCursor, name)

    def pull(self, name: str, *, max_pages: int = MAX_PAGES) -> PullReport:
        """Pull account ``name`` until the channel has no more pages ready (at most ``max_pages``)."""
        adapter = self.accounts.adapter(name)
        fetch = getattr(adapter, "pull", None)
        if not callable(fetch):
            raise AccountError(f"channel '{name}' cannot be pulled: its adapter '{adapter.name}' has no pull "
                               "(its orders come by webhook or by file)")
        account = self.accounts.account(name)
        plugin = self.plugins.channels.plugin_of(adapter.name)
        report = PullReport(name)
        start = self._start(name)
        with httpx.Client(timeout=httpx.Timeout(account.timeout), follow_redirects=False, transport=self.transport,
                          headers={"User-Agent": "oms-engine"}) as http:
            while report.pages < max_pages:
                try:
                    with blame(plugin, f"channel '{adapter.name}' pull"):
                        page = fetch(account, start, http)
                        if not isinstance(page, PulledPage):
                            raise TypeError(f"returned {type(page).__name__}, not a PulledPage")
                except PluginFault as fault:
                    report.error = str(fault)
                    log.warning("channel account %s: pull failed, cursor kept at %r: %s", name, start, fault)
                    self._failed(name, report.error)
                    break
                stored = self._take_in(name, page, report)
                report.pages += 1
                if not self._advance(name, start, page.cursor, stored):
                    report.stopped = True
                    log.info("channel account %s: another pull moved the cursor meanwhile; this one stops", name)
                    break
                start = page.cursor if page.cursor is not None else start
                if not page.more or page.cursor is None:
                    break
        report.cursor = start
        return report

    def due(self, now: datetime | None = None) -> list[str]:
        """The accounts the worker should pull now: those with a schedule whose last pull is that long ago."""
        now = now or self.clock.now()
        names = [n for n, acc in sorted(self.accounts.config.channel_accounts.items()) if acc.pull_every_seconds > 0]
        if not names:
            return []
        with self.db.read() as s:
            last = dict(s.execute(select(ChannelCursor.account, ChannelCursor.pulled_at)
                                  .where(ChannelCursor.account.in_(names))).all())
        every = {n: self.accounts.config.channel_accounts[n].pull_every_seconds for n in names}
        return [n for n in names if last.get(n) is None or last[n] + timedelta(seconds=every[n]) <= now]

    # -- the cursor ------------------------------------------------------------------------------------------
    def _take_in(self, name: str, page: PulledPage, report: PullReport) -> int:
        stored = 0
        for body in page.payloads:
            report.payloads += 1
            for result in self.intake.ingest(name, body, source=f"pull:{name}"):
                if result.error:
                    report.refused.append(f"{result.external_id or '?'}: {result.error}")
                elif result.duplicate:
                    report.repeated += 1
                else:
                    stored += 1
        report.orders += stored
        return stored

    def _start(self, name: str) -> str | None:
        for _ in range(2):
            try:
                with self.db.session() as s:
                    row = s.get(ChannelCursor, name)
                    if row is not None:
                        return row.cursor
                    s.add(ChannelCursor(account=name, cursor=None, pages=0, orders=0, last_error="",
                                        updated_at=self.clock.now()))
                    return None
            except IntegrityError:
                continue    # another process's first pull made the row at the same moment: read that one
        raise AccountError(f"channel account '{name}': its cursor could not be read")

    def _advance(self, name: str, start: str | None, cursor: str | None, stored: int) -> bool:
        """Move the cursor from ``start`` to ``cursor`` (None: keep it); False when another pull moved it."""
        now = self.clock.now()
        with self.db.session() as s:
            return _compare_and_set(s, name, start, start if cursor is None else cursor, stored, now)

    def _failed(self, name: str, why: str) -> None:
        with self.db.session() as s:
            s.execute(update(ChannelCursor).where(ChannelCursor.account == name)
                      .values(last_error=why[:4000], pulled_at=self.clock.now(), updated_at=self.clock.now()),
                      execution_options={"synchronize_session": False})


def _compare_and_set(s: Session, name: str, start: str | None, cursor: str | None, stored: int,
                     now: datetime) -> bool:
    found = ChannelCursor.cursor.is_(None) if start is None else ChannelCursor.cursor == start
    moved = s.execute(update(ChannelCursor).where(ChannelCursor.account == name, found)
                      .values(cursor=cursor, pulled_at=now, updated_at=now, pages=ChannelCursor.pages + 1,
                              orders=ChannelCursor.orders + stored, last_error=""),
                      execution_options={"synchronize_session": False})
    return bool(moved.rowcount)

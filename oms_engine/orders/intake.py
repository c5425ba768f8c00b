"""Intake: payload -> raw row -> canonical orders -> stored orders.

The raw payload is committed on its own before anything parses it, so no
payload is ever lost to a parsing bug. Each order then gets its own savepoint:
a bad order is reported and the rest of the payload goes on, and the raw
payload's outcome says which order became what. Whatever goes wrong with one
order (refused input, a failing row, a bug) costs that order only: its savepoint
takes back every row it wrote, and its result says why. Rows queued to be
written at commit (history, stock movements...) are written for the whole
payload at once; should one fail there, the payload is stored again with each
order's rows written inside its own savepoint.

An order that arrives again (same channel and external id) is the same order;
the second arrival reports the existing number and changes nothing, and says
whether its content differs from the stored order's (``content_differs``, from
the canonical order's content hash).
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..channels.accounts import Accounts
from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..errors import OmsError
from ..masterdata.skus import mapped_skus
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.db import Database, drain, savepoint
from ..storage.models import Order, OrderUpdate, RawPayload
from ..storage.retry import LostRace, is_retryable
from .canonical import CanonicalOrder, ParsedPayload, shown
from .creation import OrderCreator, Prefetched, Seen
from .numbering import NumberGenerator
from .records import OrderRec
from .updates import ChannelUpdates

MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
MAX_ERROR_CHARS = 2000
MAX_SKU_CHARS = 64    # OrderLine.sku
log = logging.getLogger("oms.intake")


def printable(text: str, limit: int) -> str:
    """Text an adapter or a payload produced, as it may be stored and shown: at most ``limit`` characters,
    control characters and lone surrogates escaped (PostgreSQL stores no NUL, UTF-8 has no surrogates)."""
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)


@dataclass(frozen=True)
class IngestResult:
    channel: str
    external_id: str | None
    number: str | None = None
    status: str | None = None
    error: str | None = None
    duplicate: bool = False
    # A re-send only: does its content differ from the stored order's? (None: not known, the stored
    # order predates content hashes.) Changed content is taken as an update of the stored order
    # (orders/updates.py): ``update`` is its id, and ``message`` says what came of it.
    content_differs: bool | None = None
    message: str | None = None
    update: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class PayloadTooLarge(OmsError, ValueError):
    pass


@dataclass(frozen=True)
class Submission:
    """A payload to take in, and where it came from."""

    body: bytes
    source: str = ""


# Run in the transaction that stores the raw payloads, with all of them: per submission whether it may be
# stored (False: a webhook delivery stored before, say; see web/webhooks.py). An IntegrityError it raises
# means another process claimed one in the meantime: the transaction is run again and it looks again.
Claim = Callable[[Session, Sequence[Submission]], Sequence[bool]]
CLAIM_TRIES = 3


# On the table: one executemany for every payload's outcome.
_RAW = RawPayload.__table__
_OUTCOME = update(_RAW).where(_RAW.c.id == bindparam("_id")).values(outcome=bindparam("outcome"))


class Intake:
    def __init__(self, *, db: Database, clock: Clock, plugins: PluginRegistry, numbers: NumberGenerator,
                 creator: OrderCreator, accounts: Accounts, updates: ChannelUpdates | None = None) -> None:
        self.db, self.clock, self.plugins, self.numbers, self.creator = db, clock, plugins, numbers, creator
        self.accounts, self.updates = accounts, updates

    def store_raw(self, channel: str, body: bytes, source: str) -> int:
        [payload_id] = self._store_raw_many(channel, [Submission(body, source)])
        assert payload_id is not None
        return payload_id

    def _store_raw_many(self, channel: str, submissions: Sequence[Submission], claim: Claim | None = None
                        ) -> list[int | None]:
        """Every payload's raw row (and its claim) in one transaction; None where the claim was refused."""
        now = self.clock.now()
        for attempt in range(1, CLAIM_TRIES + 1):
            try:
                with self.db.session() as s:
                    allowed = list(claim(s, submissions)) if claim is not None else [True] * len(submissions)
                    rows: list[RawPayload | None] = []
                    for sub, ok in zip(submissions, allowed, strict=True):
                        if not ok:
                            rows.append(None)
                            continue
                        row = RawPayload(channel=channel, source=sub.source, body=sub.body,
                                         sha256=hashlib.sha256(sub.body).hexdigest(), received_at=now)
                        s.add(row)
                        rows.append(row)
                    s.flush()
                    return [row.id if row is not None else None for row in rows]
            except IntegrityError:
                # Raw payloads have no unique key: only a claim can collide, with another process's.
                if claim is None or attempt == CLAIM_TRIES:
                    raise
                log.info("channel %s: a delivery was claimed elsewhere while this batch was stored; looking again",
                         channel)
        raise AssertionError("unreachable")

    def _parse(self, channel: str, body: bytes) -> list[ParsedPayload]:
        name = self.accounts.adapter_name(channel)
        adapter = self.plugins.channels.get(name)
        try:
            with blame(self.plugins.channels.plugin_of(name), f"channel '{name}' parse"):
                parsed = list(adapter.parse(body))
        except PluginFault as fault:
            log.error("%s", fault)
            return [ParsedPayload(None, error=f"the channel adapter failed: {fault}")]
        if name == channel:
            return parsed
        # An account's orders carry the account's name: two shops on one channel are two channels to the OMS.
        return [replace(p, order=p.order.model_copy(update={"channel": channel})) if p.order is not None else p
                for p in parsed]

    def _map_skus(self, channel: str, orders: list[CanonicalOrder]) -> tuple[dict[str, str], dict[str, Exception]]:
        """Every line's catalogue SKU, before the transaction starts: the channel's SKU mappings
        (masterdata/skus.py), then the SKU mapper plugins for the rest (they may be slow)."""
        failed: dict[str, Exception] = {}
        wanted = list(dict.fromkeys(ln.sku for o in orders for ln in o.lines))
        with self.db.read() as s:
            mapped = mapped_skus(s, channel, wanted)
        for sku in wanted:
            if sku in mapped:
                continue
            try:
                to = self.plugins.resolve_sku(channel, sku)
            except PluginFault as fault:
                failed[sku] = fault
                continue
            if len(to) > MAX_SKU_CHARS or not to.isprintable():
                # A mapper's answer is stored as the line's SKU: it gets the bounds a channel's SKU gets.
                failed[sku] = ValueError(f"the SKU mapper answered {shown(to)}, not a SKU of up to "
                                         f"{MAX_SKU_CHARS} characters")
                continue
            mapped[sku] = to
        return mapped, failed

    def ingest(self, channel: str, body: bytes, *, source: str = "") -> list[IngestResult]:
        [results] = self.ingest_many(channel, [Submission(body, source)])
        assert results is not None
        return results

    def ingest_many(self, channel: str, submissions: Sequence[Submission], *, claim: Claim | None = None
                    ) -> list[list[IngestResult] | None]:
        """Several payloads of one channel at once: their raw rows in one transaction, their orders in
        another, as one batch (a payload of one order costs little more than its share of the batch).

        Per submission its results in its orders' order, or None when its claim was refused (nothing of
        it is stored then).
        """
        for sub in submissions:
            if len(sub.body) > MAX_PAYLOAD_BYTES:
                raise PayloadTooLarge(f"payload of {len(sub.body):,} bytes exceeds the limit of "
                                      f"{MAX_PAYLOAD_BYTES:,}")
        self.accounts.adapter_name(channel)  # an unknown channel is refused before anything is stored
        payload_ids = self._store_raw_many(channel, submissions, claim)
        stored = [(pid, self._parse(channel, sub.body)) for pid, sub in zip(payload_ids, submissions, strict=True)
                  if pid is not None]
        if not stored:
            return [None] * len(submissions)
        good = [item.order for _, parsed in stored for item in parsed if item.order is not None]
        skus, sku_faults = self._map_skus(channel, good)

        def store(isolated: bool) -> list[list[IngestResult]]:
            # Run again from the start if the transaction loses a race with another process on the same
            # stock rows (storage/retry.py); numbers are taken first, never inside a SQLite write transaction.
            self.numbers.prefetch(len(good))
            results: list[list[IngestResult | None]] = [[None] * len(parsed) for _, parsed in stored]
            with self.db.session() as s:
                pre = self.creator.prefetch(s, channel, good, skus, sku_faults)
                todo: list[tuple[int, int, CanonicalOrder, str, int]] = []
                for k, (pid, parsed) in enumerate(stored):
                    for i, item in enumerate(parsed):
                        if item.order is None:
                            ext = printable(item.external_id, 128) if isinstance(item.external_id, str) else None
                            results[k][i] = IngestResult(channel, ext, error=printable(
                                item.error or "unreadable order", MAX_ERROR_CHARS))
                        else:
                            todo.append((k, i, item.order, item.order.content_hash(), pid))
                if isolated:
                    for k, i, canon, digest, pid in todo:
                        results[k][i] = self._one(s, canon, digest, pid, pre)
                else:
                    made = self.creator.create_many(s, [(c, d, pid) for _, _, c, d, pid in todo], pre)
                    for (k, i, canon, digest, _), outcome in zip(todo, made, strict=True):
                        results[k][i] = _result(canon, digest, outcome)
                done = [[r for r in rs if r is not None] for rs in results]
                s.connection().execute(_OUTCOME, [
                    {"_id": pid, "outcome": "; ".join(map(_outcome, rs))[:4000] or "no orders in payload"}
                    for (pid, _), rs in zip(stored, done, strict=True)])
            return done

        what = f"intake of payload{'s' if len(stored) > 1 else ''} {', '.join(str(pid) for pid, _ in stored)}"
        try:
            done = self.db.run_retrying(lambda: store(False), what=what)
        except Exception as exc:
            if is_retryable(exc):
                raise
            # The payloads' orders are written together (a few statements for all of them); one of their
            # rows failed, so nothing was stored. Once more, each order in a savepoint of its own, its rows
            # written inside it (slower, so not the first way): the order they belong to fails alone.
            log.warning("%s failed at commit (%s); storing the orders one by one", what,
                        type(getattr(exc, "orig", None) or exc).__name__)
            done = self.db.run_retrying(lambda: store(True), what=what)
        if self.updates is not None:
            try:
                self._apply_updates([pid for pid, _ in stored], done)
            except Exception:
                # The orders and their updates are stored: an update not applied now stays pending, and
                # `oms run` or the worker applies it (orders/updates.py). The sender is answered all the same.
                log.exception("the updates of %s were stored and are applied later", what)
        by_payload = iter(done)
        return [next(by_payload) if pid is not None else None for pid in payload_ids]

    def _apply_updates(self, payload_ids: list[int], done: list[list[IngestResult]]) -> None:
        """Apply the updates these payloads brought (changed re-sends, orders cancelled at the channel), and say
        in each order's result what came of them."""
        with self.db.read() as s:
            queued = s.execute(select(OrderUpdate.id, Order.number).join(Order, Order.id == OrderUpdate.order_id)
                               .where(OrderUpdate.payload_id.in_(payload_ids), OrderUpdate.status == "pending")
                               .order_by(OrderUpdate.id)).all()
        if not queued:
            return
        outcomes = self.updates.apply_pending([uid for uid, _ in queued])  # type: ignore[union-attr]
        by_number: dict[str, list[str]] = {}
        for uid, number in queued:
            by_number.setdefault(number, []).append(outcomes.get(uid, ""))
        with self.db.read() as s:
            now = dict(s.execute(select(Order.number, Order.status).where(Order.number.in_(list(by_number)))).all())
        for results in done:
            for j, r in enumerate(results):
                said = by_number.get(r.number or "")
                if said:
                    results[j] = replace(r, message="taken as an update: " + "; ".join(said),
                                         status=now.get(r.number or "", r.status))

    def _one(self, s: Session, canon: CanonicalOrder, digest: str, payload_id: int, pre: Prefetched
             ) -> IngestResult:
        customers = dict(pre.customers)
        try:
            with savepoint(s):
                [outcome] = self.creator.create_many(s, [(canon, digest, payload_id)], pre)
                # The rows queued (history, movements...) written inside the savepoint too, so a row
                # that fails takes only this order with it (see ingest).
                drain(s)
        except LostRace:
            raise  # not this order's fault: the whole transaction runs again (storage/retry.py)
        except Exception as exc:
            # Any other failure, expected or not, costs this order only; what the payload's later orders
            # reckon with must forget what the rolled-back one did.
            pre.customers.clear()
            pre.customers.update(customers)
            pre.seen.pop(canon.external_id, None)
            pre.cache = FactCache()  # the rolled-back order's id may be handed out again
            return self._not_stored(s, canon, exc, digest, pre)
        return _result(canon, digest, outcome)

    def _not_stored(self, s: Session, canon: CanonicalOrder, exc: Exception, digest: str,
                    pre: Prefetched) -> IngestResult:
        if isinstance(exc, IntegrityError):
            # Another process stored the same channel order between our check and insert.
            existing = s.scalar(select(Order).where(Order.channel == canon.channel,
                                                    Order.external_id == canon.external_id))
            if existing is not None:
                seen = pre.seen[canon.external_id] = Seen(existing.number, existing.status, existing.content_hash)
                return _resent(canon, seen, digest)
        if isinstance(exc, OmsError):
            return IngestResult(canon.channel, canon.external_id, error=printable(str(exc), MAX_ERROR_CHARS))
        log.exception("order %s/%s could not be stored", canon.channel, canon.external_id)
        cause = type(getattr(exc, "orig", None) or exc).__name__
        return IngestResult(canon.channel, canon.external_id, error=f"the order could not be stored ({cause})")


def _result(canon: CanonicalOrder, digest: str, outcome: OrderRec | Seen | OmsError) -> IngestResult:
    if isinstance(outcome, Seen):
        return _resent(canon, outcome, digest)
    if isinstance(outcome, OmsError):
        return IngestResult(canon.channel, canon.external_id, error=printable(str(outcome), MAX_ERROR_CHARS))
    return IngestResult(canon.channel, canon.external_id, outcome.number, outcome.status)


def _resent(canon: CanonicalOrder, seen: Seen, digest: str) -> IngestResult:
    differs = None if seen.content_hash is None else seen.content_hash != digest
    message = None
    if seen.update is not None:
        message = f"order {canon.external_id} changed since it was received: taken as update {seen.update}"
    elif differs:
        message = (f"order {canon.external_id} was received before with different content; the stored order "
                   f"{seen.number} is unchanged")
    elif differs is None:
        message = f"order {seen.number} was stored before content was compared; this re-send changes nothing"
    return IngestResult(canon.channel, canon.external_id, seen.number, seen.status, duplicate=True,
                        content_differs=differs, message=message, update=seen.update)


def _outcome(r: IngestResult) -> str:
    if r.error:
        return f"{r.external_id}: {r.error}"
    if r.duplicate:
        return f"{r.external_id}: duplicate of {r.number}" + (" (content differs)" if r.content_differs else "")
    return f"{r.external_id}: {r.number}"

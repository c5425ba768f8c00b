"""Outbox delivery: due messages, oldest first; a message waits while an older one of its order and kind is unsent.

A delivery that fails (the connector or sender raised, a notification's
template failed on its data) is retried with exponential backoff and dead
after RETRY_LIMIT attempts, its last error kept on the message (``oms order
show`` lists it); the rest of the batch goes on. A message its receiver
refused for good (the connector raised MessageRefused: a tax platform that
rejects an e-invoice) is dead at once, with an incident on its order, and
keeps what the connector recorded of the refusal. A sender's ``flush()`` makes
its batch durable before the batch is recorded as sent; if it fails, every
message of that batch for that sender is retried.

Notifications are rendered here, at delivery, from the template name and
context queued with them (messaging/notifications.py); the subject and body
sent are stored on the row with it. Order is kept per order within a kind:
a customer's messages arrive in the order they were queued, and so do a
warehouse's documents, but a notification that cannot be sent (a gateway
down, a template failing on this order) does not hold back the order's
warehouse document, nor the other way round.

Idempotency: a message can be delivered again when a worker dies after
delivering it and before its transaction recorded it as sent (another worker
then claims it). Every receiver therefore checks the message id: senders are
idempotent on ``Notification.id`` (the file senders check the file itself,
under a lock, across processes), and connectors on ``OutboundMessage.id`` or
on their own state, which is written in the delivering transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from ..channels.reports import ChannelReports
from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..fulfilment.callbacks import Callbacks
from ..fulfilment.carriers import CarrierCache
from ..fulfilment.dispatch import Dispatch, Documented
from ..messaging.notifications import render_notification
from ..messaging.outbox import RETRY_LIMIT, Kind, Status, next_attempt
from ..messaging.templates import TemplateProblem
from ..orders.incidents import record_incident
from ..plugin.contracts import MessageRefused, Notification, OutboundMessage
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry, RegistryError
from ..stock.warehouses import WarehouseCache
from ..storage.claims import claim_rows
from ..storage.driver import execute_many
from ..storage.models import OutboxMessage
from .context import BufferedContext, plugin_states
from .stage import StageName, Unit, UnitKind

_OUTBOX = OutboxMessage.__table__
# A sent notification keeps the text it was sent with: on the table, by id, one executemany per batch.
_SENT_TEXT = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("_id"))
              .values(payload=bindparam("payload"), status=bindparam("status"), sent_at=bindparam("sent_at"),
                      attempts=bindparam("attempts")))

log = logging.getLogger("oms.pipeline")


def _refused(exc: BaseException) -> bool:
    return isinstance(exc, PluginFault) and isinstance(exc.error, MessageRefused)


class _Withdrawn(Exception):
    """The message is no longer wanted: its order moved on before it left."""


class OutboxStage:
    name = StageName.OUTBOX

    def __init__(self, *, batch_size: int, clock: Clock, dispatch: Dispatch, plugins: PluginRegistry,
                 callbacks: Callbacks, warehouses: WarehouseCache, carriers: CarrierCache, retry_seconds: int,
                 kinds: frozenset[str] | None = None, skip: frozenset[str] = frozenset(),
                 name: StageName = StageName.OUTBOX, reports: ChannelReports | None = None) -> None:
        """``kinds``: only messages of these kinds (a stage of their own, with a batch of its own); ``skip``:
        every kind but these (those another stage delivers); ``reports``: what delivers the reports to the
        shops (channels/reports.py)."""
        self.reports = reports
        self.name, self.kinds, self.skip = name, kinds, skip
        self.batch_size, self.clock, self.dispatch, self.warehouses = batch_size, clock, dispatch, warehouses
        self.carriers = carriers
        self.plugins, self.callbacks, self.retry_seconds = plugins, callbacks, retry_seconds
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        now = self.clock.now()
        stmt = (select(OutboxMessage.id, OutboxMessage.order_id, OutboxMessage.order_number, OutboxMessage.kind,
                       OutboxMessage.target, OutboxMessage.topic, OutboxMessage.payload, OutboxMessage.attempts)
                .where(OutboxMessage.status == Status.PENDING.value, OutboxMessage.available_at <= now, first_in_line())
                .order_by(OutboxMessage.id))
        if self.kinds is not None:
            stmt = stmt.where(OutboxMessage.kind.in_(sorted(self.kinds)))
        elif self.skip:
            stmt = stmt.where(OutboxMessage.kind.not_in(sorted(self.skip)))
        rows = claim_rows(s, stmt, self.batch_size)
        blocked: set[tuple[int | None, str, str]] = set()    # (order, kind, medium) with a failure in this batch
        ctx = BufferedContext(s, self.clock, self.callbacks)
        # Connectors usually keep their state of a document under its order number: read it for the batch.
        plugin_states(s).preload((m.target, m.order_number) for m in rows
                                 if m.kind == Kind.CONNECTOR and m.order_number)
        # The orders whose documents these are, read for the batch at once (fulfilment/dispatch.py).
        documents = self.dispatch.load(s, rows, cache)
        sent: dict[str, list[Any]] = {}    # sender name -> messages it took ("": connectors)
        rendered: dict[int, tuple[str, str]] = {}   # notification id -> (subject, body) sent
        changed: list[dict[str, Any]] = []
        for msg in rows:
            if (msg.order_id, msg.kind, _medium(msg)) in blocked:
                continue
            self.current = Unit(UnitKind.MESSAGE, msg.id)
            try:
                via = self._deliver(s, msg, ctx, cache, documents, rendered)
            except _Withdrawn as why:
                changed.append({"id": msg.id, "status": Status.WITHDRAWN.value, "last_error": str(why)})
                continue
            except (PluginFault, RegistryError, TemplateProblem) as exc:  # retried later, never lost
                changed.append(self._failed(msg, exc, now))
                blocked.add((msg.order_id, msg.kind, _medium(msg)))
                if _refused(exc):
                    record_incident(s, order_id=msg.order_id, stage=self.name.value, error=exc, at=now,
                                    action=f"message {msg.id} dead: refused by its receiver, not retried "
                                           f"(oms outbox retry {msg.id} sends it again)")
                continue
            sent.setdefault(via, []).append(msg)
        self.current = None
        ok: list[int] = []
        texts: list[dict[str, Any]] = []
        for via, msgs in sent.items():
            if not self._flush(via):
                changed.extend(self._failed(m, RuntimeError(f"sender '{via}' could not flush"), now) for m in msgs)
                continue
            for m in msgs:
                if m.id in rendered:
                    subject, body = rendered[m.id]
                    texts.append({"_id": m.id, "payload": {**m.payload, "subject": subject, "body": body},
                                  "status": Status.SENT.value, "sent_at": now, "attempts": m.attempts + 1})
                else:
                    ok.append(m.id)
        for change in changed:
            s.execute(update(OutboxMessage).where(OutboxMessage.id == change.pop("id")).values(**change),
                      execution_options={"synchronize_session": False})
        # Notifications keep the text they were sent with: one executemany for the batch.
        if texts:
            execute_many(s.connection(), _SENT_TEXT, texts)
        # One UPDATE for the rest of the batch: the common case should not pay for per-row bookkeeping.
        for i in range(0, len(ok), 500):
            s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ok[i:i + 500]))
                      .values(status=Status.SENT.value, sent_at=now, attempts=OutboxMessage.attempts + 1),
                      execution_options={"synchronize_session": False})
        return len(rows)

    def _failed(self, msg: Any, exc: BaseException, now: Any) -> dict[str, Any]:
        log.warning("outbox %s (%s) failed: %s", msg.id, msg.topic, exc)
        attempts = msg.attempts + 1
        retry = next_attempt(now, self.retry_seconds, attempts, msg.id)
        # Refused for good: the same message would be refused again, so it is not tried again.
        dead = attempts >= RETRY_LIMIT or _refused(exc)
        return {"id": msg.id, "attempts": attempts, "last_error": str(exc)[:2000],
                "status": Status.DEAD.value if dead else Status.PENDING.value, "available_at": retry}

    def _flush(self, via: str) -> bool:
        """Make a sender's batch durable; False when it could not (its messages are retried)."""
        if via == "":
            return True
        sender = self.plugins.senders.get(via)
        flush = getattr(sender, "flush", None)
        if flush is None:
            return True
        try:
            with blame(self.plugins.senders.plugin_of(via), f"sender '{via}' flush"):
                flush()
        except PluginFault as fault:
            log.warning("%s", fault)
            return False
        return True

    def _deliver(self, s: Session, msg: Any, ctx: BufferedContext, cache: FactCache, documents: dict[int, Documented],
                 rendered: dict[int, tuple[str, str]]) -> str:
        """Deliver one message; returns the sender's name ("" for a connector)."""
        if msg.kind == Kind.NOTIFICATION:
            p = msg.payload
            sender = self.plugins.sender_for(msg.target)
            subject, body = render_notification(self.plugins, p)
            with blame(self.plugins.senders.plugin_of(sender.name), f"sender '{sender.name}'"):
                sender.send(Notification(id=msg.id, order_number=msg.order_number, medium=msg.target,
                                         recipient=p["recipient"], template=p["template"], subject=subject,
                                         body=body))
            if "context" in p:
                rendered[msg.id] = (subject, body)
            return sender.name
        if msg.kind == Kind.CHANNEL:
            if self.reports is None:
                raise RegistryError(f"channel account '{msg.target}' does not report to its channel any more "
                                    "(config channel_accounts: url, report_status)")
            self.reports.deliver(s, msg, self.clock.now())
            return ""
        connector = self.plugins.connectors.get(msg.target)
        doc = documents.get(msg.id)
        if doc is not None:
            why = self.dispatch.withdrawn(msg, doc)
            if why is not None:
                raise _Withdrawn(why)
        warehouse = msg.payload.get("warehouse") if isinstance(msg.payload, dict) else None
        settings: dict[str, Any] = {}
        if isinstance(warehouse, str) and connector.kind == "wms":
            route = self.warehouses.wms(s, warehouse)
            if route.connector == connector.name:
                settings = route.settings
        elif connector.kind == "carrier" and isinstance(msg.payload, dict):
            # A carrier's message: that carrier's settings for its connector (master data).
            carried = self.carriers.route(s, msg.payload.get("carrier"))
            if carried.connector == connector.name:
                settings = carried.settings
        ctx.about = {"connector": connector.name, "warehouse": warehouse if isinstance(warehouse, str) else None,
                     "order_number": msg.order_number or "", "topic": msg.topic, "message_id": msg.id}
        try:
            with blame(self.plugins.connectors.plugin_of(connector.name), f"connector '{connector.name}' send"):
                connector.send(OutboundMessage(msg.id, msg.order_number, msg.topic, msg.payload,
                                               warehouse if isinstance(warehouse, str) else None, settings), ctx)
        except PluginFault as fault:
            if isinstance(fault.error, MessageRefused):
                ctx.commit()     # the refusal the connector recorded (its callback saying why) stays on record
            else:
                ctx.discard()
            raise
        ctx.commit()
        if doc is not None:
            self.dispatch.sent(s, doc, connector.name, msg.id, cache)
        self.dispatch.delivered(s, msg.topic, msg.payload, connector.name)
        return ""


def _medium(msg: Any) -> str:
    # Notifications are in order per medium; every other kind per order and kind alone.
    return msg.target if msg.kind == Kind.NOTIFICATION else ""


def first_in_line() -> Any:
    """A pending message with no older unsent one before it: in order per order and kind, and notifications per
    medium too, so an SMS waiting out the night (or being retried) holds back no e-mail. Unsent: pending; for an
    event, dead too: a consumer must never see an order's events go on past a gap (docs/events.md), so the later
    ones wait until the dead one is sent again (``oms outbox retry``)."""
    earlier = aliased(OutboxMessage)
    return ~exists().where(earlier.order_id == OutboxMessage.order_id, earlier.kind == OutboxMessage.kind,
                           or_(earlier.kind != Kind.NOTIFICATION.value, earlier.target == OutboxMessage.target),
                           or_(earlier.status == Status.PENDING.value,
                               and_(earlier.status == Status.DEAD.value, earlier.kind == Kind.EVENT.value)),
                           earlier.id < OutboxMessage.id)

"""Callbacks from warehouses and carriers: stored as received, applied in arrival order.

A callback is stored in the inbox first (the API answers 202), then the inbox
stage reads it with its connector's ``parse_callback`` and applies each event
through the status map and the state machine. Whatever cannot be applied
(an unknown order, a status missing from the map, an illegal transition, a
connector that fails to read it) is rejected with the reason, never guessed.
A warehouse's answer to a new delivery address asked of it (kind ``readdress``) is applied by
address_requests.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..invoices.submission import settle as settle_einvoice
from ..orders.machine import TRANSITIONS, Event, IllegalTransition, OrderMachine, State, check
from ..orders.moves import Mover
from ..plugin.contracts import CallbackEvent, Connector
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.db import append, savepoint
from ..storage.models import Exchange, InboxMessage, Order, TrackingEvent
from .address_requests import AddressRequests
from .status_map import StatusEntry, StatusMap
from .stock_documents import DocumentError, apply_ack, apply_report


class InboxStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"     # could not be applied: the outcome says why
    IGNORED = "ignored"       # recorded and harmless: a status the order is already past
    DUPLICATE = "duplicate"   # a callback id delivered before: nothing done


class Callbacks:
    def __init__(self, clock: Clock, plugins: PluginRegistry, status_map: StatusMap, machine: OrderMachine,
                 mover: Mover | None = None) -> None:
        """``mover``: completes a move when the first warehouse stops the order, and reroutes on a shortage."""
        self.clock, self.plugins, self.status_map, self.machine = clock, plugins, status_map, machine
        self.mover = mover
        self.addresses = AddressRequests(clock=clock, outbox=machine.outbox, wms_for=machine.wms_for)
        # Told when a customer-return document is reported received (after-sales cases): (session, document,
        # when) -> what it did, if anything.
        self.on_return: Callable[[Session, str, datetime], str | None] | None = None

    def receive(self, s: Session, source: str, payload: Any, *, flush: bool = True) -> int | None:
        """Store a WMS or carrier callback; it is applied by the next pipeline pass.

        Returns the inbox id (which costs a flush; plugins calling back in bulk skip it).
        """
        if source not in self.plugins.connectors:
            raise LookupError(f"unknown callback source '{source}'")
        body = payload if isinstance(payload, dict) else {"body": payload}
        if not flush:
            append(s, InboxMessage, source=source, payload=body, received_at=self.clock.now(),
                   status=InboxStatus.PENDING.value, outcome="")
            return None
        row = InboxMessage(source=source, payload=body, received_at=self.clock.now())
        s.add(row)
        s.flush()
        return row.id

    def receive_http(self, s: Session, source: str, warehouse: str, body: bytes, content_type: str,
                     callback_id: str) -> int:
        """Store a warehouse's HTTP callback: its bytes as an exchange, and an inbox row the connector reads
        (``callback_body(payload)`` gives the bytes back)."""
        now = self.clock.now()
        exchange = Exchange(at=now, direction="in", kind="callback", connector=source, warehouse=warehouse,
                            order_number="", topic="callback", correlation_id=callback_id, message_id=None,
                            status=None, content_type=content_type[:100], body=body, note="")
        s.add(exchange)
        s.flush()   # its id goes with the inbox row: the order it is about is known once it is read
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode("ascii"), "base64"
        row = InboxMessage(source=source, received_at=now, warehouse=warehouse, correlation_id=callback_id or None,
                           payload={"body": text, "encoding": encoding, "content_type": content_type,
                                    "warehouse": warehouse, "exchange_id": exchange.id})
        s.add(row)
        s.flush()
        return row.id

    def parse(self, source: str, payload: Any) -> Sequence[CallbackEvent]:
        """The connector's reading of a callback; ValueError/LookupError or a PluginFault when it cannot."""
        connector = self.plugins.connectors.get(source)
        try:
            with blame(self.plugins.connectors.plugin_of(source), f"connector '{source}' parse_callback"):
                return list(connector.parse_callback(payload))
        except PluginFault as fault:
            # The contract: ValueError means "malformed callback", the sender's mistake, not a plugin fault.
            if isinstance(fault.error, ValueError | LookupError):
                raise Unreadable(str(fault.error)) from None
            raise

    def apply(self, s: Session, connector: Connector, ev: CallbackEvent, order: Order | None,
              cache: FactCache, *, warehouse: str | None = None) -> str:
        """Apply one event. The outcome reads "<number> <STATUS> -> <state>", "<document> received ...",
        "<number> address request <id> ...", "ignored: ..." (recorded, harmless: a status the order is already
        past, a second answer) or "rejected: <why>"."""
        if ev.kind in ("receipt", "shipped_out"):
            return self._report(s, ev, warehouse)
        if ev.kind == "ack":
            document = str(ev.data.get("document") or "")
            if not document:
                return f"{ev.order_number} {ev.status} (acknowledged)" if ev.order_number else "ignored: empty ack"
            return apply_ack(s, document=document, accepted=bool(ev.data.get("accepted", True)),
                             reason=str(ev.data.get("reason") or ""), at=self.clock.now())
        if ev.kind == "refund":
            refunds = self.machine.refunds
            if refunds is None:
                return "rejected: this OMS keeps no refunds"
            return refunds.settle(s, ev.order_number, ev.status, ev.data, self.clock.now(),
                                  f"{connector.kind}:{connector.name}")
        if ev.kind == "einvoice":
            return settle_einvoice(s, ev.order_number, ev.status, ev.data, self.clock.now())
        if ev.kind == "readdress":
            if connector.kind != "wms":
                return f"rejected: only a warehouse answers about a new address, not {connector.kind} {connector.name}"
            return self.addresses.answer(s, ev, warehouse=warehouse, order=order)
        if ev.kind != "order":
            return f"rejected: unknown kind of callback event '{ev.kind}'"
        if order is None:
            return f"rejected: no order {ev.order_number}"
        try:
            entry = self.status_map.entry(connector, ev.status)
        except LookupError as exc:
            return f"rejected: {exc}"
        try:
            # check() raises before anything is written, so no savepoint is needed.
            check(order, entry.event)
        except IllegalTransition as exc:
            if is_behind(order.status, entry.event):
                outcome = f"ignored: order {order.number}: {ev.status} came after it was {order.status} (out of order)"
            else:
                outcome = f"rejected: {exc}"
            self._track(s, connector, ev, order, entry, outcome)
            return outcome
        if entry.event is Event.SHIP:
            order.tracking_no = str(ev.data.get("tracking_no") or order.tracking_no or "")[:64]
            order.carrier = str(ev.data.get("carrier") or order.carrier or "")[:32]
        note = ev.data.get("note")
        actor, cause = f"{connector.kind}:{connector.name}", f"{ev.status}" + (f" {note}" if note else "")
        if entry.event is Event.INTERCEPT_CONFIRMED and getattr(order, "move_to", None) and self.mover:
            # Stopped so that it can move to another warehouse: it moves, it is not cancelled.
            outcome = self.mover.stopped(s, order, actor=actor, cause=cause)
            self._track(s, connector, ev, order, entry, outcome)
            return outcome
        self.machine.fire(s, order, entry.event, actor=actor, cause=cause, cache=cache,
                          seen=(entry.customer_visible, entry.label))
        if getattr(order, "move_to", None) and entry.event is Event.INTERCEPT_REFUSED and self.mover:
            self.mover.not_stopped(s, order, cause)
        elif entry.event is Event.SHORTAGE and self.mover:
            lines = ev.data.get("lines")
            self.mover.shortage(s, order, lines if isinstance(lines, list) else [], actor=actor,
                                note=str(note or ""))
        outcome = f"{order.number} {ev.status} -> {order.status}"
        self._track(s, connector, ev, order, entry, outcome)
        return outcome

    def _track(self, s: Session, connector: Connector, ev: CallbackEvent, order: Order, entry: StatusEntry,
               outcome: str) -> None:
        """A carrier's event, and a warehouse's the customer sees, in the tracking table: apart from the
        order's status, with where and when the sender says it happened."""
        if connector.kind != "carrier" and not entry.customer_visible:
            return
        now = self.clock.now()
        at = ev.at.astimezone(UTC).replace(tzinfo=None) if ev.at is not None and ev.at.tzinfo else (ev.at or now)
        append(s, TrackingEvent, order_id=order.id, source=connector.name, source_kind=connector.kind,
               status=ev.status[:64], label=entry.label[:200], customer_visible=entry.customer_visible,
               tracking_no=str(ev.data.get("tracking_no") or order.tracking_no or "")[:64],
               place=str(ev.data.get("place") or "")[:200], at=at, received_at=now, outcome=outcome[:200])

    def _report(self, s: Session, ev: CallbackEvent, warehouse: str | None) -> str:
        document = ev.data.get("document")
        if not isinstance(document, str) or not document:
            return f"rejected: a {ev.kind} names its document"
        try:
            with savepoint(s):   # a report posts all of its lines or none
                outcome = apply_report(s, warehouse=warehouse, document=document, lines=ev.data.get("lines"),
                                       at=self.clock.now(), order_id_of=lambda n: s.scalar(
                                           select(Order.id).where(Order.number == n)))
        except DocumentError as exc:
            return f"rejected: {exc}"
        moved = self.on_return(s, document, self.clock.now()) if self.on_return is not None else None
        return f"{outcome}; {moved}" if moved else outcome


# The fulfilment states in the order an order goes through them: a status whose event leads to a state
# at or before the order's own is a late report of a step already taken.
_ALONG = (State.ROUTED, State.DISPATCHED, State.ACCEPTED, State.PICKING, State.PACKED, State.SHIPPED,
          State.IN_TRANSIT, State.OUT_FOR_DELIVERY, State.DELIVERED, State.COMPLETED, State.CLOSED)
_RANK = {st.value: i for i, st in enumerate(_ALONG)}


def is_behind(state: str, event: Event) -> bool:
    """True when every state ``event`` can lead to comes before ``state`` (or is it) in fulfilment."""
    targets = [_RANK[t.value] for (_, e), t in TRANSITIONS.items() if e is event and t.value in _RANK]
    return bool(targets) and state in _RANK and max(targets) <= _RANK[state]


class Unreadable(ValueError):
    """A connector's own refusal of a malformed callback (not a fault of the plugin)."""


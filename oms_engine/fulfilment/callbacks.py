"""Callbacks from warehouses and carriers: stored as received, applied in arrival order.

A callback is stored in the inbox first (the API answers 202), then the inbox
stage reads it with its connector's ``parse_callback`` and applies each event
through the status map and the state machine. Whatever cannot be applied
(an unknown order, a status missing from the map, an illegal transition, a
connector that fails to read it) is rejected with the reason, never guessed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..orders.machine import Event, IllegalTransition, OrderMachine, check
from ..plugin.contracts import CallbackEvent, Connector
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.db import append
from ..storage.models import Exchange, InboxMessage, Order
from .status_map import StatusMap


class InboxStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class Callbacks:
    def __init__(self, clock: Clock, plugins: PluginRegistry, status_map: StatusMap, machine: OrderMachine) -> None:
        self.clock, self.plugins, self.status_map, self.machine = clock, plugins, status_map, machine

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
        s.add(Exchange(at=now, direction="in", kind="callback", connector=source, warehouse=warehouse,
                       order_number="", topic="callback", correlation_id=callback_id, message_id=None, status=None,
                       content_type=content_type[:100], body=body, note=""))
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode("ascii"), "base64"
        row = InboxMessage(source=source, received_at=now, warehouse=warehouse, correlation_id=callback_id or None,
                           payload={"body": text, "encoding": encoding, "content_type": content_type,
                                    "warehouse": warehouse})
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
              cache: FactCache) -> str:
        """Apply one event; the outcome reads "<number> <STATUS> -> <state>" or "rejected: <why>"."""
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
            return f"rejected: {exc}"
        if entry.event is Event.SHIP:
            order.tracking_no = str(ev.data.get("tracking_no") or order.tracking_no or "")[:64]
            order.carrier = str(ev.data.get("carrier") or order.carrier or "")[:32]
        note = ev.data.get("note")
        self.machine.fire(s, order, entry.event, actor=f"{connector.kind}:{connector.name}",
                          cause=f"{ev.status}" + (f" {note}" if note else ""), cache=cache)
        return f"{order.number} {ev.status} -> {order.status}"


class Unreadable(ValueError):
    """A connector's own refusal of a malformed callback (not a fault of the plugin)."""


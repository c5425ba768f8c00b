"""The event sink: one outbox message per order transition, stock movement and money event, in the transaction
that makes it (docs/events.md).

There is a sink only when config ``events.connector`` names a connector of kind
``events`` (:meth:`EventSink.configured`); otherwise there is none, and the
places that would call it pay one ``is None`` test (the order machine) or one
dictionary look-up (the ledgers), nothing per event. Who calls it:

* the order machine (orders/machine.py), on every transition and on an order's
  first state, holding the sink itself;
* every writer of a stock ledger row: the stock ledger's verbs (stock/ledger.py:
  ``post``, ``transfer``, ``count``), the stock batch for the rows it posts
  itself (reservations, their release, sale-outs: stock/batch.py; and for
  openings and reconciliation adjustments, posted through it directly), and
  damaged stock (stock/damaged.py); the payments ledger's rows
  (payments/ledger.py: every payment and refund recorded) and a refund's later
  states (payments/refunds.py). They run deep inside other work and find the
  sink on the session (:data:`EVENTS`, lent by the OMS through
  ``Database.lend``).

Each event goes to its order's queue of the outbox (kind ``event``): an
order's events leave in the order they were written, after the transaction
that wrote them commits, and never without it. A payment and a refund belong
to the order that was paid (a split's parent); a stock movement to the order
it names, or to none (a purchase receipt, a count): those have no order to
keep and are keyed by their document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..messaging.outbox import Kind, OutboxWriter
from ..storage.models import Order
from .schema import EventType, stored

if TYPE_CHECKING:
    from ..config import Events
    from ..plugin.registry import PluginRegistry

# Where a session finds the OMS's sink (Database.lend): the ledgers post inside payments, cancellations, stock
# documents and after-sales, whose callers have no reason to carry it.
EVENTS = "oms_event_sink"
KIND = "events"          # the connector kind that publishes events
_NUMBERS = "oms_event_numbers"   # session.info: order id -> number, read once per session


@dataclass(frozen=True)
class _Order:
    """An order as the outbox names a message's: its id and number."""

    id: int
    number: str


def sink_of(s: Session) -> EventSink | None:
    """The sink of the OMS that opened ``s``; None when it publishes no events (or no OMS opened it)."""
    return s.info.get(EVENTS)


class EventSink:
    def __init__(self, outbox: OutboxWriter, connector: str, source: str) -> None:
        self.outbox, self.connector, self.source = outbox, connector, source

    @classmethod
    def configured(cls, events: Events, plugins: PluginRegistry, outbox: OutboxWriter) -> EventSink | None:
        """The sink config ``events`` asks for, or None; RegistryError when its connector is unknown or is not a
        connector of kind ``events`` (a start that would queue events nobody can publish stops instead)."""
        name = events.connector
        if not name:
            return None
        # Imported here: the ledgers import this module, and the registry reaches far into the core.
        from ..plugin.registry import RegistryError
        connector = plugins.connectors.get(name)
        if connector.kind != KIND:
            raise RegistryError(f"events.connector: connector '{name}' is of kind '{connector.kind}', not "
                                f"'{KIND}' (known: {', '.join(_of_kind(plugins)) or 'none'})")
        return cls(outbox, name, events.source)

    # -- what happened -------------------------------------------------------------------------------------------
    def transition(self, s: Session, order: Any, before: str | None, event: str, target: str, *, actor: str,
                   cause: str, at: datetime) -> None:
        """An order moved from ``before`` to ``target`` (``before`` None: it entered the machine, event create)."""
        # Its number is known here: the stock movements that name the order by id (reservations, by the hundred
        # in a stage) then read none.
        s.info.setdefault(_NUMBERS, {})[order.id] = order.number
        self._queue(s, order, EventType.ORDER_TRANSITION, order.number, at, {
            "order_number": order.number, "from_state": before, "to_state": target, "event": event,
            "actor": actor, "cause": cause})

    def movement(self, s: Session, kind: str, warehouse: str, sku: str, quantity: int, *, on_hand: int,
                 reserved: int, damaged: int, document: str, at: datetime, order_id: int | None,
                 lot: str | None) -> None:
        """A stock ledger row: ``quantity`` as posted (signed for the kinds that carry their sign), and what it
        did to on hand, reserved and damaged stock."""
        number = _number(s, order_id) if order_id is not None else None
        order = _Order(order_id, number) if order_id is not None and number else None
        self._queue(s, order, EventType.STOCK_MOVEMENT, number or document, at, {
            "warehouse": warehouse, "sku": sku, "kind": kind, "quantity": quantity, "on_hand_delta": on_hand,
            "reserved_delta": reserved, "damaged_delta": damaged, "document": document, "order_number": number,
            "lot": lot})

    def money(self, s: Session, order_id: int, number: str, *, serial: str, kind: str, method: str, amount: int,
              currency: str, status: str, at: datetime, provider_ref: str | None, refund_of: str | None,
              for_order: str | None, reason: str) -> None:
        """A payment or refund row of the order ``number`` (the order that was paid)."""
        type_ = EventType.PAYMENT_RECORDED if kind == "payment" else EventType.REFUND_RECORDED
        self._queue(s, _Order(order_id, number), type_, number, at, {
            "order_number": number, "serial": serial, "kind": kind, "method": method, "amount": amount,
            "currency": currency, "status": status, "provider_ref": provider_ref, "refund_of": refund_of,
            "for_order": for_order or number, "reason": reason})

    def refund_status(self, s: Session, order_id: int, number: str, *, serial: str, before: str, after: str,
                      provider_ref: str | None, actor: str, note: str, at: datetime) -> None:
        """A recorded refund of the order ``number`` (the order that was paid) moved from ``before`` to ``after``:
        in the paid order's queue, so it follows the refund's ``refund.recorded``."""
        self._queue(s, _Order(order_id, number), EventType.REFUND_STATUS_CHANGED, number, at, {
            "order_number": number, "serial": serial, "from_status": before, "to_status": after,
            "provider_ref": provider_ref, "actor": actor, "note": note})

    def _queue(self, s: Session, order: Any, type_: EventType, key: str, at: datetime, data: dict[str, Any]) -> None:
        # The outbox's order number column keeps the key when it is an order's; a document's is in the payload.
        self.outbox.enqueue(s, order, Kind.EVENT, self.connector, type_.value,
                            stored(type_, source=self.source, key=key, at=at, data=data),
                            number=order.number if order is not None else "")


def _number(s: Session, order_id: int) -> str | None:
    """An order's number, read once per session: a movement names its order by id."""
    known: dict[int, str | None] = s.info.setdefault(_NUMBERS, {})
    if order_id not in known:
        known[order_id] = s.scalar(select(Order.number).where(Order.id == order_id))
    return known[order_id]


def _of_kind(plugins: PluginRegistry) -> list[str]:
    return [name for name, c in plugins.connectors.items() if c.kind == KIND]

"""The outbox: every side effect leaves the OMS through here.

A message is written in the same transaction as the change that caused it,
then delivered by the outbox stage (pipeline/outbox.py): oldest first, a
message waiting while an older one of its order and kind (notification or
connector document) is unsent, retried with backoff and jitter when delivery
fails (:func:`next_attempt`), dead after :data:`RETRY_LIMIT` attempts: a dead
letter, listed by ``oms outbox dead`` and sent again by ``oms outbox retry``
(dead_letters.py). Every receiver must be idempotent
on the message id: a worker that dies between delivering a message and
recording it as sent leaves it to be delivered again by another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..storage.db import append
from ..storage.models import Order, OutboxMessage

RETRY_LIMIT = 8
MAX_BACKOFF_SECONDS = 6 * 3600


def next_attempt(now: datetime, base_seconds: int, attempts: int, message_id: int) -> datetime:
    """When a message that failed ``attempts`` times is tried again: exponential backoff from ``base_seconds``,
    capped, with up to a fifth more of jitter so the messages of one outage do not all come back at once.
    The jitter is drawn from the message id and attempt, so a run is repeatable."""
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    spread = int.from_bytes(hashlib.sha256(f"{message_id}:{attempts}".encode()).digest()[:4], "big") / 2**32
    return now + timedelta(seconds=delay * (1 + 0.2 * spread))


class Kind(StrEnum):
    NOTIFICATION = "notification"   # target: a medium (sms, email...)
    CONNECTOR = "connector"         # target: a connector name
    # target: the tax platform's connector. A queue of its own per order: a platform that is down holds back
    # no warehouse document or refund, while an order's credit notes still follow its invoice.
    TAX = "tax"
    # target: the events connector (docs/events.md). A queue of its own per order: a broker that is down holds
    # back none of the order's documents or messages, while its events keep their order among themselves.
    EVENT = "event"
    # target: a channel account (channels/reports.py): what the shop is told of its orders. A queue of its own
    # per order: a marketplace that is down holds back no warehouse document, and the shop hears of a shipment
    # before its delivery.
    CHANNEL = "channel"


class Topic(StrEnum):
    WMS_CREATE = "wms.create"                         # a sales order to ship
    WMS_CANCEL = "wms.cancel"
    WMS_INTERCEPT = "wms.intercept"
    WMS_READDRESS = "wms.readdress"                   # a new delivery address, asked of the warehouse holding it
    WMS_PURCHASE_ORDER = "wms.purchase_order"         # goods expected from a supplier
    WMS_RETURN_TO_VENDOR = "wms.return_to_vendor"     # goods to send back to a supplier
    WMS_CUSTOMER_RETURN = "wms.customer_return"       # goods expected back from a customer
    MASTER_ITEM = "master.item"                       # a product, before the first document naming it
    MASTER_SUPPLIER = "master.supplier"
    CARRIER_REGISTER = "carrier.register"
    PAYMENT_REFUND = "payment.refund"                 # a refund owed, to the payment provider
    TAX_EINVOICE = "tax.einvoice"                     # an invoice or credit note, to the tax platform
    CHANNEL_SHIPMENT = "channel.shipment"             # shipped, with the carrier and tracking number
    CHANNEL_TRACKING = "channel.tracking"             # a later step the customer sees (in transit, delivered)
    CHANNEL_CANCEL = "channel.cancel"                 # cancelled here (the whole order, or a split's lines)
    CHANNEL_REFUND = "channel.refund"                 # a refund owed, made at the channel that took the money
    CHANNEL_STOCK = "channel.stock"                   # what a channel may sell of its SKUs (channels/stock_push.py)

    @staticmethod
    def notify(template: str) -> str:
        return f"notify.{template}"


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"             # gave up after RETRY_LIMIT attempts
    WITHDRAWN = "withdrawn"   # no longer wanted: its order moved on before it left


class OutboxWriter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def enqueue(self, s: Session, order: Order | None, kind: Kind, target: str, topic: str,
                payload: Mapping[str, Any], *, number: str | None = None, not_before: datetime | None = None) -> None:
        """``number``: the document's number when it is not the order's (a merged parcel's); ``not_before``: not
        delivered before then (a customer's quiet hours)."""
        now = self.clock.now()
        append(s, OutboxMessage, order_id=order.id if order else None,
               order_number=number or (order.number if order else ""),
               kind=kind.value, target=target, topic=str(topic), payload=dict(payload), created_at=now,
               available_at=max(now, not_before) if not_before is not None else now, status=Status.PENDING.value,
               attempts=0, last_error="")

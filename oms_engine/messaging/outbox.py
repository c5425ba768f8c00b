"""The outbox: every side effect leaves the OMS through here.

A message is written in the same transaction as the change that caused it,
then delivered by the outbox stage (pipeline/outbox.py): oldest first, a
message waiting while an older one of its order and kind (notification or
connector document) is unsent, retried with backoff when delivery fails,
dead after :data:`RETRY_LIMIT` attempts. Every receiver must be idempotent
on the message id: a worker that dies between delivering a message and
recording it as sent leaves it to be delivered again by another.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..storage.db import append
from ..storage.models import Order, OutboxMessage

RETRY_LIMIT = 8


class Kind(StrEnum):
    NOTIFICATION = "notification"   # target: a medium (sms, email...)
    CONNECTOR = "connector"         # target: a connector name


class Topic(StrEnum):
    WMS_CREATE = "wms.create"
    WMS_CANCEL = "wms.cancel"
    WMS_INTERCEPT = "wms.intercept"
    CARRIER_REGISTER = "carrier.register"

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
                payload: Mapping[str, Any]) -> None:
        now = self.clock.now()
        append(s, OutboxMessage, order_id=order.id if order else None, order_number=order.number if order else "",
               kind=kind.value, target=target, topic=str(topic), payload=dict(payload), created_at=now,
               available_at=now, status=Status.PENDING.value, attempts=0, last_error="")

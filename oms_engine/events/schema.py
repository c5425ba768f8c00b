"""The event schema, version ``oms.event/1`` (docs/events.md): the envelope every event travels in and its types.

An event is queued in the outbox as its envelope less the two fields only the
outbox knows (:func:`stored`): the outbox message's id becomes the event's
``sequence`` and part of its ``id`` when it is published (:func:`envelope`).
The id is therefore the same on every attempt to publish one event (a retry,
a publisher killed before it recorded the publish, ``oms outbox retry``), and
two events never share one, which is what a consumer de-duplicates by. The
schema version is stored with each event when it is queued, so an event waiting
in the outbox across an upgrade is published in the version it was written in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA = "oms.event/1"
# The envelope's fields, in the order they are written.
FIELDS = ("id", "schema", "type", "source", "key", "sequence", "at", "data")


class EventType(StrEnum):
    ORDER_TRANSITION = "order.transition"    # an order changed state (or entered the machine: event "create")
    STOCK_MOVEMENT = "stock.movement"        # a stock ledger row, of every kind (movements.py)
    PAYMENT_RECORDED = "payment.recorded"    # a payment received for an order
    REFUND_RECORDED = "refund.recorded"      # a refund owed (or credited back) for an order
    REFUND_STATUS_CHANGED = "refund.status_changed"   # a recorded refund moved on: sent, refunded, failed, due again


def iso(at: datetime) -> str:
    """The OMS keeps UTC without an offset; events say so."""
    return at.isoformat() + "Z"


def stored(type_: EventType, *, source: str, key: str, at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The outbox payload of one event: its envelope without ``id`` and ``sequence``."""
    return {"schema": SCHEMA, "type": type_.value, "source": source, "key": key, "at": iso(at), "data": dict(data)}


def event_id(payload: Mapping[str, Any], sequence: int) -> str:
    """``<source>:<type>:<key>:<sequence>``; unique by the sequence alone, the rest says what it is at a glance."""
    return f"{payload['source']}:{payload['type']}:{payload['key'] or '-'}:{sequence}"


def envelope(sequence: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event as it is published: the stored payload of outbox message ``sequence`` with its id and sequence.
    ValueError for a payload that is not an event's (a message queued for an events connector by mistake)."""
    missing = [f for f in FIELDS if f not in ("id", "sequence") and f not in payload]
    if missing:
        raise ValueError(f"outbox message {sequence} is not an event (missing {', '.join(missing)})")
    full = {**payload, "id": event_id(payload, sequence), "sequence": sequence}
    return {f: full[f] for f in FIELDS}


def encode(event: Mapping[str, Any]) -> bytes:
    """The event's bytes on the wire: compact UTF-8 JSON, fields in envelope order."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

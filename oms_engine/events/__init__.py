"""The event stream for downstream systems (docs/events.md): what the OMS tells a broker or a webhook of every order
transition, stock movement and money event, through the outbox."""

from .schema import SCHEMA, EventType, encode, envelope, event_id
from .sink import EVENTS, KIND, EventSink, sink_of

__all__ = ["EVENTS", "KIND", "SCHEMA", "EventSink", "EventType", "encode", "envelope", "event_id", "sink_of"]

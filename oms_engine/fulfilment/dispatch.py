"""What sending a warehouse document does to its order.

A sales order document (``wms.create``) goes to the warehouse only while its
order is still routed: an order cancelled after routing, before its document
left, has the document withdrawn, so it never reaches the warehouse. Once
the connector has taken it, the order is dispatched, in the transaction that
records the message as sent.

The outbox stage (pipeline/outbox.py) delivers every message alike and asks
this module, for the topics it names, which orders to read (locked first, so
a cancel committed meanwhile is seen, not overwritten), whether a message is
still wanted, and what its sending changes (the order dispatched; the master
data a document carried recorded as the warehouse's, master_sync.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..messaging.outbox import Topic
from ..orders.machine import Event, OrderMachine, State
from ..orders.records import OrderRec, load_records
from ..storage.claims import lock_orders
from . import master_sync


class Dispatch:
    topics = frozenset({Topic.WMS_CREATE.value})

    def __init__(self, *, machine: OrderMachine, facts: FactBuilder) -> None:
        self.machine, self.facts = machine, facts

    def load(self, s: Session, messages: Iterable[Any], cache: FactCache) -> dict[int, OrderRec]:
        """The orders the batch's documents dispatch, locked, read, and described for the notifications
        their dispatch may send."""
        wanted = sorted({m.order_id for m in messages if m.topic in self.topics and m.order_id})
        lock_orders(s, wanted)
        orders = load_records(s, wanted)
        self.facts.facts(s, orders, cache, point=DecisionPoint.NOTIFICATIONS.value)
        return {o.id: o for o in orders}

    @staticmethod
    def withdrawn(order: OrderRec) -> str | None:
        """Why the document must not leave any more (None: it may)."""
        return None if order.status == State.ROUTED.value else f"order {order.number} is {order.status}"

    def sent(self, s: Session, order: OrderRec, connector: str, message_id: int, cache: FactCache) -> None:
        self.machine.fire(s, order, Event.DISPATCH, actor=f"connector:{connector}",
                          cause=f"document {message_id} sent", cache=cache)

    def delivered(self, s: Session, topic: str, payload: Any) -> None:
        """Any connector message has left: the master data it carried is the warehouse's now."""
        if isinstance(payload, dict) and ("master" in payload or topic.startswith("master.")):
            master_sync.record_sent(s, topic, payload, self.machine.clock.now())

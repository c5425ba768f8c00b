"""What sending a warehouse document does to its order.

A sales order document (``wms.create``) goes to the warehouse only while its
orders are still routed: an order cancelled after routing, before its document
left, has the document withdrawn, so it never reaches the warehouse (a
merged parcel's document, once one of its orders left it, is replaced by one
for the rest: the old one is withdrawn). Once the connector has taken it,
its orders are dispatched, in the transaction that records the message as
sent.

The outbox stage (pipeline/outbox.py) delivers every message alike and asks
this module, for the topics it names, which orders to read (locked first, so
a cancel committed meanwhile is seen, not overwritten), whether a message is
still wanted, and what its sending changes (the order dispatched; the master
data a document carried recorded as the warehouse's, master_sync.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..messaging.outbox import Topic
from ..orders.machine import AT_WAREHOUSE, Event, OrderMachine, State
from ..orders.records import OrderRec, load_records
from ..payments.refunds import Refunds
from ..storage.claims import lock_orders
from ..storage.models import MergeGroup, Order
from . import master_sync


class Dispatch:
    topics = frozenset({Topic.WMS_CREATE.value})

    def __init__(self, *, machine: OrderMachine, facts: FactBuilder) -> None:
        self.machine, self.facts = machine, facts

    def load(self, s: Session, messages: Iterable[Any], cache: FactCache) -> dict[int, Documented]:
        """The orders each of the batch's documents dispatches (message id -> them), locked, read, and
        described for the notifications their dispatch may send."""
        docs = [m for m in messages if m.topic in self.topics and m.order_id]
        numbers = {m.id: [str(n) for n in (m.payload.get("orders") if isinstance(m.payload, dict)
                                           and m.payload.get("orders") else [m.order_number])] for m in docs}
        # A single order's document carries its id; only a merged parcel's others are looked up by number.
        ids = {m.order_id for m in docs}
        wanted = sorted({n for m in docs for n in numbers[m.id] if n != m.order_number})
        if wanted:
            ids.update(s.scalars(select(Order.id).where(Order.number.in_(wanted))))
        lock_orders(s, ids)
        orders = load_records(s, sorted(ids))
        self.facts.facts(s, orders, cache, point=DecisionPoint.NOTIFICATIONS.value)
        by_number = {o.number: o for o in orders}
        gids = sorted({o.merge_group_id for o in orders if o.merge_group_id})
        groups = dict(s.execute(select(MergeGroup.id, MergeGroup.number).where(MergeGroup.id.in_(gids)))
                      .all()) if gids else {}
        return {m.id: Documented([by_number[n] for n in numbers[m.id] if n in by_number], len(numbers[m.id]),
                                 groups) for m in docs}

    @staticmethod
    def withdrawn(msg: Any, doc: Documented) -> str | None:
        """Why the document must not leave any more (None: it may)."""
        # A document that replaces one a warehouse holds (an order left a merged parcel) goes to orders the
        # warehouse has already; any other goes only to orders still waiting for it.
        fine = {State.ROUTED.value} | ({s.value for s in AT_WAREHOUSE} if msg.payload.get("replaces") else set())
        if len(doc.orders) < doc.listed:
            return f"an order of document {msg.order_number} is gone"
        for o in doc.orders:
            if o.status not in fine:
                return f"order {o.number} is {o.status}"
            if o.warehouse != msg.payload.get("warehouse"):
                return f"order {o.number} was moved to {o.warehouse}"
        if doc.listed > 1:
            gid = doc.orders[0].merge_group_id
            if gid is None or any(o.merge_group_id != gid for o in doc.orders) \
                    or doc.groups.get(gid) != msg.order_number:
                return f"the orders of {msg.order_number} no longer ship together as it says"
        return None

    def sent(self, s: Session, doc: Documented, connector: str, message_id: int, cache: FactCache) -> None:
        for order in doc.orders:
            if order.status == State.ROUTED.value:
                self.machine.fire(s, order, Event.DISPATCH, actor=f"connector:{connector}",
                                  cause=f"document {message_id} sent", cache=cache)

    def delivered(self, s: Session, topic: str, payload: Any, connector: str = "") -> None:
        """Any connector message has left: the master data it carried is the warehouse's now; a refund is
        with the payment provider."""
        if isinstance(payload, dict) and ("master" in payload or topic.startswith("master.")):
            master_sync.record_sent(s, topic, payload, self.machine.clock.now())
        elif topic == Topic.PAYMENT_REFUND:
            Refunds.sent(s, payload, self.machine.clock.now(), f"payment:{connector}")


@dataclass(frozen=True)
class Documented:
    """The orders a warehouse document names, as read for its sending."""

    orders: list[OrderRec]
    listed: int                      # how many it names (fewer read: one is gone)
    groups: dict[int, str]           # merge group id -> its current document number

"""Documents: a routed order's sales order is queued in the outbox for its warehouse's WMS (with the items
that WMS has not been sent yet, when it wants master data: fulfilment/master_sync.py). A merged group's
orders go as one document, numbered as the group, once each of them is at this step.

The outbox stage sends it (and fulfilment/dispatch.py decides what its
sending does to the order); a document is written in the transaction that
takes the order off this step, so it is queued exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..fulfilment import master_sync
from ..fulfilment.documents import wms_document
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..orders import flow
from ..orders.kits import LOT_TRACKED, stock_skus
from ..orders.machine import State
from ..orders.merging import GroupStatus
from ..orders.records import OrderRec, load_records
from ..stock.lots import held_lots
from ..storage.claims import lock_orders
from ..storage.db import drain
from ..storage.models import MergeGroup, Order, Product
from .stage import StageName, Unit, UnitKind, claim_step


class DocumentsStage:
    name = StageName.DOCUMENTS
    step = flow.Step.DOCUMENT

    def __init__(self, *, batch_size: int, outbox: OutboxWriter, wms_for: Callable[[Session, str], str],
                 wants_master_data: Callable[[str], bool]) -> None:
        self.batch_size, self.outbox, self.wms_for = batch_size, outbox, wms_for
        self.wants_master_data = wants_master_data
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim_step(s, self.step, self.batch_size)
        return self.take(s, ids, cache) if ids else 0

    def take(self, s: Session, ids: Sequence[int], cache: FactCache, records: Sequence[OrderRec] = ()) -> int:
        """Queue the documents of these orders, claimed in this transaction (``records`` read already)."""
        orders = sorted([*records, *load_records(s, ids, customers=False)], key=lambda o: o.id)
        grouped: dict[int, list[OrderRec]] = defaultdict(list)
        for order in orders:
            if order.merge_group_id:
                grouped[order.merge_group_id].append(order)
            else:
                self._send(s, [order], order.number)
        if grouped:
            self._groups(s, grouped)
        self.current = None
        return len(orders)

    def _send(self, s: Session, orders: list[OrderRec], number: str) -> None:
        lead = orders[0]
        self.current = Unit(UnitKind.ORDER, lead.id)
        connector = self.wms_for(s, lead.warehouse)
        kits = [ln for o in orders for ln in o.lines if ln.components]
        names = _names(s, stock_skus(kits)) if kits else None
        lotted = any((ln.attributes or {}).get(LOT_TRACKED) for o in orders for ln in o.lines)
        document = wms_document(orders, number, names, held_lots(s, [o.id for o in orders]) if lotted else None)
        if self.wants_master_data(connector):
            # The items this warehouse's WMS has not been sent at their version go with the document.
            skus = sorted({sku for o in orders for sku in stock_skus(o.lines)})
            carried = master_sync.missing(s, lead.warehouse, skus)
            if carried:
                document["master"] = carried
        self.outbox.enqueue(s, lead, Kind.CONNECTOR, connector, Topic.WMS_CREATE, document, number=number)
        for order in orders:
            flow.advance(order, self.step)

    def _groups(self, s: Session, grouped: dict[int, list[OrderRec]]) -> None:
        """One document per merged group, once every order still in it is at this step."""
        drain(s)
        rows = {g.id: g for g in s.scalars(select(MergeGroup).where(MergeGroup.id.in_(sorted(grouped))))}
        claimed = {o.id for batch in grouped.values() for o in batch}
        members: dict[int, list[int]] = defaultdict(list)
        for oid, gid in s.execute(select(Order.id, Order.merge_group_id).where(
                Order.merge_group_id.in_(sorted(grouped)), Order.status == State.ROUTED.value)):
            members[gid].append(oid)
        others = [i for ids in members.values() for i in ids if i not in claimed]
        lock_orders(s, others)
        by_id = {o.id: o for batch in grouped.values() for o in batch}
        by_id.update({o.id: o for o in load_records(s, others, customers=False)})
        for gid in grouped:
            group = rows[gid]
            orders = [by_id[i] for i in sorted(members[gid]) if i in by_id and by_id[i].merge_group_id == gid]
            if any(o.stage != self.step.value for o in orders):
                continue   # an order of the group is still at an earlier step: the document waits for it
            if len(orders) < 2:
                # The others left the group before its document was written: these go on their own.
                group.status = GroupStatus.DISSOLVED.value
                for o in orders:
                    o.merge_group_id = None
                    self._send(s, [o], o.number)
                continue
            group.status = GroupStatus.SENT.value
            self._send(s, orders, group.number)


def _names(s: Session, skus: set[str]) -> dict[str, str]:
    return dict(s.execute(select(Product.sku, Product.name).where(Product.sku.in_(sorted(skus)))).all())

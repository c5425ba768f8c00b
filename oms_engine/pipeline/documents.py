"""Documents: a routed order's sales order is queued in the outbox for its warehouse's WMS (with the items
that WMS has not been sent yet, when it wants master data: fulfilment/master_sync.py).

The outbox stage sends it (and fulfilment/dispatch.py decides what its
sending does to the order); a document is written in the transaction that
takes the order off this step, so it is queued exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..fulfilment import master_sync
from ..fulfilment.documents import wms_document
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..orders import flow
from ..orders.records import load_records
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
        if not ids:
            return 0
        for order in load_records(s, ids, customers=False):
            self.current = Unit(UnitKind.ORDER, order.id)
            connector = self.wms_for(s, order.warehouse)
            document = wms_document(order)
            if self.wants_master_data(connector):
                # The items this warehouse's WMS has not been sent at their version go with the document.
                carried = master_sync.missing(s, order.warehouse, [ln.sku for ln in order.lines])
                if carried:
                    document["master"] = carried
            self.outbox.enqueue(s, order, Kind.CONNECTOR, connector, Topic.WMS_CREATE, document)
            flow.advance(order, self.step)
        self.current = None
        return len(ids)

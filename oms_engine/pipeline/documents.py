"""Documents: a routed order's sales order is queued in the outbox for its warehouse's WMS.

The outbox stage sends it (and fulfilment/dispatch.py decides what its
sending does to the order); a document is written in the transaction that
takes the order off this step, so it is queued exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactCache
from ..fulfilment.documents import wms_document
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..orders import flow
from ..orders.records import load_records
from .stage import StageName, Unit, UnitKind, claim_step


class DocumentsStage:
    name = StageName.DOCUMENTS
    step = flow.Step.DOCUMENT

    def __init__(self, *, batch_size: int, outbox: OutboxWriter, wms_for: Callable[[Session, str], str]) -> None:
        self.batch_size, self.outbox, self.wms_for = batch_size, outbox, wms_for
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim_step(s, self.step, self.batch_size)
        if not ids:
            return 0
        for order in load_records(s, ids):
            self.current = Unit(UnitKind.ORDER, order.id)
            self.outbox.enqueue(s, order, Kind.CONNECTOR, self.wms_for(s, order.warehouse), Topic.WMS_CREATE,
                                wms_document(order))
            flow.advance(order, self.step)
        self.current = None
        return len(ids)

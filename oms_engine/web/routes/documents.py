"""Goods-in and goods-out documents (purchase orders, returns to vendors, customer returns) and the outbox's
dead letters, over the API: the same services as ``oms documents`` and ``oms outbox``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import Blueprint, Response
from pydantic import Field

from ...fulfilment.stock_documents import DocKind, DocumentError, DocumentLookup, LineIn, Status
from ...messaging.dead_letters import RequeueRefused
from ...orders.canonical import Id32, Id64, Note, SingleLine
from ..auth import ACT, ADMIN, READ, actor, requires
from ..errors import ApiError, json_response, problem
from ..openapi import body, operation, query
from ..requests import oms
from ..schemas import (
    DB_INT_MAX,
    Answer,
    Body,
    DecimalText,
    PageQuery,
    Text,
    cursor_id,
    encode_cursor,
    one_of,
    query_int,
)

bp = Blueprint("documents", __name__)
TAGS = ["documents"]

DocKindName = one_of(*(k.value for k in DocKind))
DocStatusName = one_of(*(s.value for s in Status))


class DocumentsQuery(PageQuery):
    kind: DocKindName | None = None
    status: DocStatusName | None = None
    warehouse: Annotated[Text | None, Field(description="only this warehouse's")] = None


class DocumentLine(Answer):
    line_no: int
    sku: str
    quantity: int
    done: int = Field(description="received or sent so far, as the warehouse said")
    unit_cost: int | None = Field(description="minor units")
    lot: str | None
    expires_on: str | None


class WarehouseDocument(Answer):
    number: str
    kind: str
    warehouse: str
    supplier: str | None
    order_number: str | None
    status: str
    expected_at: str | None
    note: str | None
    actor: str | None
    created_at: str
    updated_at: str
    lines: list[DocumentLine]


class DocumentPage(Answer):
    documents: list[WarehouseDocument]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


class DocumentLineBody(Body):
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=10**9)]
    unit_cost: DecimalText | None = Field(None, description="a purchase's price in the product's currency")


class DocumentBody(Body):
    kind: DocKindName
    warehouse: Id32
    supplier: Id32 | None = Field(None, description="a purchase order's or a return to a vendor's")
    order_number: Annotated[str, Field(strict=True, max_length=32), SingleLine] | None = Field(
        None, description="a customer return's order")
    expected_at: datetime | None = None
    note: Note = ""
    lines: Annotated[list[DocumentLineBody], Field(min_length=1, max_length=1000)]


class DeadQuery(PageQuery):
    limit: query_int(1, 1000, "rows per page") = 100
    target: Annotated[Text | None, Field(description="only those for this medium or connector")] = None


class OutboxMessage(Answer):
    id: int
    order_number: str | None
    kind: str
    target: str
    topic: str
    status: str
    attempts: int
    last_error: str | None
    created_at: str
    available_at: str
    sent_at: str | None


class DeadLetterPage(Answer):
    messages: list[OutboxMessage]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


@bp.errorhandler(DocumentLookup)
def _missing(exc: DocumentLookup) -> Response:
    return problem(404, str(exc))


@bp.errorhandler(DocumentError)
def _refused(exc: DocumentError) -> Response:
    return problem(409, str(exc))


@bp.get("/api/documents")
@requires(READ)
@operation(query=DocumentsQuery, answers={200: DocumentPage}, tags=TAGS)
def documents() -> Response:
    """Documents, newest first, a page at a time."""
    q = query(DocumentsQuery)
    rows, last = oms().documents.page(kind=q.kind, status=q.status, warehouse=q.warehouse or None, limit=q.limit,
                                      before_id=cursor_id(q.cursor))
    return json_response({"documents": rows, "next": encode_cursor(last) if last is not None else None})


@bp.get("/api/documents/<number>")
@requires(READ)
@operation(answers={200: WarehouseDocument}, tags=TAGS, refusals=(404,))
def document(number: str) -> Response:
    """One document and its lines."""
    return json_response(oms().documents.get(number))


@bp.post("/api/documents")
@requires(ACT)
@operation(body=DocumentBody, answers={201: WarehouseDocument}, tags=TAGS, refusals=(409,))
def create() -> Response:
    """A purchase order, a return to a vendor or a customer return, queued for the warehouse's WMS."""
    data = body(DocumentBody)
    expected = data.expected_at.replace(tzinfo=None) if data.expected_at else None
    doc = oms().documents.create(DocKind(data.kind), data.warehouse,
                                 [LineIn(ln.sku, ln.quantity, ln.unit_cost) for ln in data.lines], actor=actor(),
                                 supplier=data.supplier, order_number=data.order_number, expected_at=expected,
                                 note=data.note)
    return json_response(doc, 201)


@bp.post("/api/documents/<number>/cancel")
@requires(ACT)
@operation(body=Body, answers={200: WarehouseDocument}, tags=TAGS, refusals=(404, 409))
def cancel(number: str) -> Response:
    """Cancel a document the warehouse has done nothing with yet."""
    return json_response(oms().documents.cancel(number, actor=actor()))


@bp.get("/api/outbox/dead")
@requires(READ)
@operation(query=DeadQuery, answers={200: DeadLetterPage}, tags=["outbox"])
def dead() -> Response:
    """Messages given up after every retry, newest first, a page at a time."""
    q = query(DeadQuery)
    rows = oms().dead_letters.list(target=q.target or None, limit=q.limit + 1, before_id=cursor_id(q.cursor))
    more = len(rows) > q.limit
    return json_response({"messages": rows[:q.limit], "next": encode_cursor(rows[q.limit - 1]["id"]) if more else None})


@bp.post("/api/outbox/<int:message_id>/retry")
@requires(ADMIN)
@operation(body=Body, answers={200: OutboxMessage}, tags=["outbox"], refusals=(404, 409))
def retry(message_id: int) -> Response:
    """Send a dead message again (the same message: its receiver recognises it); 409 when it is not dead."""
    try:
        if message_id > DB_INT_MAX:   # past what an id column holds: no such message, not a database error
            raise RequeueRefused(f"no outbox message {message_id}")
        return json_response(oms().dead_letters.requeue(message_id, actor=actor()))
    except RequeueRefused as exc:
        raise ApiError(409, str(exc)) from None

"""Goods-in and goods-out documents (purchase orders, returns to vendors, customer returns) and the outbox's
dead letters, over the API: the same services as ``oms documents`` and ``oms outbox``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...fulfilment.stock_documents import DocKind, DocumentError, DocumentLookup, LineIn
from ...messaging.dead_letters import RequeueRefused
from ...orders.canonical import Id32, Id64, Note, SingleLine
from ..auth import ACT, ADMIN, READ, actor, requires
from ..errors import ApiError, json_response
from ..requests import body_json, body_object, int_param, oms

bp = Blueprint("documents", __name__)

Cost = Annotated[str, Field(strict=True, max_length=40, pattern=r"^[0-9]+(\.[0-9]+)?$")]


class LineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=10**9)]
    unit_cost: Cost | None = None


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["purchase_order", "return_to_vendor", "customer_return"]
    warehouse: Id32
    supplier: Id32 | None = None
    order_number: Annotated[str, Field(strict=True, max_length=32), SingleLine] | None = None
    expected_at: datetime | None = None
    note: Note = ""
    lines: Annotated[list[LineBody], Field(min_length=1, max_length=1000)]


@bp.errorhandler(DocumentLookup)
def _missing(exc: DocumentLookup) -> Response:
    return json_response({"error": str(exc)}, 404)


@bp.errorhandler(DocumentError)
def _refused(exc: DocumentError) -> Response:
    return json_response({"error": str(exc)}, 409)


@bp.get("/api/documents")
@requires(READ)
def documents() -> Response:
    kind = request.args.get("kind") or None
    if kind is not None and kind not in {k.value for k in DocKind}:
        raise ApiError(400, f"unknown kind '{kind[:40]}'; valid: {', '.join(k.value for k in DocKind)}")
    limit = int_param("limit", 50, 1, 500)
    assert limit is not None
    rows = oms().documents.list(kind=kind, status=request.args.get("status") or None,
                                warehouse=request.args.get("warehouse") or None, limit=limit,
                                before_id=int_param("before_id", None, 1))
    return json_response({"documents": rows})


@bp.get("/api/documents/<number>")
@requires(READ)
def document(number: str) -> Response:
    return json_response(oms().documents.get(number))


@bp.post("/api/documents")
@requires(ACT)
def create() -> Response:
    """A purchase order, a return to a vendor or a customer return, queued for the warehouse's WMS."""
    try:
        body = DocumentBody.model_validate(body_json())
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ApiError(400, f"field '{'.'.join(map(str, err['loc'])) or 'body'}': {err['msg']}") from None
    expected = body.expected_at.replace(tzinfo=None) if body.expected_at else None
    doc = oms().documents.create(DocKind(body.kind), body.warehouse,
                                 [LineIn(ln.sku, ln.quantity, ln.unit_cost) for ln in body.lines], actor=actor(),
                                 supplier=body.supplier, order_number=body.order_number, expected_at=expected,
                                 note=body.note)
    return json_response(doc, 201)


@bp.post("/api/documents/<number>/cancel")
@requires(ACT)
def cancel(number: str) -> Response:
    body_object((), optional=True)
    return json_response(oms().documents.cancel(number, actor=actor()))


@bp.get("/api/outbox/dead")
@requires(READ)
def dead() -> Response:
    limit = int_param("limit", 100, 1, 1000)
    assert limit is not None
    rows = oms().dead_letters.list(target=request.args.get("target") or None, limit=limit,
                                   before_id=int_param("before_id", None, 1))
    return json_response({"messages": rows})


@bp.post("/api/outbox/<int:message_id>/retry")
@requires(ADMIN)
def retry(message_id: int) -> Response:
    body_object((), optional=True)
    try:
        return json_response(oms().dead_letters.requeue(message_id, actor=actor()))
    except RequeueRefused as exc:
        raise ApiError(409, str(exc)) from None

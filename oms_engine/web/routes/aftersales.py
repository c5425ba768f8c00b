"""After-sales cases: opened on an order, read, and decided by support staff (aftersales/service.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from flask import Blueprint, Response
from pydantic import BeforeValidator, Field

from ...aftersales.cases import CaseKind, CaseState
from ...aftersales.receipt import ReceiptError
from ...aftersales.service import ACTIONS
from ...orders.canonical import Note
from ..auth import ACT, READ, actor, requires
from ..errors import ApiError, json_response, problem
from ..openapi import body, operation, query
from ..requests import oms
from ..schemas import Answer, Body, Limit, NoteBody, PageQuery, Text, cursor_id, encode_cursor, one_of

MAX_TEXT = 2000

bp = Blueprint("aftersales", __name__)
TAGS = ["after-sales"]
# The most units of one SKU a receipt says damaged: a typo past it, never a parcel.
MAX_DAMAGED = 100_000
# The most units of an order line a case names.
MAX_UNITS = 100_000
DEFAULT_PAGE = 100


def _bad_receipt(exc: ReceiptError) -> Response:
    # Damaged units that do not fit the case's goods are the request's mistake, like a malformed one.
    return problem(400, str(exc))


bp.register_error_handler(ReceiptError, _bad_receipt)


def _whole(high: int) -> Callable[[object], object]:
    def check(value: object) -> object:
        # Before pydantic's own check: true is no number of units, and 2.0 is not whole here either.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= high:
            raise ValueError(f"a whole number from 1 to {high:,}, got {repr(value)[:40]}")
        return value
    return check


def _sku(value: object) -> object:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise ValueError("a SKU of 1 to 64 characters")
    return value


def _non_empty(kind: type, message: str) -> BeforeValidator:
    """Refuses a value that is not a non-empty ``kind`` with ``message`` (pydantic's own says less)."""
    def check(value: object) -> object:
        if value is not None and (not isinstance(value, kind) or not value):
            raise ValueError(message)
        return value
    return BeforeValidator(check)


# The constraints before the validator, so that the document says minimum/maximum (after it: pydantic's ge/le).
Units = Annotated[int, Field(ge=1, le=MAX_UNITS), BeforeValidator(_whole(MAX_UNITS))]
Sku = Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_sku)]
Damaged = Annotated[int, Field(ge=1, le=MAX_DAMAGED), BeforeValidator(_whole(MAX_DAMAGED))]
CaseNote = Annotated[Note, Field(max_length=MAX_TEXT)]


class CaseLine(Body):
    line_no: Units
    quantity: Units
    exchange_to: Sku | None = Field(None, description="in an exchange: another product at the same catalogue price "
                                                      "the units are exchanged for (none: the same SKU)")


class OpenCaseBody(Body):
    # Not an enum: an unknown kind is the service's refusal (409), naming the kinds there are.
    kind: Annotated[str, Field(strict=True, min_length=1, max_length=32,
                               description=f"one of {', '.join(k.value for k in CaseKind)}")]
    lines: Annotated[Annotated[list[CaseLine], Field(min_length=1)] | None,
                     _non_empty(list, 'must be a non-empty list of {"line_no", "quantity"}')] = Field(
        None, description="the units claimed; none: every unit not in a case yet")
    reason: CaseNote = ""


class ReceiveBody(NoteBody):
    damaged: Annotated[Annotated[dict[Sku, Damaged], Field(min_length=1)] | None,
                       _non_empty(dict, "must be a non-empty object of SKU: units that came back damaged")] = Field(
        None, description="SKU: the units of it that came back damaged (kept apart from sellable stock)")


CaseStatus = one_of(*(s.value for s in CaseState))
CaseKindName = one_of(*(k.value for k in CaseKind))


class CasesQuery(PageQuery):
    limit: Limit = DEFAULT_PAGE
    status: CaseStatus | None = Field(None, description="under_review: the queue of cases waiting for a person")
    kind: CaseKindName | None = None
    order: Text | None = Field(None, description="the cases of this order (its number)")


class CaseSummary(Answer):
    number: str
    order: str
    kind: str
    status: str
    amount: int = Field(description="minor units")
    amount_text: str


class CasePage(Answer):
    cases: list[CaseSummary]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


class Case(Answer):
    """A case: its lines, worth, decision, refunds and history."""

    number: str
    kind: str
    status: str
    lines: list[dict[str, Any]]
    amount: int = Field(description="minor units")
    amount_text: str
    refunds: list[dict[str, Any]]
    history: list[dict[str, Any]]


@bp.post("/api/orders/<number>/aftersales")
@requires(ACT)
@operation(body=OpenCaseBody, answers={201: Case}, tags=TAGS, refusals=(404, 409))
def open_case(number: str) -> Response:
    """Open an after-sales case on an order; the rules decide it at once (approved, left to a person, denied)."""
    data = body(OpenCaseBody)
    lines: dict[int, int] | None = None
    swaps: dict[int, str] = {}
    if data.lines is not None:
        lines = {}
        for line in data.lines:
            lines[line.line_no] = lines.get(line.line_no, 0) + line.quantity
            if line.exchange_to is not None:
                swaps[line.line_no] = line.exchange_to
    case = oms().aftersales.open(number, data.kind, lines, data.reason, actor=actor(), exchange_to=swaps)
    return json_response(case, 201)


@bp.get("/api/aftersales")
@requires(READ)
@operation(query=CasesQuery, answers={200: CasePage}, tags=TAGS)
def list_cases() -> Response:
    """Cases, newest first, a page at a time (status=under_review: the queue waiting for a person)."""
    q = query(CasesQuery)
    cases, last = oms().aftersales.page(status=q.status, kind=q.kind, order=q.order or None, limit=q.limit,
                                        before_id=cursor_id(q.cursor))
    return json_response({"cases": cases, "next": encode_cursor(last) if last is not None else None})


@bp.get("/api/aftersales/<case>")
@requires(READ)
@operation(answers={200: Case}, tags=TAGS, refusals=(404,))
def show_case(case: str) -> Response:
    """A case with its history."""
    return json_response(oms().aftersales.get(case))


@bp.post("/api/aftersales/<case>/receive")
@requires(ACT)
@operation(body=ReceiveBody, answers={200: Case}, tags=TAGS, refusals=(404, 409))
def receive_case(case: str) -> Response:
    """Record a case's goods back when the warehouse did not, and which of them came back damaged."""
    data = body(ReceiveBody)
    return json_response(oms().aftersales.act(case, "receive", actor=actor(), note=data.note,
                                              damaged=dict(data.damaged) if data.damaged is not None else None))


@bp.post("/api/aftersales/<case>/<action>")
@requires(ACT)
@operation(body=NoteBody, answers={200: Case}, tags=TAGS, refusals=(404, 409))
def act_on_case(case: str, action: str) -> Response:
    """Decide a case: approve, deny, appeal, cancel, or refund (pay it back now); 409 when its state does not."""
    if action not in ACTIONS:
        raise ApiError(404, f"no action '{action}' on a case (actions: {', '.join(ACTIONS)})")
    return json_response(oms().aftersales.act(case, action, actor=actor(), note=body(NoteBody).note))

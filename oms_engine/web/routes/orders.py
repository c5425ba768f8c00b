"""Orders: search, an order's whole story, the hold queue, and the commands support staff give."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from flask import Blueprint, Response
from pydantic import BeforeValidator, Field

from ...money import MoneyError, to_minor
from ...orders.canonical import Id32
from ...orders.explain import explain
from ...orders.machine import State
from ...orders.queries import OrderSearch, get_order, hold_queue, search_orders
from ...payments.ledger import payments_of
from .. import audit
from ..auth import ACT, READ, actor, requires
from ..errors import ApiError, json_response
from ..openapi import body, operation, query
from ..requests import oms
from ..schemas import (
    MAX_LIMIT,
    Answer,
    Body,
    DateRangeQuery,
    Limit,
    NoteBody,
    OrderStatus,
    PageQuery,
    Text,
    cursor_id,
    decode_cursor,
    encode_cursor,
)

# Order.payment_txn is String(128): PostgreSQL would refuse a longer one.
MAX_TRANSACTION_ID = 128

bp = Blueprint("orders", __name__)
TAGS = ["orders"]

StatusName = Literal[tuple(s.value for s in State)]  # type: ignore[valid-type]


class OrdersQuery(DateRangeQuery):
    status: StatusName | None = None
    customer: Text | None = Field(None, description="the customer's ref")
    channel: Text | None = None
    warehouse: Text | None = None
    hold_reason: Text | None = Field(None, description="words of the reason an order is held for")
    q: Text | None = Field(None, description="the start of an order number or of the channel's order id")


class OrderSummary(Answer):
    number: str
    status: str
    channel: str
    external_id: str
    customer: str | None
    currency: str
    payable: int = Field(description="minor units")
    warehouse: str | None
    hold_reason: str | None
    placed_at: str | None
    parent: str | None


class OrderPage(Answer):
    orders: list[OrderSummary]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


class HoldsQuery(PageQuery):
    limit: Limit = MAX_LIMIT
    hold_reason: Text | None = Field(None, description="words of the hold reason")


class Held(OrderSummary):
    hold_stage: str | None
    held_since: str


class HoldPage(Answer):
    holds: list[Held]
    total: int = Field(description="held orders in all (matching hold_reason)")
    next: str | None


class OrderStory(Answer):
    """An order's whole story (docs/api.md): its amounts, lines, children, reservations, history, decisions,
    messages, callbacks, incidents, updates from its channel and new addresses asked of its warehouse."""

    number: str
    status: str


class MoveBody(Body):
    warehouse: Id32
    note: Annotated[str, Field(max_length=2000)] = ""


class Moved(OrderStatus):
    warehouse: str | None
    moving_to: str | None
    outcome: str


def _decimal_text(value: object) -> object:
    if not isinstance(value, str):
        # A JSON number would go through a float somewhere on the way; money never does.
        raise ValueError('must be a decimal string such as "123.00", never a JSON number')
    return value


class PaymentBody(Body):
    amount: Annotated[str, BeforeValidator(_decimal_text),
                      Field(max_length=40, description='a decimal string such as "123.00", never a JSON number')]
    transaction_id: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_TRANSACTION_ID)]
    method: Annotated[str, Field(strict=True, max_length=64)] = ""


class Paid(OrderStatus):
    payments: list[dict[str, object]]


class RefundRetried(Answer):
    serial: str
    status: str


@bp.get("/api/orders")
@requires(READ)
@operation(query=OrdersQuery, answers={200: OrderPage}, tags=TAGS)
def list_orders() -> Response:
    """Orders, newest first, a page at a time."""
    q = query(OrdersQuery)
    search = OrderSearch(status=State(q.status) if q.status else None, customer=q.customer or None,
                         channel=q.channel or None, q=q.q or None, limit=q.limit, before_id=cursor_id(q.cursor),
                         warehouse=q.warehouse or None, placed_from=q.since, placed_until=q.until,
                         hold_reason=q.hold_reason or None)
    with oms().db.read() as s:
        rows, last = search_orders(s, search)
    return json_response({"orders": rows, "next": encode_cursor(last) if last is not None else None})


@bp.get("/api/orders/<number>")
@requires(READ)
@operation(answers={200: OrderStory}, tags=TAGS, refusals=(404,))
def show_order(number: str) -> Response:
    """An order's whole story."""
    with oms().db.read() as s:
        return json_response(explain(s, number))


@bp.get("/api/holds")
@requires(READ)
@operation(query=HoldsQuery, answers={200: HoldPage}, tags=TAGS)
def holds() -> Response:
    """The hold queue, longest waiting first."""
    q = query(HoldsQuery)
    after = None
    if q.cursor is not None:
        at, ident = decode_cursor(q.cursor, 2)
        try:
            after = (datetime.fromisoformat(at), int(ident))
        except ValueError:
            raise ApiError(400, "parameter 'cursor' is not a cursor this list gave", field="cursor") from None
    with oms().db.read() as s:
        rows, total, last = hold_queue(s, q.limit, after=after, reason=q.hold_reason or None)
    cursor = encode_cursor(last[0].isoformat(), last[1]) if last is not None else None
    return json_response({"holds": rows, "total": total, "next": cursor})


def _status_before(number: str) -> None:
    """The order as it was, for the audit (the command's answer is the after)."""
    with oms().db.read() as s:
        order = get_order(s, number)
        audit.before({"number": number, "status": order.status, "hold_reason": order.hold_reason})


def _done(number: str, status: str) -> Response:
    audit.after({"number": number, "status": status})
    return json_response({"number": number, "status": status})


_COMMAND = {"body": NoteBody, "answers": {200: OrderStatus}, "tags": TAGS, "refusals": (404, 409)}


@bp.post("/api/orders/<number>/release")
@requires(ACT)
@operation(**_COMMAND)  # type: ignore[arg-type]
def release(number: str) -> Response:
    """Release a held order: it goes on from where it was held."""
    _status_before(number)
    return _done(number, oms().commands.release(number, actor=actor(), note=body(NoteBody).note))


@bp.post("/api/orders/<number>/reject")
@requires(ACT)
@operation(**_COMMAND)  # type: ignore[arg-type]
def reject(number: str) -> Response:
    """Reject a held order: cancelled, its money owed back."""
    _status_before(number)
    return _done(number, oms().commands.reject(number, actor=actor(), note=body(NoteBody).note))


@bp.post("/api/orders/<number>/bin")
@requires(ACT)
@operation(**_COMMAND)  # type: ignore[arg-type]
def bin_order(number: str) -> Response:
    """Into the recycle bin: stock freed now; cancelled (refunded, its channel told) when its time there ends."""
    _status_before(number)
    return _done(number, oms().commands.bin(number, actor=actor(), note=body(NoteBody).note))


@bp.post("/api/orders/<number>/restore")
@requires(ACT)
@operation(**_COMMAND)  # type: ignore[arg-type]
def restore(number: str) -> Response:
    """Out of the recycle bin, back to the review queue, its stock reserved again as far as it goes."""
    _status_before(number)
    return _done(number, oms().commands.restore(number, actor=actor(), note=body(NoteBody).note))


@bp.post("/api/orders/<number>/cancel")
@requires(ACT)
@operation(**_COMMAND)  # type: ignore[arg-type]
def cancel(number: str) -> Response:
    """Cancel an order; once picking started, the warehouse is asked to intercept it."""
    _status_before(number)
    return _done(number, oms().commands.cancel(number, actor=actor(), reason=body(NoteBody).note))


@bp.post("/api/orders/<number>/intercept")
@requires(ACT)
@operation(**_COMMAND)  # type: ignore[arg-type]
def intercept(number: str) -> Response:
    """Ask the warehouse (or the carrier) to stop an order on its way."""
    _status_before(number)
    return _done(number, oms().commands.intercept(number, actor=actor(), reason=body(NoteBody).note))


@bp.post("/api/orders/<number>/move")
@requires(ACT)
@operation(body=MoveBody, answers={200: Moved}, tags=TAGS, refusals=(404, 409))
def move(number: str) -> Response:
    """Send a routed order to another warehouse (orders/moves.py): 409 with the reason when it cannot go."""
    data = body(MoveBody)
    _status_before(number)
    outcome = oms().commands.move(number, data.warehouse, actor=actor(), reason=data.note)
    with oms().db.read() as s:
        order = get_order(s, number)
        moved = {"number": number, "status": order.status, "warehouse": order.warehouse,
                 "moving_to": order.move_to, "outcome": outcome}
    audit.after(moved)
    return json_response(moved)


@bp.post("/api/payments/<serial>/retry")
@requires(ACT)
@operation(body=Body, answers={200: RefundRetried}, tags=["payments"], refusals=(404, 409))
def retry_refund(serial: str) -> Response:
    """A refund the payment provider refused, sent once more."""
    return json_response({"serial": serial, "status": oms().commands.retry_refund(serial, actor=actor())})


@bp.post("/api/orders/<number>/payments")
@requires(ACT)
@operation(body=PaymentBody, answers={200: Paid}, tags=TAGS, refusals=(404, 409))
def pay(number: str) -> Response:
    """Record a payment of an order; money it may not keep is recorded and owed back."""
    data = body(PaymentBody)
    with oms().db.read() as s:
        currency = get_order(s, number).currency
    try:
        amount = to_minor(data.amount, currency)
    except MoneyError as exc:
        raise ApiError(400, f"field 'amount': {exc}", field="amount") from None
    _status_before(number)
    status = oms().commands.pay(number, amount, data.transaction_id, method=data.method, actor=actor())
    audit.after({"number": number, "status": status})
    with oms().db.read() as s:
        payments = payments_of(s, get_order(s, number))
    return json_response({"number": number, "status": status, "payments": payments})

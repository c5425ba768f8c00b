"""Orders: search, an order's whole story, the hold queue, and the commands support staff give."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ...money import MoneyError, to_minor
from ...orders.explain import explain
from ...orders.machine import State
from ...orders.queries import OrderSearch, get_order, hold_queue, search_orders
from ...payments.ledger import payments_of
from ..auth import ACT, READ, actor, requires
from ..errors import ApiError, json_response
from ..requests import DEFAULT_LIMIT, MAX_LIMIT, body_object, int_param, json_type, oms, string_field

MAX_NOTE = 2000
# Order.payment_txn is String(128): PostgreSQL would refuse a longer one.
MAX_TRANSACTION_ID = 128

bp = Blueprint("orders", __name__)


@bp.get("/api/orders")
@requires(READ)
def list_orders() -> Response:
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in State}:
        raise ApiError(400, f"unknown status '{status}'; valid: {', '.join(s.value for s in State)}")
    limit = int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    search = OrderSearch(status=State(status) if status else None, customer=request.args.get("customer") or None,
                         channel=request.args.get("channel") or None,
                         q=(request.args.get("q") or "").strip() or None, limit=limit,
                         before_id=int_param("before_id", None, 1))
    with oms().db.read() as s:
        rows, cursor = search_orders(s, search)
    return json_response({"orders": rows, "next": cursor})


@bp.get("/api/orders/<number>")
@requires(READ)
def show_order(number: str) -> Response:
    with oms().db.read() as s:
        return json_response(explain(s, number))


@bp.get("/api/holds")
@requires(READ)
def holds() -> Response:
    limit = int_param("limit", MAX_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    with oms().db.read() as s:
        rows, total = hold_queue(s, limit)
    return json_response({"holds": rows, "total": total})


def _note() -> str:
    return string_field(body_object(("note",), optional=True), "note", required=False, max_len=MAX_NOTE)


def _done(number: str, status: str) -> Response:
    return json_response({"number": number, "status": status})


@bp.post("/api/orders/<number>/release")
@requires(ACT)
def release(number: str) -> Response:
    note = _note()
    return _done(number, oms().commands.release(number, actor=actor(), note=note))


@bp.post("/api/orders/<number>/reject")
@requires(ACT)
def reject(number: str) -> Response:
    note = _note()
    return _done(number, oms().commands.reject(number, actor=actor(), note=note))


@bp.post("/api/orders/<number>/bin")
@requires(ACT)
def bin_order(number: str) -> Response:
    """Into the recycle bin: stock freed now; cancelled (refunded, its channel told) when its time there ends."""
    note = _note()
    return _done(number, oms().commands.bin(number, actor=actor(), note=note))


@bp.post("/api/orders/<number>/restore")
@requires(ACT)
def restore(number: str) -> Response:
    """Out of the recycle bin, back to the review queue, its stock reserved again as far as it goes."""
    note = _note()
    return _done(number, oms().commands.restore(number, actor=actor(), note=note))


@bp.post("/api/orders/<number>/cancel")
@requires(ACT)
def cancel(number: str) -> Response:
    note = _note()
    return _done(number, oms().commands.cancel(number, actor=actor(), reason=note))


@bp.post("/api/orders/<number>/intercept")
@requires(ACT)
def intercept(number: str) -> Response:
    note = _note()
    return _done(number, oms().commands.intercept(number, actor=actor(), reason=note))


@bp.post("/api/orders/<number>/move")
@requires(ACT)
def move(number: str) -> Response:
    """Send a routed order to another warehouse (orders/moves.py): 409 with the reason when it cannot go."""
    data = body_object(("warehouse", "note"))
    warehouse = string_field(data, "warehouse", required=True, max_len=32)
    note = string_field(data, "note", required=False, max_len=MAX_NOTE)
    outcome = oms().commands.move(number, warehouse, actor=actor(), reason=note)
    with oms().db.read() as s:
        order = get_order(s, number)
        return json_response({"number": number, "status": order.status, "warehouse": order.warehouse,
                              "moving_to": order.move_to, "outcome": outcome})


@bp.post("/api/payments/<serial>/retry")
@requires(ACT)
def retry_refund(serial: str) -> Response:
    """A refund the payment provider refused, sent once more."""
    body_object((), optional=True)
    return json_response({"serial": serial, "status": oms().commands.retry_refund(serial, actor=actor())})


@bp.post("/api/orders/<number>/payments")
@requires(ACT)
def pay(number: str) -> Response:
    data = body_object(("amount", "transaction_id", "method"))
    amount_text = data.get("amount")
    if amount_text is None:
        raise ApiError(400, "field 'amount' is required, a decimal string such as \"123.00\"")
    if not isinstance(amount_text, str):
        # A JSON number would go through a float somewhere on the way; money never does.
        raise ApiError(400, "field 'amount' must be a decimal string such as \"123.00\", "
                            f"got {json_type(amount_text)}")
    txn = string_field(data, "transaction_id", required=True, max_len=MAX_TRANSACTION_ID)
    method = string_field(data, "method", required=False, max_len=64) or ""
    with oms().db.read() as s:
        currency = get_order(s, number).currency
    try:
        amount = to_minor(amount_text, currency)
    except MoneyError as exc:
        raise ApiError(400, f"field 'amount': {exc}") from None
    status = oms().commands.pay(number, amount, txn, method=method, actor=actor())
    with oms().db.read() as s:
        payments = payments_of(s, get_order(s, number))
    return json_response({"number": number, "status": status, "payments": payments})

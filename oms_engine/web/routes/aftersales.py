"""After-sales cases: opened on an order, read, and decided by support staff (aftersales/service.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ...aftersales.receipt import ReceiptError
from ...aftersales.service import ACTIONS
from ..auth import ACT, READ, actor, requires
from ..errors import ApiError, json_response
from ..requests import MAX_LIMIT, body_object, int_param, oms, string_field

MAX_TEXT = 2000

bp = Blueprint("aftersales", __name__)
# The most units of one SKU a receipt says damaged: a typo past it, never a parcel.
MAX_DAMAGED = 100_000


def _bad_receipt(exc: ReceiptError) -> Response:
    # Damaged units that do not fit the case's goods are the request's mistake, like a malformed one.
    return json_response({"error": str(exc)}, 400)


bp.register_error_handler(ReceiptError, _bad_receipt)


def _damaged(value: Any) -> dict[str, int] | None:
    """``{"SKU": units}``: the units of each SKU of a case's goods that came back damaged; 400 unless each is a
    whole number from 1 to 100,000."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise ApiError(400, "field 'damaged' must be a non-empty object of SKU: units that came back damaged")
    for sku, qty in value.items():
        if not 0 < len(sku) <= 64 or not sku.isprintable():
            raise ApiError(400, "field 'damaged': each key is a SKU of 1 to 64 characters")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 < qty <= MAX_DAMAGED:
            raise ApiError(400, f"field 'damaged' {sku}: a whole number from 1 to {MAX_DAMAGED:,}, got {qty!r}")
    return dict(value)


def _lines(value: Any) -> tuple[dict[int, int] | None, dict[int, str]]:
    """``[{"line_no": 1, "quantity": 2, "exchange_to"?: "SKU"}]`` as ({line_no: quantity}, {line_no: sku});
    none: every unit not in a case yet."""
    if value is None:
        return None, {}
    if not isinstance(value, list) or not value:
        raise ApiError(400, "field 'lines' must be a non-empty list of {\"line_no\", \"quantity\"}")
    out: dict[int, int] = {}
    swaps: dict[int, str] = {}
    for item in value:
        if not isinstance(item, dict) or not {"line_no", "quantity"} <= set(item) <= {"line_no", "quantity",
                                                                                         "exchange_to"}:
            raise ApiError(400, "each of 'lines' is {\"line_no\": N, \"quantity\": N}, with \"exchange_to\": "
                                "SKU in an exchange, nothing else")
        no, qty = item["line_no"], item["quantity"]
        for name, v in (("line_no", no), ("quantity", qty)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 100_000:
                raise ApiError(400, f"field 'lines' {name}: a whole number from 1 to 100,000, got {v!r}")
        out[no] = out.get(no, 0) + qty
        if "exchange_to" in item:
            sku = item["exchange_to"]
            if not isinstance(sku, str) or not 0 < len(sku) <= 64 or not sku.isprintable():
                raise ApiError(400, "field 'lines' exchange_to: a SKU of 1 to 64 characters")
            swaps[no] = sku
    return out, swaps


@bp.post("/api/orders/<number>/aftersales")
@requires(ACT)
def open_case(number: str) -> Response:
    data = body_object(("kind", "lines", "reason"))
    kind = string_field(data, "kind", required=True, max_len=32)
    reason = string_field(data, "reason", required=False, max_len=MAX_TEXT)
    lines, swaps = _lines(data.get("lines"))
    case = oms().aftersales.open(number, kind, lines, reason, actor=actor(), exchange_to=swaps)
    return json_response(case, 201)


@bp.get("/api/aftersales")
@requires(READ)
def list_cases() -> Response:
    """Cases, newest first; ``status``, ``kind`` and ``order`` narrow them, ``limit`` (default 100)."""
    limit = int_param("limit", 100, 1, MAX_LIMIT)
    assert limit is not None
    return json_response(oms().aftersales.list(status=request.args.get("status") or None,
                                               kind=request.args.get("kind") or None,
                                               order=request.args.get("order") or None, limit=limit))


@bp.get("/api/aftersales/<case>")
@requires(READ)
def show_case(case: str) -> Response:
    return json_response(oms().aftersales.get(case))


@bp.post("/api/aftersales/<case>/<action>")
@requires(ACT)
def act_on_case(case: str, action: str) -> Response:
    if action not in ACTIONS:
        raise ApiError(404, f"no action '{action}' on a case (actions: {', '.join(ACTIONS)})")
    # Only a receipt says which of the goods came back damaged.
    data = body_object(("note", "damaged") if action == "receive" else ("note",), optional=True)
    note = string_field(data, "note", required=False, max_len=MAX_TEXT)
    damaged = _damaged(data.get("damaged"))
    return json_response(oms().aftersales.act(case, action, actor=actor(), note=note, damaged=damaged))

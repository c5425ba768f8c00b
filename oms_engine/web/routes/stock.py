"""``GET /api/stock``: on hand, reserved and available per warehouse and SKU."""

from __future__ import annotations

from flask import Blueprint, Response, request
from sqlalchemy import select

from ...storage.models import Stock
from ..auth import READ, requires
from ..errors import json_response
from ..requests import MAX_LIMIT, int_param, oms

bp = Blueprint("stock", __name__)


@bp.get("/api/stock")
@requires(READ)
def stock() -> Response:
    sku = request.args.get("sku") or None
    warehouse = request.args.get("warehouse") or None
    limit = int_param("limit", MAX_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    stmt = select(Stock)
    if sku:
        stmt = stmt.where(Stock.sku == sku)
    if warehouse:
        stmt = stmt.where(Stock.warehouse == warehouse)
    stmt = stmt.order_by(Stock.sku, Stock.warehouse).limit(limit + 1)
    with oms().db.read() as s:
        rows = list(s.scalars(stmt))
        return json_response({"stock": [{"warehouse": r.warehouse, "sku": r.sku, "on_hand": r.on_hand,
                                         "reserved": r.reserved, "available": r.on_hand - r.reserved}
                                        for r in rows[:limit]],
                              "truncated": len(rows) > limit})

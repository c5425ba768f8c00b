"""Settlement statements (read): per merchant and period, sales, refunds, freight and commission
(settlement/statements.py); ``oms settlement`` prints the same."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ...fulfilment.timeliness import Period, PeriodInvalid
from ...settlement.commission import CommissionRates
from ...settlement.statements import statements
from ..auth import READ, requires
from ..errors import ApiError, json_response
from ..requests import oms

bp = Blueprint("settlement", __name__)


def _period() -> Period:
    try:
        return Period.parse(request.args.get("since") or None, request.args.get("until") or None,
                            now=oms().clock.now(), names=("parameter 'since'", "parameter 'until'"))
    except PeriodInvalid as exc:
        raise ApiError(400, str(exc)) from None


@bp.get("/api/settlement")
@requires(READ)
def all_merchants() -> Response:
    """One statement per merchant and currency over the period (default: the last 7 days), and the totals."""
    period, app = _period(), oms()
    with app.db.read() as s:
        return json_response(statements(s, period, CommissionRates(app.rulebook)))


@bp.get("/api/settlement/<merchant>")
@requires(READ)
def one_merchant(merchant: str) -> Response:
    """A merchant's statement with the invoices and credit notes it is made of."""
    period, app = _period(), oms()
    with app.db.read() as s:
        data = statements(s, period, CommissionRates(app.rulebook), merchant=merchant)
    if not data["statements"]:
        raise ApiError(404, f"merchant '{merchant[:64]}' sold nothing and was refunded nothing in the period")
    return json_response(data)

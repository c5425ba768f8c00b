"""Reports for operations (read): the timeliness of warehouses and carriers, and the orders late now.

The figures and their definitions are fulfilment/timeliness.py's; ``oms report timeliness`` and ``oms
report late`` print the same.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from ...fulfilment.timeliness import BY, Period, PeriodInvalid, open_alerts, timeliness
from ..auth import READ, requires
from ..errors import ApiError, json_response
from ..requests import MAX_LIMIT, int_param, oms

bp = Blueprint("reports", __name__)

DEFAULT_ALERTS = 100


@bp.get("/api/reports/timeliness")
@requires(READ)
def timeliness_report() -> Response:
    """Per warehouse or carrier, over the orders paid in the period (default: the last 7 days)."""
    by = request.args.get("by") or "warehouse"
    if by not in BY:
        raise ApiError(400, f"parameter 'by' must be one of {', '.join(BY)}, got '{by[:40]}'")
    app = oms()
    try:
        period = Period.parse(request.args.get("since") or None, request.args.get("until") or None,
                              now=app.clock.now(), names=("parameter 'since'", "parameter 'until'"))
    except PeriodInvalid as exc:
        raise ApiError(400, str(exc)) from None
    with app.db.read() as s:
        return json_response(timeliness(s, period, by, app.machine.late))


@bp.get("/api/reports/late-steps")
@requires(READ)
def late_steps() -> Response:
    """Late steps still open, longest overdue first."""
    limit = int_param("limit", DEFAULT_ALERTS, 1, MAX_LIMIT)
    assert limit is not None
    app = oms()
    with app.db.read() as s:
        return json_response(open_alerts(s, app.clock.now(), warehouse=request.args.get("warehouse") or None,
                                         carrier=request.args.get("carrier") or None, limit=limit))

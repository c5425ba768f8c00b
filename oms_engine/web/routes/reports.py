"""Reports for operations (read): the timeliness of warehouses and carriers, and the orders late now.

The figures and their definitions are fulfilment/timeliness.py's; ``oms report timeliness`` and ``oms
report late`` print the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from flask import Blueprint, Response
from pydantic import Field

from ...fulfilment.timeliness import BY, AlertKey, Period, PeriodInvalid, open_alerts_page, timeliness
from ..auth import READ, requires
from ..errors import ApiError, json_response
from ..openapi import operation, query
from ..requests import oms
from ..schemas import Answer, Limit, PageQuery, Query, Text, decode_cursor, encode_cursor, one_of

bp = Blueprint("reports", __name__)
TAGS = ["reports"]

DEFAULT_ALERTS = 100

# Read by Period.parse, not as pydantic's datetimes: a date alone as `until` takes in that whole day.
Since = Annotated[Text | None, Field(description="a date (its start) or a time; UTC unless it says otherwise; "
                                                 "default: 7 days before until")]
Until = Annotated[Text | None, Field(description="a date (that whole day) or a time, exclusive; default: now")]


GroupBy = one_of(*BY)


class PeriodQuery(Query):
    since: Since = None
    until: Until = None


class TimelinessQuery(PeriodQuery):
    by: GroupBy = "warehouse"


class Timeliness(Answer):
    """The figures per group and in all; docs/operations.md, "Timeliness and late steps", defines each."""

    since: str
    until: str
    by: str
    intervals: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    all: dict[str, Any]


class LateStepsQuery(PageQuery):
    limit: Limit = DEFAULT_ALERTS
    warehouse: Annotated[Text | None, Field(description="only this warehouse's")] = None
    carrier: Annotated[Text | None, Field(description="only this carrier's")] = None


class LateAlert(Answer):
    order: str
    status: str
    step: str = Field(description="the state the order should have reached")
    after: str
    limit: str
    limit_minutes: int
    warehouse: str | None
    carrier: str | None
    due_at: str
    late_by: str
    raised_at: str


class LateSteps(Answer):
    total: int = Field(description="late steps open in all (matching warehouse and carrier)")
    alerts: list[LateAlert]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


def period_param(q: PeriodQuery) -> Period:
    """The period ``since`` and ``until`` say (default: the 7 days before now); 400 naming the one that is wrong."""
    try:
        return Period.parse(q.since or None, q.until or None, now=oms().clock.now(),
                            names=("parameter 'since'", "parameter 'until'"))
    except PeriodInvalid as exc:
        text = str(exc)
        # Neither alone is to blame when since is not before until.
        blamed = [name for name in ("since", "until") if text.startswith(f"parameter '{name}': ")]
        raise ApiError(400, text, **({"field": blamed[0]} if blamed else {})) from None


@bp.get("/api/reports/timeliness")
@requires(READ)
@operation(query=TimelinessQuery, answers={200: Timeliness}, tags=TAGS)
def timeliness_report() -> Response:
    """Per warehouse or carrier, over the orders paid in the period (default: the last 7 days)."""
    q = query(TimelinessQuery)
    period, app = period_param(q), oms()
    with app.db.read() as s:
        return json_response(timeliness(s, period, q.by, app.machine.late))


def _alert_after(cursor: str | None) -> AlertKey | None:
    if cursor is None:
        return None
    due_at, order_id, step = decode_cursor(cursor, 3)
    try:
        return datetime.fromisoformat(due_at), int(order_id), step
    except ValueError:
        raise ApiError(400, "parameter 'cursor' is not a cursor this list gave", field="cursor") from None


@bp.get("/api/reports/late-steps")
@requires(READ)
@operation(query=LateStepsQuery, answers={200: LateSteps}, tags=TAGS)
def late_steps() -> Response:
    """Late steps still open, longest overdue first, a page at a time."""
    q = query(LateStepsQuery)
    app = oms()
    with app.db.read() as s:
        data, last = open_alerts_page(s, app.clock.now(), warehouse=q.warehouse or None, carrier=q.carrier or None,
                                      limit=q.limit, after=_alert_after(q.cursor))
    cursor = encode_cursor(last[0].isoformat(), last[1], last[2]) if last is not None else None
    return json_response({**data, "next": cursor})

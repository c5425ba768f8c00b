"""Timeliness of warehouses and carriers, and the orders late now.

:func:`timeliness` answers, per warehouse or per carrier, how long orders took over three intervals:

- ``paid_to_sent``: from the order's ``paid_at`` to its first ``dispatch`` (the document sent);
- ``sent_to_shipped``: from the first ``dispatch`` to the first ``ship``;
- ``shipped_to_delivered``: from the first ``ship`` to the first ``deliver``.

The orders are those paid in the period (``since`` <= ``paid_at`` < ``until``) and routed to a warehouse
(a split parent ships nothing itself: its children are counted); they are grouped by the order's
warehouse or carrier (none yet: ``null``). For each interval and group:

- ``started``: the orders that began the interval (paid; sent; shipped), ``count``: those that also
  ended it; ``median_hours`` and ``p95_hours`` over the ``count`` durations. The median of an even
  count is the mean of the middle two; the 95th percentile is by nearest rank: the smallest duration
  at least 95% of the durations are at most.
- ``late`` and ``late_share``: of the ``started`` orders, how many (and what share) were alerted for a
  late step (a ``late_steps`` row, orders/late_steps.py) whose step lies in the interval: dispatched
  for paid to sent; accepted, picking, packed or shipped for sent to shipped; in_transit,
  out_for_delivery or delivered for shipped to delivered. So an order still stuck past its limit
  counts as late before it has a duration. Both are null when no configured limit has its step in
  the interval.

Three queries whatever the period (the orders, the first time of each of the three events per order,
the late steps of those orders): each reads the orders table through (no index leads with paid_at) and
the history by order; the figures are computed in Python, so SQLite and PostgreSQL answer alike. A
week of 100,000 orders with a million history rows takes under two seconds on either.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import OmsError
from ..orders.late_steps import CHAIN, LateLimits, duration, position
from ..orders.machine import TERMINAL
from ..orders.queries import iso
from ..orders.states import Event, State
from ..storage.models import History, LateStep, Order

BY = ("warehouse", "carrier")
DEFAULT_DAYS = 7
_P = 0.95


class PeriodInvalid(OmsError):
    """A period that cannot be read (the message names the option or parameter)."""


@dataclass(frozen=True)
class Interval:
    name: str
    label: str
    begins: Event | None     # None: the order's paid_at
    ends: Event
    # The chain positions of the steps that count against it: after `lo`, up to and including `hi`.
    lo: int
    hi: int


_AT = {st: i for i, st in enumerate(CHAIN)}
INTERVALS: tuple[Interval, ...] = (
    Interval("paid_to_sent", "paid → sent", None, Event.DISPATCH, -1, _AT[State.DISPATCHED]),
    Interval("sent_to_shipped", "sent → shipped", Event.DISPATCH, Event.SHIP, _AT[State.DISPATCHED],
             _AT[State.SHIPPED]),
    Interval("shipped_to_delivered", "shipped → delivered", Event.SHIP, Event.DELIVER, _AT[State.SHIPPED],
             _AT[State.DELIVERED]),
)
_EVENTS = [Event.DISPATCH.value, Event.SHIP.value, Event.DELIVER.value]


# -- the period ---------------------------------------------------------------------------------------
def moment(text: str, what: str, *, end: bool = False) -> datetime:
    """A date or a date and time as naive UTC (the database's times). A date alone is its midnight, or with
    ``end`` the next one, so that ``--until 2026-11-08`` takes in that whole day; an offset given is
    converted to UTC."""
    text = text.strip()
    try:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if end else start
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise PeriodInvalid(f"{what}: '{text[:40]}' is neither a date such as 2026-11-02 nor a time such as "
                                f"2026-11-02T09:00:00Z (UTC unless it says otherwise)") from None
        return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when
    except OverflowError:   # the day after 9999-12-31, or a time with an offset past either end of the calendar
        raise PeriodInvalid(f"{what}: '{text[:40]}' is past the end of the calendar") from None


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime    # exclusive

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, now: datetime,
              names: tuple[str, str] = ("since", "until")) -> Period:
        """From the ``since`` and ``until`` given (either may be missing: until now, since a week before)."""
        end = moment(until, names[1], end=True) if until else now
        if since:
            start = moment(since, names[0])
        elif end - datetime.min < timedelta(days=DEFAULT_DAYS):
            raise PeriodInvalid(f"{names[1]} ({iso(end)}) leaves no {DEFAULT_DAYS} days before it: give {names[0]} too")
        else:
            start = end - timedelta(days=DEFAULT_DAYS)
        if start >= end:
            raise PeriodInvalid(f"{names[0]} ({iso(start)}) must be before {names[1]} ({iso(end)})")
        return cls(start, end)


# -- the figures --------------------------------------------------------------------------------------
def nearest_rank(values: Sequence[float], p: float) -> float:
    """The smallest of ``values`` (sorted) that at least a share ``p`` of them are at most."""
    return values[max(math.ceil(p * len(values)) - 1, 0)]


def _figures(durations: list[float], started: int, late: int | None) -> dict[str, Any]:
    durations.sort()
    return {"started": started, "count": len(durations),
            "median_hours": round(statistics.median(durations), 2) if durations else None,
            "p95_hours": round(nearest_rank(durations, _P), 2) if durations else None,
            "late": late, "late_share": round(late / started, 4) if late is not None and started else None}


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def timeliness(s: Session, period: Period, by: str, limits: LateLimits | None) -> dict[str, Any]:
    """The report (see the module's header): per group of ``by`` and in all, each interval's figures."""
    if by not in BY:
        raise PeriodInvalid(f"by must be one of {', '.join(BY)}, got '{by[:40]}'")
    in_period = (Order.paid_at >= period.since, Order.paid_at < period.until, Order.warehouse.is_not(None))
    group_of: dict[int, str | None] = {}
    paid: dict[int, datetime] = {}
    column = Order.warehouse if by == "warehouse" else Order.carrier
    for oid, key, paid_at in s.execute(select(Order.id, column, Order.paid_at).where(*in_period)):
        group_of[oid], paid[oid] = key, paid_at
    firsts: dict[int, dict[str, datetime]] = defaultdict(dict)
    for oid, event, at in s.execute(select(History.order_id, History.event, func.min(History.at))
                                    .join(Order, Order.id == History.order_id)
                                    .where(*in_period, History.event.in_(_EVENTS))
                                    .group_by(History.order_id, History.event)):
        firsts[oid][event] = at
    late_at: dict[int, list[int]] = defaultdict(list)   # order -> chain positions of its late steps
    for oid, step in s.execute(select(LateStep.order_id, LateStep.step).join(Order, Order.id == LateStep.order_id)
                               .where(*in_period)):
        late_at[oid].append(position(step))
    watched = {iv.name: [lim for lim in (limits.limits if limits else ()) if iv.lo < _AT[lim.step] <= iv.hi]
               for iv in INTERVALS}

    groups: dict[str | None, list[int]] = defaultdict(list)
    for oid, key in group_of.items():
        groups[key].append(oid)

    def figures(ids: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"orders": len(ids)}
        for iv in INTERVALS:
            durations: list[float] = []
            started = late = 0
            for oid in ids:
                times = firsts.get(oid, {})
                begin = paid[oid] if iv.begins is None else times.get(iv.begins.value)
                if begin is None:
                    continue
                started += 1
                finish = times.get(iv.ends.value)
                if finish is not None:
                    durations.append(_hours(begin, finish))
                if any(iv.lo < p <= iv.hi for p in late_at.get(oid, ())):
                    late += 1
            out[iv.name] = _figures(durations, started, late if watched[iv.name] else None)
        return out

    ordered = sorted(groups, key=lambda k: (k is None, k or ""))
    return {"since": iso(period.since), "until": iso(period.until), "by": by,
            "intervals": [{"name": iv.name, "label": iv.label,
                           "limits": [lim.text() for lim in watched[iv.name]]} for iv in INTERVALS],
            "groups": [{"key": key, **figures(groups[key])} for key in ordered],
            "all": figures(list(group_of))}


# -- the orders late now ------------------------------------------------------------------------------
def open_alerts(s: Session, now: datetime, *, warehouse: str | None = None, carrier: str | None = None,
                limit: int = 100) -> dict[str, Any]:
    """Late steps still open, longest overdue first: alerted, and the order has neither reached the step nor
    ended (cancelled, closed). ``total`` counts them all, ``alerts`` holds the first ``limit``."""
    return open_alerts_page(s, now, warehouse=warehouse, carrier=carrier, limit=limit)[0]


AlertKey = tuple[datetime, int, str]


def open_alerts_page(s: Session, now: datetime, *, warehouse: str | None = None, carrier: str | None = None,
                     limit: int = 100, after: AlertKey | None = None) -> tuple[dict[str, Any], AlertKey | None]:
    """:func:`open_alerts` a page at a time: the page of ``limit`` after the alert whose key (due_at, order id,
    step) is ``after``, and the key of its last alert when more follow. ``total`` counts them all still."""
    stmt = (select(LateStep, Order.number, Order.status).join(Order, Order.id == LateStep.order_id)
            .where(LateStep.resolved_at.is_(None), Order.status.not_in([st.value for st in TERMINAL])))
    if warehouse:
        stmt = stmt.where(LateStep.warehouse == warehouse)
    if carrier:
        stmt = stmt.where(LateStep.carrier == carrier)
    # An order that got there by a way the state machine does not watch (held and routed again) is not late.
    # Sorted here, not by the database: a collation would order the steps' names its own way.
    found = sorted((((ls.due_at, ls.order_id, ls.step), ls, number, status) for ls, number, status in s.execute(stmt)
                    if position(status) < position(ls.step)), key=lambda f: f[0])
    rest = [f for f in found if after is None or f[0] > after]
    page = rest[:limit]
    alerts = [{"order": number, "status": status, "step": ls.step, "after": ls.after,
               "limit": duration(ls.limit_minutes), "limit_minutes": ls.limit_minutes,
               "warehouse": ls.warehouse, "carrier": ls.carrier, "due_at": iso(ls.due_at),
               "late_by": duration((now - ls.due_at).total_seconds() / 60), "raised_at": iso(ls.raised_at)}
              for _, ls, number, status in page]
    return {"total": len(found), "alerts": alerts}, (page[-1][0] if len(rest) > limit else None)

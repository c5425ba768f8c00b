"""Reading orders: by id or number for the pipeline, and the searches the CLI and the admin API share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from ..errors import OrderNotFound
from ..storage.models import Customer, History, Order
from .machine import Event, State
from .views import parent_number


def load_orders(s: Session, ids: Sequence[int]) -> list[Order]:
    """Orders with their lines and customer, in id order: two queries for the whole batch."""
    if not ids:
        return []
    return list(s.scalars(
        select(Order).where(Order.id.in_(ids)).order_by(Order.id)
        .options(selectinload(Order.lines), selectinload(Order.customer))
    ))


def load_orders_by_number(s: Session, numbers: Sequence[str]) -> list[Order]:
    if not numbers:
        return []
    return load_orders(s, list(s.scalars(select(Order.id).where(Order.number.in_(numbers)))))


def get_order(s: Session, number: str, *, lock: bool = False) -> Order:
    """One order with lines, customer and children; ``lock`` takes its row lock (PostgreSQL)."""
    stmt = select(Order).where(Order.number == number).options(
        selectinload(Order.lines), selectinload(Order.customer), selectinload(Order.children))
    if lock:
        stmt = stmt.with_for_update()
    order = s.scalars(stmt).first()
    if order is None:
        raise OrderNotFound(f"no order numbered '{number}'")
    return order


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") if dt is not None else None


def order_summary(o: Order) -> dict[str, Any]:
    return {"number": o.number, "status": o.status, "channel": o.channel, "external_id": o.external_id,
            "customer": o.customer.ref if o.customer else None, "currency": o.currency, "payable": o.payable,
            "warehouse": o.warehouse, "hold_reason": o.hold_reason, "placed_at": iso(o.placed_at),
            "parent": parent_number(o)}


@dataclass(frozen=True)
class OrderSearch:
    status: State | None = None
    customer: str | None = None
    channel: str | None = None
    q: str | None = None            # a prefix of the order number or the channel's external id
    limit: int = 50
    before_id: int | None = None    # the cursor: the "next" of the previous page
    warehouse: str | None = None
    placed_from: datetime | None = None   # placed at or after (UTC)
    placed_until: datetime | None = None  # placed before (UTC)
    hold_reason: str | None = None  # words in the reason it is held for (case-insensitive)


def search_orders(s: Session, search: OrderSearch) -> tuple[list[dict[str, Any]], int | None]:
    """A page of order summaries, newest first, and the cursor of the next page (None: no more)."""
    stmt = select(Order).options(selectinload(Order.customer))
    if search.status:
        stmt = stmt.where(Order.status == search.status.value)
    if search.customer:
        stmt = stmt.where(Order.customer_id.in_(select(Customer.id).where(Customer.ref == search.customer)))
    if search.channel:
        stmt = stmt.where(Order.channel == search.channel)
    if search.q:
        stmt = stmt.where(or_(Order.number.startswith(search.q, autoescape=True),
                              Order.external_id.startswith(search.q, autoescape=True)))
    if search.warehouse:
        stmt = stmt.where(Order.warehouse == search.warehouse)
    if search.placed_from is not None:
        stmt = stmt.where(Order.placed_at >= search.placed_from)
    if search.placed_until is not None:
        stmt = stmt.where(Order.placed_at < search.placed_until)
    if search.hold_reason:
        stmt = stmt.where(Order.hold_reason.contains(search.hold_reason, autoescape=True))
    if search.before_id is not None:
        stmt = stmt.where(Order.id < search.before_id)
    # Ids only grow, so "newest first" by id gives a cursor that never skips or
    # repeats a row while new orders arrive; one extra row tells whether more exist.
    rows = list(s.scalars(stmt.order_by(Order.id.desc()).limit(search.limit + 1)))
    page = rows[:search.limit]
    return [order_summary(o) for o in page], (page[-1].id if len(rows) > search.limit else None)


def hold_queue(s: Session, limit: int, *, after: tuple[datetime, int] | None = None,
               reason: str | None = None) -> tuple[list[dict[str, Any]], int, tuple[datetime, int] | None]:
    """Held orders, longest waiting first, with when and where they were held; how many there are (matching
    ``reason``, words of the hold reason); and the sort key of the last row when more follow (the next page
    starts ``after`` it)."""
    # When it went on hold: its latest hold event (a payment on hold moves updated_at).
    held_since = (select(History.order_id, func.max(History.at).label("at"))
                  .where(History.event == Event.HOLD.value).group_by(History.order_id).subquery())
    since = func.coalesce(held_since.c.at, Order.updated_at)
    held = [Order.status == State.ON_HOLD.value]
    if reason:
        held.append(Order.hold_reason.contains(reason, autoescape=True))
    stmt = (select(Order, since)
            .outerjoin(held_since, held_since.c.order_id == Order.id)
            .where(*held)
            .options(selectinload(Order.customer))
            .order_by(since, Order.id)
            .limit(limit + 1))
    if after is not None:
        stmt = stmt.where(or_(since > after[0], (since == after[0]) & (Order.id > after[1])))
    total = s.scalar(select(func.count()).select_from(Order).where(*held)) or 0
    found = s.execute(stmt).all()
    page = found[:limit]
    rows = [{**order_summary(o), "hold_stage": o.hold_stage,
             "held_since": at.isoformat(timespec="seconds")} for o, at in page]
    last = (page[-1][1], page[-1][0].id) if len(found) > limit else None
    return rows, total, last

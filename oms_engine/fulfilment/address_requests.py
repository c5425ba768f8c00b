"""A new delivery address for an order: taken at once, asked of the warehouse that holds it, or refused.

A channel's update (orders/updates.py) hands its address change to :meth:`AddressRequests.change`, in the
transaction that records the update's outcome, so the update and what it asked of a warehouse commit together
and an update applied twice asks once. Each order is answered by its own state (a split order: its parent
follows the new address and each part is answered by its own state):

* before the warehouse has it (unpaid, paid, held, routed with no document written yet): its ship_to is the
  new address at once. A routed order whose own document still waits in the outbox has the document
  rewritten too, so the warehouse never sees the old address;
* the warehouse holds its document, not yet shipped (dispatched, accepted, picking, packed), or its document
  is on its way there (being sent, or a merged parcel's): an *address request* (``address_requests``) and a
  message to the warehouse's WMS connector (topic ``wms.readdress``, queued behind the document it is about).
  The order keeps its address until the warehouse answers. A newer address for the same order supersedes a
  request still pending: it is marked ``superseded`` and its message, if it has not left, is withdrawn;
* being stopped (interception requested), shipped or later: refused with the reason, with an incident for a
  person (a parcel on its way is the carrier's to redirect).

The warehouse answers with a callback event of kind ``readdress`` (:meth:`AddressRequests.answer`, from
fulfilment/callbacks.py): ``accepted``, the order's ship_to (a part's alone) becomes the request's address;
``refused`` (or ``duplicate``, ``unknown``: it cannot act on it), the order keeps its address and an incident
asks a person to take it up. An answer to a request answered or superseded already changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..messaging.outbox import Kind, OutboxWriter, Status, Topic
from ..orders.incidents import record_incident
from ..orders.machine import SHIPPED_OR_LATER, State
from ..orders.queries import iso
from ..plugin.contracts import CallbackEvent
from ..storage.db import drain, row_locks_apply
from ..storage.models import AddressRequest, Order, OutboxMessage
from . import parcels
from .documents import readdress_document

ANSWER_STAGE = "address request"


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    SUPERSEDED = "superseded"    # a newer address was asked for before the warehouse answered


# The warehouse holds the order's document and has not shipped it: the address is the warehouse's to change.
HELD = frozenset({State.DISPATCHED, State.ACCEPTED, State.PICKING, State.PACKED})
# Past changing: the parcel is leaving or has left (a closed order was shipped, then completed or returned).
GONE = SHIPPED_OR_LATER | {State.CLOSED}
# The warehouse's words for an answer; anything else is not read as either.
_ACCEPTED = frozenset({"accepted", "accept", "ok", "done"})
_REFUSED = frozenset({"refused", "refuse", "rejected", "failed", "duplicate", "unknown"})


@dataclass(frozen=True)
class _Owner:
    """Whose queue an outbox message waits in: a request goes behind the document it is about."""

    id: int
    number: str


@dataclass(frozen=True)
class _Part:
    kind: str                   # "direct", "asked", "same" or "refused"
    text: str


class AddressRequests:
    def __init__(self, *, clock: Clock, outbox: OutboxWriter, wms_for: Callable[[Session, str], str]) -> None:
        """``wms_for(session, warehouse)``: the WMS connector a warehouse's documents go to."""
        self.clock, self.outbox, self.wms_for = clock, outbox, wms_for

    # -- a new address from the channel ----------------------------------------------------------------
    def change(self, s: Session, order_id: int, address: Mapping[str, Any], *, update_id: int | None,
               reason: str, stage: str) -> str:
        """Answer a new address for order ``order_id`` (and its parts): the outcome in words. Refusals leave an
        incident (at ``stage``) on the order refused."""
        address = dict(address)
        order = s.scalar(select(Order).where(Order.id == order_id).with_for_update())
        assert order is not None
        parts = list(s.scalars(select(Order).where(Order.parent_id == order.id).order_by(Order.id)
                               .with_for_update()))
        if not parts:
            return self._one(s, order, address, update_id, reason, stage).text
        answered = [(part, self._one(s, part, address, update_id, reason, stage)) for part in parts]
        said = "; ".join(f"part {part.number}: {p.text}" for part, p in answered)
        if all(p.kind == "refused" for _, p in answered):
            return f"refused: no part of the order can take it ({said})"
        # What the channel knows is the whole order: its own record follows the customer's wish.
        self._set(s, order, address)
        return f"the order goes to the new address; {said}"

    def _one(self, s: Session, order: Order, address: dict[str, Any], update_id: int | None, reason: str,
             stage: str) -> _Part:
        now = self.clock.now()
        existing = s.scalar(select(AddressRequest).where(AddressRequest.update_id == update_id,
                                                         AddressRequest.order_id == order.id)) \
            if update_id is not None else None
        if existing is not None:     # this update asked already (it is never applied twice; kept safe anyway)
            return _Part("asked", _asked(existing.warehouse, existing.id))
        same = s.scalar(select(AddressRequest).where(AddressRequest.order_id == order.id,
                                                     AddressRequest.status == RequestStatus.PENDING.value)
                        .order_by(AddressRequest.id.desc()).limit(1))
        if same is not None and same.address == address:
            return _Part("asked", "already " + _asked(same.warehouse, same.id))
        dropped, left = self._supersede(s, order, update_id, now)
        after = f" (address request {', '.join(map(str, dropped))} superseded)" if dropped else ""
        # Back to the address it has: nothing to ask, unless a superseded request has reached the warehouse,
        # which may act on it; then the warehouse is asked for this one after it.
        if (order.ship_to or {}) == address and not left:
            return _Part("same", f"it goes to that address already{after}")
        state = State(order.status)
        if state in GONE:
            return self._refuse(s, order, f"refused: the order is {state.value}: the parcel is on its way, so "
                                          "the new address is for a person to take up with the carrier", stage, now)
        if state is State.INTERCEPT_REQUESTED:
            return self._refuse(s, order, f"refused: the order is {state.value}: the warehouse is stopping it; "
                                          "a person decides where it goes", stage, now)
        queued = self._queued_document(s, order) if state is State.ROUTED or state in HELD else None
        if state is State.ROUTED and queued is not None and queued.own:
            # Its own document has not left: it goes with the new address, and nobody needs asking.
            s.execute(update(OutboxMessage).where(OutboxMessage.id == queued.id)
                      .values(payload={**queued.payload, "ship_to": address}),
                      execution_options={"synchronize_session": False})
            self._set(s, order, address)
            return _Part("direct", f"the order goes to the new address (its document for {order.warehouse}, "
                                   f"not sent yet, with it){after}")
        if state in HELD or (state is State.ROUTED and queued is not None):
            return _Part("asked", self._ask(s, order, address, update_id, reason, queued, now) + after)
        self._set(s, order, address)
        return _Part("direct", f"the order goes to the new address{after}")

    def _ask(self, s: Session, order: Order, address: dict[str, Any], update_id: int | None, reason: str,
             queued: _Queued | None, now: datetime) -> str:
        warehouse = order.warehouse or ""
        group = parcels.group_of(s, order)
        document = group.number if group is not None else order.number
        row = AddressRequest(order_id=order.id, update_id=update_id, warehouse=warehouse, document=document,
                             address=address, status=RequestStatus.PENDING.value, requested_at=now, answer="")
        s.add(row)
        s.flush()
        # Behind the document it is about, when that is still queued (perhaps under another order of its parcel).
        owner = _Owner(queued.owner, order.number) if queued is not None else _Owner(order.id, order.number)
        self.outbox.enqueue(s, owner, Kind.CONNECTOR, self.wms_for(s, warehouse),
                            Topic.WMS_READDRESS, readdress_document(order.number, document, warehouse, address,
                                                                    row.id, reason), number=order.number)
        return _asked(warehouse, row.id)

    def _supersede(self, s: Session, order: Order, update_id: int | None, now: datetime) -> tuple[list[int], bool]:
        """Set the order's pending requests aside for a newer address; their messages not sent are withdrawn.
        Their ids, and whether one had left already (the warehouse may act on it)."""
        pending = list(s.scalars(select(AddressRequest).where(AddressRequest.order_id == order.id,
                                                              AddressRequest.status == RequestStatus.PENDING.value)
                                 .order_by(AddressRequest.id).with_for_update()))
        if not pending:
            return [], False
        ids = [r.id for r in pending]
        for r in pending:
            r.status, r.answered_at = RequestStatus.SUPERSEDED.value, now
            r.answer = "superseded by a newer address" + (f" (update {update_id})" if update_id else "")
        owners = {order.id, *self._parcel_members(s, order)}
        waiting = select(OutboxMessage.id, OutboxMessage.payload).where(
            OutboxMessage.order_id.in_(sorted(owners)), OutboxMessage.status == Status.PENDING.value,
            OutboxMessage.topic == Topic.WMS_READDRESS.value)
        if row_locks_apply(s):
            waiting = waiting.with_for_update(skip_locked=True)   # one being sent right now is answered as sent
        unsent = [m.id for m in s.execute(waiting) if isinstance(m.payload, dict) and m.payload.get("request") in ids]
        if unsent:
            s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(unsent))
                      .values(status=Status.WITHDRAWN.value, last_error="a newer address superseded it"),
                      execution_options={"synchronize_session": False})
        return ids, len(unsent) < len(ids)

    def _queued_document(self, s: Session, order: Order) -> _Queued | None:
        """The order's document still waiting in the outbox (its own, or its merged parcel's), if any."""
        group = parcels.group_of(s, order)
        number = group.number if group is not None else order.number
        owners = {order.id, *self._parcel_members(s, order)}
        found = s.execute(select(OutboxMessage.id, OutboxMessage.order_id, OutboxMessage.payload)
                          .where(OutboxMessage.order_id.in_(sorted(owners)),
                                 OutboxMessage.status == Status.PENDING.value,
                                 OutboxMessage.topic == Topic.WMS_CREATE.value,
                                 OutboxMessage.order_number == number)
                          .order_by(OutboxMessage.id.desc())).first()
        if found is None:
            return None
        own = group is None and list(found.payload.get("orders") or [number]) == [order.number]
        if own and row_locks_apply(s):
            # A worker sending it right now holds it: it leaves as it is, and the warehouse is asked after.
            own = s.scalar(select(OutboxMessage.id).where(OutboxMessage.id == found.id,
                                                          OutboxMessage.status == Status.PENDING.value)
                           .with_for_update(skip_locked=True)) is not None
        return _Queued(found.id, found.order_id or order.id, dict(found.payload), own)

    @staticmethod
    def _parcel_members(s: Session, order: Order) -> list[int]:
        gid = getattr(order, "merge_group_id", None)
        return list(s.scalars(select(Order.id).where(Order.merge_group_id == gid))) if gid else []

    def _refuse(self, s: Session, order: Order, text: str, stage: str, now: datetime) -> _Part:
        record_incident(s, order_id=order.id, stage=stage, error=f"ship_to: {text}",
                        action="the order keeps its address; a person takes the new one up", at=now)
        return _Part("refused", text)

    def _set(self, s: Session, order: Any, address: dict[str, Any]) -> None:
        now = self.clock.now()
        s.execute(update(Order).where(Order.id == order.id).values(ship_to=address, updated_at=now),
                  execution_options={"synchronize_session": False})
        order.ship_to = address     # whoever holds the order in this transaction sees it too

    # -- the warehouse's answer --------------------------------------------------------------------------
    def answer(self, s: Session, ev: CallbackEvent, *, warehouse: str | None, order: Any = None) -> str:
        """Apply a warehouse's answer to an address request (a callback event of kind ``readdress``). The
        outcome reads "<number> address request <id> ...", "ignored: order <number>: ..." or "rejected: ..."
        (the inbox's words). ``warehouse``: the warehouse whose callback it came in (None: not known);
        ``order``: the order's record when the inbox stage holds it."""
        raw = ev.data.get("request")
        rid = _request_id(raw)
        if rid is None:
            return f"rejected: a readdress answer names its address request (data.request), got {raw!r}"
        now = self.clock.now()
        drain(s)    # the batch's changes to the orders first: a move or a cancel is read as it stands
        found = s.execute(select(AddressRequest.order_id).where(AddressRequest.id == rid)).first()
        if found is None:
            return self._unknown(s, ev, rid, now)
        row = s.execute(select(Order.id, Order.number, Order.warehouse, Order.status).where(Order.id == found.order_id)
                        .with_for_update()).one()
        req = s.scalar(select(AddressRequest).where(AddressRequest.id == rid).with_for_update()
                       .execution_options(populate_existing=True))
        assert req is not None
        if ev.order_number and ev.order_number not in (row.number, req.document):
            return f"rejected: address request {rid} is about order {row.number}, not {ev.order_number}"
        if warehouse and warehouse != req.warehouse:
            return f"rejected: address request {rid} was asked of {req.warehouse}, not {warehouse}"
        verdict = ev.status.strip().lower()
        if verdict not in _ACCEPTED | _REFUSED:
            return (f"rejected: order {row.number}: address request {rid}: the warehouse answered "
                    f"{ev.status!r}, neither accepted nor refused")
        if req.status != RequestStatus.PENDING.value:
            if req.status == RequestStatus.SUPERSEDED.value:
                # Kept with it: what the warehouse did with the older address tells a person where a parcel may go.
                req.answer = f"{req.answer}; then {req.warehouse} answered {ev.status!r}"[:4000]
            return (f"ignored: order {row.number}: address request {rid} is {req.status} already; the answer "
                    f"{ev.status!r} changes nothing")
        said = str(ev.data.get("reason") or ev.data.get("note") or "").strip()[:1000]
        req.answered_at = now
        if verdict in _REFUSED:
            req.status, req.answer = RequestStatus.REFUSED.value, said or f"refused ({ev.status})"
            if row.status != State.CANCELLED.value:     # a cancelled order goes nowhere: nothing to take up
                self._incident(s, row.id, f"{req.warehouse} refused address request {rid}: {req.answer}", now)
            return f"{row.number} address request {rid} refused by {req.warehouse}: {req.answer}"
        if row.warehouse != req.warehouse:
            # Moved meanwhile: the warehouse shipping it now was sent the old address.
            req.status = RequestStatus.REFUSED.value
            req.answer = (f"{req.warehouse} accepted, but the order had moved to {row.warehouse or 'no warehouse'}"
                          " by then")
            self._incident(s, row.id, f"address request {rid}: {req.answer}", now)
            return f"{row.number} address request {rid} set aside: {req.answer}"
        req.status, req.answer = RequestStatus.ACCEPTED.value, said or "accepted"
        s.execute(update(Order).where(Order.id == row.id).values(ship_to=req.address, updated_at=now),
                  execution_options={"synchronize_session": False})
        if order is not None and getattr(order, "id", None) == row.id:
            order.ship_to = req.address     # the inbox's record of it, written at the drain, agrees
        return f"{row.number} address request {rid} accepted by {req.warehouse}: the order goes to the new address"

    def _unknown(self, s: Session, ev: CallbackEvent, rid: int, now: datetime) -> str:
        order_id = s.scalar(select(Order.id).where(Order.number == ev.order_number)) if ev.order_number else None
        if order_id is not None:
            self._incident(s, order_id, f"the warehouse answered {ev.status!r} about address request {rid}, "
                                        "which the OMS never asked", now)
        return f"rejected: no address request {rid}" + (f" (order {ev.order_number})" if ev.order_number else "")

    @staticmethod
    def _incident(s: Session, order_id: int, error: str, now: datetime) -> None:
        record_incident(s, order_id=order_id, stage=ANSWER_STAGE, error=error,
                        action="the order keeps its address; a person takes the new one up with the warehouse",
                        at=now)


@dataclass(frozen=True)
class _Queued:
    """An order's document still waiting in the outbox."""

    id: int
    owner: int                  # the order whose queue it waits in
    payload: dict[str, Any]
    own: bool                   # the order's own document, free to rewrite


def _asked(warehouse: str, rid: int) -> str:
    return (f"asked of {warehouse} (address request {rid}): the order keeps its address until the warehouse "
            "answers")


def _request_id(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw > 0 else None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        return int(raw.strip())
    return None


def pending_address(s: Session, order_id: int) -> dict[str, Any] | None:
    """The address the order's warehouse was last asked for and has not answered about (None: none pending):
    where the order is meant to go, though its ship_to is still the old one."""
    return s.scalar(select(AddressRequest.address).where(AddressRequest.order_id == order_id,
                                                         AddressRequest.status == RequestStatus.PENDING.value)
                    .order_by(AddressRequest.id.desc()).limit(1))


def requests_of(s: Session, order_ids: list[int]) -> list[dict[str, Any]]:
    """The address requests of these orders (an order and its parts), oldest first, for ``oms order show``."""
    if not order_ids:
        return []
    numbers = dict(s.execute(select(Order.id, Order.number).where(Order.id.in_(order_ids))).all())
    return [{"id": r.id, "order": numbers.get(r.order_id, ""), "warehouse": r.warehouse, "document": r.document,
             "ship_to": r.address, "status": r.status, "update": r.update_id,
             "requested_at": iso(r.requested_at), "answered_at": iso(r.answered_at), "answer": r.answer}
            for r in s.scalars(select(AddressRequest).where(AddressRequest.order_id.in_(order_ids))
                               .order_by(AddressRequest.id))]

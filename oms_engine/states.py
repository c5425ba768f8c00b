"""The order state machine: one explicit table of (state, event) -> state.

Parent and child orders share it. Guards live in :mod:`oms_engine.transitions`;
this module is the table alone so that it can be read, documented and
property-tested on its own.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    ON_HOLD = "on_hold"
    SPLIT = "split"
    ROUTED = "routed"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    INTERCEPT_REQUESTED = "intercept_requested"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class Event(StrEnum):
    PAY = "pay"
    HOLD = "hold"                    # screening or intake put it in the review queue
    RELEASE = "release"              # review passed: continue to split and route
    RELEASE_UNPAID = "release_unpaid"  # an intake hold lifted before payment
    REJECT = "reject"                # review failed: cancel (and refund if paid)
    SPLIT = "split"
    ROUTE = "route"
    DISPATCH = "dispatch"
    WMS_ACCEPT = "wms_accept"
    PICK = "pick"
    PACK = "pack"
    SHIP = "ship"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVER = "deliver"
    REFUSE = "refuse"
    CONFIRM = "confirm"              # customer confirms, or the confirmation window ends
    CANCEL = "cancel"
    PAYMENT_TIMEOUT = "payment_timeout"
    INTERCEPT = "intercept"
    INTERCEPT_CONFIRMED = "intercept_confirmed"
    INTERCEPT_REFUSED = "intercept_refused"
    RETURNED = "returned"            # refused parcel is back in the warehouse
    CLOSE = "close"                  # after-sales window over
    CHILDREN_DONE = "children_done"  # every child of a split parent is completed
    CHILDREN_CANCELLED = "children_cancelled"


S, E = State, Event

# Cancelling is possible until picking starts; after that only interception.
_CANCELLABLE = (S.PENDING_PAYMENT, S.PAID, S.ON_HOLD, S.ROUTED, S.DISPATCHED, S.ACCEPTED)

TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.PENDING_PAYMENT, E.PAY): S.PAID,
    (S.PENDING_PAYMENT, E.PAYMENT_TIMEOUT): S.CANCELLED,
    (S.PENDING_PAYMENT, E.HOLD): S.ON_HOLD,
    (S.PAID, E.HOLD): S.ON_HOLD,
    (S.ON_HOLD, E.RELEASE): S.PAID,
    (S.ON_HOLD, E.RELEASE_UNPAID): S.PENDING_PAYMENT,
    (S.ON_HOLD, E.REJECT): S.CANCELLED,
    (S.ON_HOLD, E.PAY): S.ON_HOLD,
    (S.PAID, E.SPLIT): S.SPLIT,
    (S.PAID, E.ROUTE): S.ROUTED,
    (S.ROUTED, E.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, E.WMS_ACCEPT): S.ACCEPTED,
    (S.ACCEPTED, E.PICK): S.PICKING,
    (S.DISPATCHED, E.PICK): S.PICKING,
    (S.PICKING, E.PACK): S.PACKED,
    (S.ACCEPTED, E.SHIP): S.SHIPPED,
    (S.PICKING, E.SHIP): S.SHIPPED,
    (S.PACKED, E.SHIP): S.SHIPPED,
    (S.PICKING, E.INTERCEPT): S.INTERCEPT_REQUESTED,
    (S.PACKED, E.INTERCEPT): S.INTERCEPT_REQUESTED,
    (S.INTERCEPT_REQUESTED, E.INTERCEPT_CONFIRMED): S.CANCELLED,
    (S.INTERCEPT_REQUESTED, E.INTERCEPT_REFUSED): S.PACKED,
    # The warehouse may ship before it reads the interception request.
    (S.INTERCEPT_REQUESTED, E.SHIP): S.SHIPPED,
    (S.SHIPPED, E.IN_TRANSIT): S.IN_TRANSIT,
    (S.SHIPPED, E.DELIVER): S.DELIVERED,
    (S.SHIPPED, E.REFUSE): S.REFUSED,
    (S.IN_TRANSIT, E.IN_TRANSIT): S.IN_TRANSIT,
    (S.IN_TRANSIT, E.OUT_FOR_DELIVERY): S.OUT_FOR_DELIVERY,
    (S.IN_TRANSIT, E.DELIVER): S.DELIVERED,
    (S.IN_TRANSIT, E.REFUSE): S.REFUSED,
    (S.OUT_FOR_DELIVERY, E.DELIVER): S.DELIVERED,
    (S.OUT_FOR_DELIVERY, E.REFUSE): S.REFUSED,
    (S.DELIVERED, E.CONFIRM): S.COMPLETED,
    (S.COMPLETED, E.CLOSE): S.CLOSED,
    (S.REFUSED, E.RETURNED): S.CLOSED,
    (S.SPLIT, E.CHILDREN_DONE): S.COMPLETED,
    (S.SPLIT, E.CHILDREN_CANCELLED): S.CANCELLED,
    **{(s, E.CANCEL): S.CANCELLED for s in _CANCELLABLE},
}

TERMINAL: frozenset[State] = frozenset({S.CANCELLED, S.CLOSED})
# States in which the warehouse holds the document: a cancel must reach the WMS too.
AT_WAREHOUSE: frozenset[State] = frozenset({S.DISPATCHED, S.ACCEPTED})
# Fulfilment is under way: stock has left or is leaving the shelf.
SHIPPED_OR_LATER: frozenset[State] = frozenset(
    {S.SHIPPED, S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.COMPLETED, S.REFUSED}
)


class IllegalTransition(Exception):
    """An event that the order's current state does not accept."""

    def __init__(self, order: str, state: str, event: str) -> None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == state)
        super().__init__(
            f"order {order}: event '{event}' is not allowed in state '{state}'"
            f" (allowed: {', '.join(allowed) or 'none'})"
        )
        self.order, self.state, self.event = order, state, event


def next_state(order: str, state: str, event: str) -> State:
    try:
        return TRANSITIONS[(State(state), Event(event))]
    except (KeyError, ValueError):
        raise IllegalTransition(order, state, event) from None

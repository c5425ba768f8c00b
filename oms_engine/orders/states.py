"""The states an order can be in and the events that move it (the table is in machine.py)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    ON_HOLD = "on_hold"
    BINNED = "binned"               # in the recycle bin: cancelled for good when its period ends
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
    BIN = "bin"                      # into the recycle bin: its stock freed, its money kept for now
    RESTORE = "restore"              # out of the recycle bin, back to the review queue
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
    MOVE = "move"                    # sent to another warehouse (oms order move): routed there again
    SHORTAGE = "shortage"            # the warehouse reports it cannot fill the order: routed again

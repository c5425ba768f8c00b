"""A merged parcel once its document is written: an order leaving it, and the carrier told of it once.

The state machine calls these from the effects of its edges (orders/machine.py):

* an order cancelled out of a parcel whose document was written: the
  warehouse is sent a cancel of that document (if it has it) and a new one
  for the orders left (the group's next version, or the one order left's own
  document, the group dissolved); a document not yet sent is withdrawn when
  its turn comes (fulfilment/dispatch.py);
* an order whose interception the warehouse confirmed: the warehouse took
  its lines out itself, so it only leaves the group;
* the first order of a parcel to ship registers the whole parcel with the
  carrier, under the parcel's number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..orders.merging import GroupStatus, group_number
from ..orders.records import OrderRec, load_records
from ..storage.db import drain
from ..storage.models import MergeGroup, Order
from .documents import wms_document

# States in which an order's merged document is with the warehouse, or queued for it.
_CANCELLED = "cancelled"


@dataclass(frozen=True)
class Resend:
    """What a warehouse must be sent when an order leaves a merged parcel."""

    cancel: dict[str, Any] | None      # a cancel of the document it holds (None: it has none yet)
    document: dict[str, Any] | None    # the document for the orders left
    number: str                        # the new document's number
    lead: OrderRec | None              # the order the new document is queued under


def group_of(s: Session, order: Any) -> MergeGroup | None:
    gid = getattr(order, "merge_group_id", None)
    return s.get(MergeGroup, gid) if gid else None


def _members(s: Session, group: MergeGroup, besides: int | None = None) -> list[OrderRec]:
    drain(s)
    ids = [i for i in s.scalars(select(Order.id).where(Order.merge_group_id == group.id,
                                                       Order.status != _CANCELLED)) if i != besides]
    return load_records(s, ids, track=False, customers=False)


def leave(s: Session, order: Any, *, held_by_warehouse: bool, queued: bool, reason: str) -> Resend | None:
    """``order`` leaves its merged parcel; what the warehouse must be sent, if anything.

    ``held_by_warehouse``: the warehouse has the parcel's document; ``queued``: it is written but not sent
    (withdrawn when its turn comes). Otherwise nothing was written yet: the order just leaves.
    """
    group = group_of(s, order)
    order.merge_group_id = None
    if group is None or group.status != GroupStatus.SENT.value or not (held_by_warehouse or queued):
        return None
    before = group.number
    rest = _members(s, group, besides=order.id)
    cancel = {"order_number": before, "orders": [order.number, *(o.number for o in rest)],
              "warehouse": order.warehouse, "reason": f"order {order.number} left the parcel: {reason}"} \
        if held_by_warehouse else None
    if not rest:
        group.status = GroupStatus.DISSOLVED.value
        return Resend(cancel, None, before, None)
    group.version += 1
    if len(rest) == 1:
        group.status = GroupStatus.DISSOLVED.value
        number = rest[0].number
        s.execute(update(Order).where(Order.id == rest[0].id).values(merge_group_id=None),
                  execution_options={"synchronize_session": False})
        rest[0].merge_group_id = None
    else:
        number = group.number = group_number(before.rsplit("-M", 1)[0], group.version)
    document = wms_document(rest, number)
    if held_by_warehouse:
        document["replaces"] = before
    return Resend(cancel, document, number, rest[0])


def parcel_to_register(s: Session, order: Any, single: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
    """What the carrier is told when ``order`` ships: its own parcel, or its merged parcel the first time one of
    its orders ships (None after that: the carrier has it)."""
    group = group_of(s, order)
    if group is None:
        return single(order)
    if group.registered:
        return None
    group.registered = True
    members = [order, *(o for o in _members(s, group, besides=order.id))]
    out = single(order)
    out.update(order_number=group.number, orders=[o.number for o in members],
               weight_g=sum(ln.weight_g * ln.quantity for o in members for ln in o.lines),
               value=sum(o.payable for o in members),
               cod_amount=sum(max(o.payable - o.paid_amount, 0) for o in members if o.payment_method == "cod"))
    return out

"""What a customer may see of their order, by a signed link: its customer-visible status and parcels' tracking.

The link is ``/track/<number>?sig=<signature>``: an HMAC of the order number
under the deployment's tracking secret (the environment variable named by
config ``tracking_secret_env``; without one, a random secret made once and
kept in the database, so every process signs alike). Anyone with the link
sees the page, nobody can make one for another order, and a changed secret
voids every link.

The page says no more than a shop would tell its customer: a status in the
customer's words (an order held for review reads "Being prepared", never
why), the carrier's customer-visible scans, the parcel's tracking number, and
where it goes no closer than the city, the recipient's name and phone masked
(oms_engine/privacy.py). No amounts, no notes, no internal reasons.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..privacy import mask_address
from ..storage.models import History, Meta, Order, TrackingEvent
from .queries import get_order, iso
from .states import State

SECRET_KEY = "tracking_secret"

# Each order status in the customer's words. A status the customer should not learn about (held, in the bin,
# intercept asked) reads as the step before it.
CUSTOMER_STATUS: dict[str, str] = {
    State.PENDING_PAYMENT: "Awaiting payment",
    State.PAID: "Order received",
    State.ON_HOLD: "Being prepared",
    State.BINNED: "Being prepared",
    State.SPLIT: "Being prepared",
    State.ROUTED: "Being prepared",
    State.DISPATCHED: "Being prepared",
    State.ACCEPTED: "Being prepared",
    State.PICKING: "Being prepared",
    State.PACKED: "Packed",
    State.SHIPPED: "Shipped",
    State.IN_TRANSIT: "On its way",
    State.OUT_FOR_DELIVERY: "Out for delivery",
    State.DELIVERED: "Delivered",
    State.COMPLETED: "Delivered",
    State.INTERCEPT_REQUESTED: "Being prepared",
    State.REFUSED: "Returned to sender",
    State.CANCELLED: "Cancelled",
    State.CLOSED: "Closed",
}


class TrackingSecret:
    """The key of the links: from the environment, else made once and kept in the database."""

    def __init__(self, db: Any, env: str) -> None:
        self._db, self._env = db, env
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            given = os.environ.get(self._env, "") if self._env else ""
            self._key = given.encode() if given else self._stored()
        return self._key

    def _stored(self) -> bytes:
        with self._db.read() as s:
            found = s.scalar(select(Meta.value).where(Meta.key == SECRET_KEY))
        if found is not None:
            return str(found).encode()
        try:
            with self._db.session() as s:
                s.add(Meta(key=SECRET_KEY, value=secrets.token_urlsafe(32)))
        except IntegrityError:
            pass  # another process made it first: theirs is the one
        with self._db.read() as s:
            found = s.scalar(select(Meta.value).where(Meta.key == SECRET_KEY))
        return str(found).encode()

    def sign(self, number: str) -> str:
        mac = hmac.new(self.key(), b"track:" + number.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def verify(self, number: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(number).encode(), signature.encode("utf-8", "replace"))


def link(secret: TrackingSecret, number: str, base_url: str = "") -> str:
    return f"{base_url.rstrip('/')}/track/{number}?sig={secret.sign(number)}"


def customer_view(s: Session, number: str) -> dict[str, Any]:
    """The page's content for order ``number`` (raises OrderNotFound)."""
    order = get_order(s, number)
    parts = order.children if order.status == State.SPLIT and order.children else [order]
    return {
        "number": order.number,
        "placed_at": iso(order.placed_at),
        "status": _overall(order, parts),
        "ship_to": mask_address(order.ship_to or {}),
        "parcels": [_parcel(s, part) for part in parts],
        "steps": _steps(s, order),
    }


def _overall(order: Order, parts: list[Order]) -> str:
    if parts == [order]:
        return CUSTOMER_STATUS.get(order.status, "Being prepared")
    words = {CUSTOMER_STATUS.get(p.status, "Being prepared") for p in parts}
    return words.pop() if len(words) == 1 else "Partly " + min(
        (w.lower() for w in words if w not in ("Being prepared", "Order received")), default="being prepared")


def _parcel(s: Session, part: Order) -> dict[str, Any]:
    events = s.scalars(select(TrackingEvent).where(TrackingEvent.order_id == part.id,
                                                   TrackingEvent.customer_visible.is_(True))
                       .order_by(TrackingEvent.at, TrackingEvent.id)).all()
    return {"status": CUSTOMER_STATUS.get(part.status, "Being prepared"), "carrier": part.carrier,
            "tracking_no": part.tracking_no,
            "items": sum(line.quantity for line in part.lines),
            "events": [{"at": iso(e.at), "what": e.label or e.status, "where": e.place} for e in events]}


def _steps(s: Session, order: Order) -> list[dict[str, Any]]:
    """The order's way in the customer's words: each new word once, when it was first true."""
    steps: list[dict[str, Any]] = []
    for to_state, at in s.execute(select(History.to_state, History.at).where(History.order_id == order.id)
                                  .order_by(History.id)):
        word = CUSTOMER_STATUS.get(to_state)
        if word and (not steps or steps[-1]["status"] != word):
            steps.append({"status": word, "at": iso(at)})
    return steps

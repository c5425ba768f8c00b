"""What the simulated warehouse and carrier share: stable pseudo-randomness and their callback format."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from oms_engine import CallbackEvent


def fraction(key: str) -> float:
    """A stable pseudo-random number in [0, 1) per key: the same run gives the same demo."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def parse_status_callback(payload: Any) -> Sequence[CallbackEvent]:
    """An order's status ({order_number, status, ...}), or a report on a goods-in or goods-out document
    ({kind: receipt | shipped_out, document, lines}), or {'events': [...]} of them."""
    events = payload.get("events", [payload]) if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise ValueError("a callback is an object with order_number and status, or {'events': [...]}")
    out = []
    for ev in events:
        if isinstance(ev, dict) and ev.get("kind") in ("receipt", "shipped_out", "ack"):
            if not ev.get("document"):
                raise ValueError(f"a {ev['kind']} callback names its document: {ev!r}")
            data = {k: v for k, v in ev.items() if k not in ("kind", "status")}
            out.append(CallbackEvent(order_number=str(ev.get("order_number") or ""),
                                     status=str(ev.get("status") or ev["kind"].upper()), data=data,
                                     kind=str(ev["kind"])))
            continue
        if not isinstance(ev, dict) or not ev.get("order_number") or not ev.get("status"):
            raise ValueError(f"callback event needs order_number and status: {ev!r}")
        data = {k: v for k, v in ev.items() if k not in ("order_number", "status")}
        out.append(CallbackEvent(order_number=str(ev["order_number"]), status=str(ev["status"]), data=data))
    return out

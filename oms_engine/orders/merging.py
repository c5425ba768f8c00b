"""Merging: paid orders of one customer to one address, routed to one warehouse and not yet sent, go to the
warehouse as one document and to the customer as one parcel.

Algorithm (the merge stage, pipeline/merge.py, supplies what it reads):

1. An order at the merge step that could have no partner goes on at once,
   without asking the rules: no other order of its customer to the same
   address is in the batch, in an open group, or still on its way (paid, not
   yet past routing). That is nearly every order, and it costs one query
   per batch.
2. Otherwise the merging rules decide: ``keep_apart`` (pre-sale, cash on
   delivery...) sends it on alone with the reason; ``merge`` gives the
   terms: a window (how long after a group opened an order may still join),
   a wait (how long the group waits for the orders still on their way), and
   limits of the whole parcel (orders, value, weight) and ``separate``
   (line attributes that must not mix, such as cold chain with ambient).
3. The order joins the first open group of its key (customer, address,
   warehouse, and its values of the ``separate`` attributes) whose window
   is open and whose limits it fits; failing that it opens a group when a
   partner is in the batch or on its way, and waits with it; otherwise it
   goes on alone.
4. A group closes when its wait is over or when nothing of its customer to
   its address is on its way any more: with two orders or more its orders
   go on together (courier, then one document); an order left alone goes
   on alone.

Each order keeps its number, lines, money, history and notifications:
merging writes only ``orders.merge_group_id`` and the group. Once the
group's document is written, an order that leaves it (cancelled) takes its
lines out: the warehouse is sent a cancel of the document and a new one for
the rest (version +1), or, for one order left, that order's own document.
An interception names the order inside the document and the warehouse
takes its lines out (or answers that it cannot).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..money import format_minor
from ..rules import Decision

_SPACE = re.compile(r"\s+")
ADDRESS_FIELDS = ("name", "phone", "country", "region", "city", "district", "line1", "line2", "postcode")


class GroupStatus(StrEnum):
    OPEN = "open"            # orders may join; its orders wait
    CLOSED = "closed"        # its orders go on together: courier, then one document
    SENT = "sent"            # its document is written
    DISSOLVED = "dissolved"  # its orders went on alone


def address_key(ship_to: Mapping[str, Any]) -> str:
    """The same address however it is spaced or cased."""
    norm = [_SPACE.sub(" ", str(ship_to.get(k) or "")).strip().casefold() for k in ADDRESS_FIELDS]
    return hashlib.sha256(json.dumps(norm, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Terms:
    """What the merging rules allow for one order."""

    window: timedelta
    wait: timedelta
    max_orders: int | None = None
    max_value: int | None = None
    max_weight_g: int | None = None
    separate: tuple[str, ...] = ()
    rule: str = ""

    def limits(self) -> dict[str, Any]:
        return {"window_minutes": int(self.window.total_seconds() // 60),
                "wait_minutes": int(self.wait.total_seconds() // 60), "max_orders": self.max_orders,
                "max_value": self.max_value, "max_weight_g": self.max_weight_g, "separate": list(self.separate),
                "rule": self.rule}


@dataclass(frozen=True)
class Apart:
    reason: str
    rule: str


def terms_of(decision: Decision | None) -> Terms | Apart | None:
    """The first of the fired rules' merging actions (None: no rule says anything)."""
    for rule in (decision.fired if decision else ()):
        for action in rule.actions:
            p = action.params
            if action.name == "keep_apart":
                return Apart(str(p["reason"]), rule.name)
            if action.name == "merge":
                return Terms(window=timedelta(minutes=p["window_minutes"]),
                             wait=timedelta(minutes=p.get("wait_minutes", 0)), max_orders=p.get("max_orders"),
                             max_value=p.get("max_value"), max_weight_g=p.get("max_weight_g"),
                             separate=tuple(p.get("separate", ())), rule=rule.name)
    return None


def separation(lines: Iterable[Any], separate: Sequence[str]) -> dict[str, bool]:
    """The order's value of each attribute that must not mix (any line having it)."""
    return {a: any((ln.attributes or {}).get(a) for ln in lines) for a in separate}


@dataclass
class Group:
    """An open group as the stage sees it: its key, terms and what it holds so far."""

    id: int
    number: str
    customer_id: int
    address: str
    warehouse: str
    opened_at: datetime
    closes_at: datetime
    terms: dict[str, Any]
    separation: dict[str, bool]
    orders: list[str] = field(default_factory=list)
    value: int = 0
    weight_g: int = 0
    # Its orders' families: a split child's parent, another order's own id. Parts of one split order never
    # ship together again: the split kept them apart.
    families: set[int] = field(default_factory=set)

    def why_not(self, *, value: int, weight_g: int, sep: Mapping[str, bool], now: datetime, family: int,
                currency: str) -> str | None:
        """Why an order of this key cannot join (None: it can); ``value`` in minor units of ``currency``."""
        t = self.terms
        if family in self.families:
            return f"{self.number}: it holds another part of the same split order (the split keeps them apart)"
        if t.get("currency", currency) != currency:
            # Its value limit and the carrier's declared value are sums: of one currency only.
            return f"{self.number}: its orders are paid in {t['currency']}, this one in {currency}"
        if now - self.opened_at > timedelta(minutes=t["window_minutes"]):
            return f"{self.number}: its window of {t['window_minutes']} minutes is over"
        if t.get("max_orders") and len(self.orders) + 1 > t["max_orders"]:
            return f"{self.number}: it has {len(self.orders)} orders already (limit {t['max_orders']})"
        if t.get("max_value") and self.value + value > t["max_value"]:
            return (f"{self.number}: the parcel would be worth {format_minor(self.value + value, currency)} "
                    f"(limit {format_minor(t['max_value'], currency)})")
        if t.get("max_weight_g") and self.weight_g + weight_g > t["max_weight_g"]:
            return f"{self.number}: the parcel would weigh {self.weight_g + weight_g:,} g (limit {t['max_weight_g']:,})"
        if any(sep.get(a, False) != v for a, v in self.separation.items()):
            apart = ", ".join(a for a, v in self.separation.items() if sep.get(a, False) != v)
            return f"{self.number}: it must not mix {apart} goods with the others"
        return None

    def take(self, number: str, *, value: int, weight_g: int, wait: timedelta, now: datetime, family: int) -> None:
        self.orders.append(number)
        self.families.add(family)
        self.value += value
        self.weight_g += weight_g
        # Each order that joins may extend the wait, never past the window.
        last = self.opened_at + timedelta(minutes=self.terms["window_minutes"])
        self.closes_at = max(self.closes_at, min(now + wait, last))


def family(order: Any) -> int:
    """The order a part of a split order came from, or the order itself."""
    return order.parent_id if order.parent_id is not None else order.id


def group_number(first_order: str, version: int) -> str:
    return f"{first_order}-M{version}"

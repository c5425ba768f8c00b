"""Orders for the console's tests and screenshots: held ones with a rule behind them, and decisions a rules change
would decide otherwise.

Everything goes through the real intake and pipeline, as in production; only the dead letter is set down
directly, as eight failed attempts would have left it (waiting for eight backoffs would add nothing here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.plugin.testing import drive
from oms_engine.storage.models import OutboxMessage
from tests.support import ROOT, T0, order_json, payload

BLOCKING = (ROOT / "rules" / "blocking.yaml").read_text(encoding="utf-8")
# The change the tests make: first orders over 3,000.00 held for a look, not only those over 5,000.00.
LOWER = BLOCKING.replace("order.payable: {gt: 500000}", "order.payable: {gt: 300000}")
assert LOWER != BLOCKING, "rules/blocking.yaml changed: pick another line to change"


@dataclass
class World:
    blacklisted: str = ""     # held in screening: the customer is on the blacklist
    big_first: str = ""       # held: a new customer's first order over 5,000.00 (a TV)
    sofa: str = ""            # passed screening at 4,009.00; held once the threshold is 3,000.00
    others: list[str] = field(default_factory=list)


def _ingest(oms: OMS, *orders: dict[str, object]) -> list[str]:
    results = oms.intake.ingest("json", payload(*orders) if len(orders) > 1 else payload(orders[0]))
    assert all(r.number for r in results), results
    return [str(r.number) for r in results]


def stage(oms: OMS) -> World:
    """A blacklisted customer's order and a TV held, a sofa that passed screening."""
    [bad, tv, sofa] = _ingest(oms, order_json("BAD-1", customer="C-BAD"),
                              order_json("TV-9", [("TV-1", 1)], customer="C-TV"),
                              order_json("SOFA-9", [("SOFA-1", 1)], customer="C-SOFA"))
    oms.pipeline.run_until_idle()
    return World(blacklisted=bad, big_first=tv, sofa=sofa)


def stage_showcase(oms: OMS) -> World:
    """:func:`stage`, and a fortnight of ordinary orders moved along by the simulated warehouse and carrier,
    a few held for other reasons, a few unpaid, and a dead letter: what a working day's console shows."""
    world = stage(oms)
    skus = [[("TEA-1", 2)], [("MUG-1", 1), ("TEA-1", 1)], [("ICE-1", 3)], [("PEN-1", 10)], [("TEA-1", 1)],
            [("MUG-1", 2)], [("ICE-1", 1), ("TEA-1", 2)]]
    orders = []
    for i in range(36):
        days_ago = (i * 5) % 13
        placed = T0 - timedelta(days=days_ago, hours=(i * 7) % 9)
        orders.append(order_json(f"SHOP-{1000 + i}", skus[i % len(skus)], customer="C-OLD" if i % 3 else f"C-{i:03d}",
                                 paid=i % 9 != 4, placed_at=placed.isoformat() + "Z"))
    orders += [order_json("SHOP-2001", customer="C-BAD"),
               order_json("SHOP-2002", [("TV-1", 1)], customer="C-NEW7"),
               order_json("SHOP-2003", [("RARE-1", 3)]),
               order_json("SHOP-2004", [("GHOST-1", 1)])]
    world.others = _ingest(oms, *orders)
    drive(oms, until=oms.clock.now() + timedelta(hours=50), min_step=timedelta(minutes=30))
    # Today's orders, just in: paid and on their way to a warehouse, or waiting for their payment.
    now = oms.clock.now().isoformat() + "Z"
    world.others += _ingest(oms, *(order_json(f"SHOP-{3000 + i}", skus[i % len(skus)], paid=i != 2, placed_at=now)
                                   for i in range(5)))
    oms.pipeline.run_until_idle()
    with oms.db.session() as s:
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.topic.like("notify.%"))
                            .order_by(OutboxMessage.id.desc()).limit(1)).first()
        if message is not None:
            message.status, message.attempts = "dead", 8
            message.last_error = "SMTP 451 4.7.1 greylisted by mx1.example.com; try again later"
    return world

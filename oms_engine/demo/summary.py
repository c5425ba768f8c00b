"""The demo's closing summary: orders by final state, holds and why, routing, stock, notifications, time."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from ..storage.db import Database
from ..storage.models import History, Order, OutboxMessage, Stock

if TYPE_CHECKING:
    from ..engine import OMS
    from .generator import Plan


def stock_totals(db: Database) -> dict[str, tuple[int, int]]:
    with db.read() as s:
        return {w: (int(h), int(r)) for w, h, r in s.execute(
            select(Stock.warehouse, func.sum(Stock.on_hand), func.sum(Stock.reserved)).group_by(Stock.warehouse))}


def summarise(oms: OMS, stock_before: dict[str, tuple[int, int]], stats: dict[str, Any], plan: Plan,
             elapsed: float) -> dict[str, Any]:
    with oms.db.session() as s:
        parents = dict(s.execute(select(Order.status, func.count()).where(Order.parent_id.is_(None))
                                 .group_by(Order.status)).all())
        children = dict(s.execute(select(Order.status, func.count()).where(Order.parent_id.is_not(None))
                                  .group_by(Order.status)).all())
        holds = Counter()
        for cause in s.scalars(select(History.cause).where(History.event == "hold")):
            for reason in cause.split("; "):
                # "unmapped SKU 'X'" and "totals disagree: ..." are one kind of reason each
                holds[reason.split("'")[0].split(":")[0].strip()] += 1
        routed = dict(s.execute(select(Order.warehouse, func.count()).join(History, History.order_id == Order.id)
                                .where(History.event == "route").group_by(Order.warehouse)).all())
        split_parents = s.scalar(select(func.count(func.distinct(Order.parent_id)))
                                 .where(Order.parent_id.is_not(None))) or 0
        n_children = sum(children.values())
        sent = dict(s.execute(select(OutboxMessage.target, func.count()).where(OutboxMessage.kind == "notification",
                                                                      OutboxMessage.status == "sent")
                              .group_by(OutboxMessage.target)).all())
        unsent = s.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.status.in_(["pending", "dead"]))) or 0
        transitions = s.scalar(select(func.count()).select_from(History)) or 0
        events = dict(s.execute(select(History.event, func.count()).where(History.event.in_(
            ["intercept", "intercept_confirmed", "intercept_refused", "refuse", "payment_timeout"]))
            .group_by(History.event)).all())
        negative = s.scalar(select(func.count()).select_from(Stock).where(Stock.on_hand < Stock.reserved)) or 0
    after = stock_totals(oms.db)
    return {"orders": parents, "children": children, "holds": dict(holds.most_common()), "routing": routed,
            "split_parents": split_parents, "child_orders": n_children, "notifications": sent,
            "outbox_unsent": unsent, "transitions": transitions, "events": events,
            "stock_before": stock_before, "stock_after": after,
            "negative_available": negative, "actions": dict(stats["log"]), "ingest_errors": stats["ingest_errors"],
            "planned": dict(plan.expect), "seconds": round(elapsed, 2),
            # Every order, child orders included, taken from intake to its final state, per second of wall time.
            "orders_per_s": round((sum(parents.values()) + n_children) / elapsed, 1) if elapsed else None,
            "transitions_per_s": round(transitions / elapsed, 1) if elapsed else None,
            "simulated_until": stats["finished_at"].isoformat(timespec="minutes")}


def print_summary(console: Console, d: dict[str, Any]) -> None:
    t = Table("final state", "orders", "child orders", title="Orders by final state")
    for st in sorted(set(d["orders"]) | set(d["children"])):
        t.add_row(st, str(d["orders"].get(st, 0)), str(d["children"].get(st, 0)))
    t.add_row("[bold]total[/bold]", str(sum(d["orders"].values())), str(sum(d["children"].values())))
    console.print(t)
    t = Table("reason", "holds", title="Holds and why")
    for reason, n in d["holds"].items():
        t.add_row(reason, str(n))
    console.print(t)
    t = Table("warehouse", "orders routed", "on hand before", "on hand after", "reserved after",
              title="Routing and stock")
    for w in sorted(d["stock_before"]):
        t.add_row(w, str(d["routing"].get(w, 0)), f"{d['stock_before'][w][0]:,}", f"{d['stock_after'][w][0]:,}",
                  f"{d['stock_after'][w][1]:,}")
    console.print(t)
    console.print(f"Splits: {d['split_parents']} orders split into {d['child_orders']} child orders")
    console.print("Notifications sent: " + ", ".join(f"{k} {v}" for k, v in sorted(d["notifications"].items()))
                  + f"; outbox messages not sent: {d['outbox_unsent']}")
    ev = d["events"]
    console.print(f"Interceptions asked {ev.get('intercept', 0)}: stopped {ev.get('intercept_confirmed', 0)}, "
                  f"too late {ev.get('intercept_refused', 0)}; parcels refused at the door {ev.get('refuse', 0)}; "
                  f"unpaid orders timed out {ev.get('payment_timeout', 0)}")
    console.print("Scripted events: " + ", ".join(f"{k} {v}" for k, v in sorted(d["actions"].items())))
    if d["ingest_errors"]:
        console.print(f"Payloads refused: {len(d['ingest_errors'])}, e.g. {d['ingest_errors'][0]}")
    console.print(f"{d['transitions']:,} transitions; stock rows with negative availability: "
                  f"{d['negative_available']}; simulated until {d['simulated_until']}")
    console.print(f"[bold]Done in {d['seconds']} s[/bold]: {d['orders_per_s']} orders and "
                  f"{d['transitions_per_s']} transitions a second")


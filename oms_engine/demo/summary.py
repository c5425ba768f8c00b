"""The demo's closing summary: orders by final state, holds and why, routing, stock, notifications, time."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import case, func, select

from ..fulfilment.timeliness import Period
from ..invoices.issuing import balance
from ..money import format_minor
from ..settlement.commission import CommissionRates
from ..settlement.statements import statements
from ..storage.db import Database
from ..storage.models import (
    AftersalesCase,
    DecisionRecord,
    History,
    Invoice,
    LateStep,
    Order,
    OrderLine,
    OutboxMessage,
    Payment,
    Stock,
    StockMovement,
    WalletAccount,
    WalletMovement,
)

if TYPE_CHECKING:
    from ..engine import OMS
    from .generator import Plan


def stock_totals(db: Database) -> dict[str, tuple[int, int]]:
    with db.read() as s:
        return {w: (int(h), int(r)) for w, h, r in s.execute(
            select(Stock.warehouse, func.sum(Stock.on_hand), func.sum(Stock.reserved)).group_by(Stock.warehouse))}


def fulfilment_counts(s: Any) -> dict[str, Any]:
    """Merges, couriers, kits, lots, moves and late steps, from what the run stored."""
    last_merge: dict[int, dict[str, Any]] = {}
    fallbacks = chosen = 0
    moves: Counter[str] = Counter()
    for point, order_id, outcome in s.execute(select(DecisionRecord.point, DecisionRecord.order_id,
                                                     DecisionRecord.outcome).where(
            DecisionRecord.point.in_(["merging", "carriers", "move"])).order_by(DecisionRecord.id)):
        if point == "merging":
            last_merge[order_id] = outcome
        elif point == "carriers" and outcome.get("carrier"):
            chosen += 1
            fallbacks += any(str(t.get("result", "")).startswith("refused") and t.get("carrier") != outcome["carrier"]
                             for t in outcome.get("tried", []))
        elif point == "move":
            moves[str(outcome.get("result"))] += 1
    carriers = dict(s.execute(select(Order.carrier, func.count()).where(Order.tracking_no.is_not(None),
                                                                        Order.tracking_no != "")
                              .group_by(Order.carrier)).all())
    kits = [q for q, parts in s.execute(select(OrderLine.quantity, OrderLine.components).join(
        Order, Order.id == OrderLine.order_id).where(Order.parent_id.is_(None))) if parts]
    kit_lines, kit_units = len(kits), sum(kits)
    lot_units = s.scalar(select(func.coalesce(func.sum(-StockMovement.on_hand_delta), 0)).where(
        StockMovement.kind == "sale_out", StockMovement.lot.is_not(None))) or 0
    late = dict(s.execute(select(LateStep.step, func.count()).group_by(LateStep.step)).all())
    late_resolved = s.scalar(select(func.count()).select_from(LateStep).where(LateStep.resolved_at.is_not(None))) or 0
    # An order's last merging record says how it went: in a shared parcel (with the orders it went with).
    shared = [o for o in last_merge.values() if o.get("merged") and o.get("orders")]
    return {"merged_orders": len(shared), "merged_parcels": len({o["group"] for o in shared}),
            "carriers": {k or "-": v for k, v in carriers.items()}, "courier_choices": chosen,
            "courier_fallbacks": fallbacks, "kit_lines": int(kit_lines), "kit_units": int(kit_units),
            "lot_units_shipped": int(lot_units), "moves": dict(moves), "late_steps": late,
            "late_steps_resolved": late_resolved}


def money_counts(s: Any, rates: CommissionRates) -> dict[str, Any]:
    """Payments and refunds by status, and the money check: per currency, what the ledger took in less what it
    owes or paid back equals what the orders kept less what they gave back."""
    payments = dict(s.execute(select(Payment.kind, func.count()).group_by(Payment.kind)).all())
    refunds = {st: (int(n), int(total)) for st, n, total in s.execute(
        select(Payment.status, func.count(), func.sum(Payment.amount)).where(Payment.kind == "refund")
        .group_by(Payment.status))}
    ledger: dict[str, int] = {}
    for cur, kind, total in s.execute(select(Payment.currency, Payment.kind, func.sum(Payment.amount))
                                      .group_by(Payment.currency, Payment.kind)):
        ledger[cur] = ledger.get(cur, 0) + (int(total) if kind == "payment" else -int(total))
    orders: dict[str, int] = {}
    # Gift card and points pay a parent order (a child's are its share of them, not counted again).
    stored = case((Order.parent_id.is_(None), Order.gift_card + Order.points), else_=0)
    for cur, paid, back in s.execute(select(Order.currency, func.sum(Order.paid_amount + stored),
                                            func.sum(Order.refund_amount)).group_by(Order.currency)):
        if paid or back:
            orders[cur] = int(paid or 0) - int(back or 0)
    cases = dict(s.execute(select(AftersalesCase.status, func.count()).group_by(AftersalesCase.status)).all())
    kinds = dict(s.execute(select(Invoice.kind, func.count()).group_by(Invoice.kind)).all())
    # How the invoices and credit notes stand with the tax platform (the simulated one in the demo).
    submitted = {st: int(n) for st, n in s.execute(select(Invoice.submission, func.count())
                                                   .group_by(Invoice.submission))}
    invoiced = [o for o in s.scalars(select(Order).where(Order.id.in_(
        select(Invoice.order_id).where(Invoice.kind == "invoice"))))]
    off = sum(1 for o in invoiced if len(set(balance(s, o))) != 1)
    # Every gift card and points balance is the sum of its movements.
    moves = dict(s.execute(select(WalletMovement.kind, func.count()).group_by(WalletMovement.kind)).all())
    sums = dict(s.execute(select(WalletMovement.account_id, func.sum(WalletMovement.amount))
                          .group_by(WalletMovement.account_id)).all())
    accounts = s.execute(select(WalletAccount.id, WalletAccount.balance)).all()
    wallets_off = sum(1 for a in accounts if int(sums.get(a.id) or 0) != a.balance)
    kinds_of_case = dict(s.execute(select(AftersalesCase.kind, func.count()).group_by(AftersalesCase.kind)).all())
    # The merchants' settlement statements over the whole run add up to its invoices and credit notes.
    period = Period(datetime(1970, 1, 1), datetime(9999, 1, 1))
    settled = statements(s, period, rates)
    settlement_off = [cur for cur, tot in settled["totals"].items()
                      if sum(st["gross"] for st in settled["statements"] if st["currency"] == cur) != tot["invoiced"]
                      or sum(st["refunds"] for st in settled["statements"] if st["currency"] == cur)
                      != tot["credited"]]
    # Freight the OMS charged by its templates, and channel figures that differed from them.
    freight = Counter(str((d.outcome or {}).get("source")) for d in s.scalars(
        select(DecisionRecord).where(DecisionRecord.point == "freight")))
    return {"freight": dict(freight),
            "payments": int(payments.get("payment", 0)), "refunds": refunds, "ledger_net": ledger,
            "orders_net": orders, "balanced": ledger == orders, "cases": cases, "case_kinds": kinds_of_case,
            "invoices": int(kinds.get("invoice", 0)), "credit_notes": int(kinds.get("credit_note", 0)),
            "invoices_off": off, "einvoices": submitted, "wallet_accounts": len(accounts), "wallet_movements": moves,
            "wallets_off": wallets_off, "merchants_settled": len({st["merchant"] for st in settled["statements"]}),
            "commission": sum(st["commission"] for st in settled["statements"]),
            "settlement_off": settlement_off}


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
        fulfilment = fulfilment_counts(s)
        money = money_counts(s, CommissionRates(oms.rulebook))
    after = stock_totals(oms.db)
    return {"orders": parents, "children": children, "holds": dict(holds.most_common()), "routing": routed,
            "split_parents": split_parents, "child_orders": n_children, "notifications": sent,
            "outbox_unsent": unsent, "transitions": transitions, "events": events,
            "stock_before": stock_before, "stock_after": after,
            "negative_available": negative, "fulfilment": fulfilment, "money": money,
            "actions": dict(stats["log"]),
            "ingest_errors": stats["ingest_errors"],
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
    f = d["fulfilment"]
    console.print(f"Merged: {f['merged_orders']} orders shipped in {f['merged_parcels']} shared parcels; "
                  f"couriers chosen by rules {f['courier_choices']} times, {f['courier_fallbacks']} after a refusal; "
                  "parcels by carrier: " + ", ".join(f"{k} {v}" for k, v in sorted(f["carriers"].items())))
    console.print(f"Kits sold: {f['kit_lines']} lines, {f['kit_units']} units, shipped as their components; "
                  f"lot-tracked units shipped: {f['lot_units_shipped']}")
    console.print("Warehouse moves: " + (", ".join(f"{k} {v}" for k, v in sorted(f["moves"].items())) or "none")
                  + f"; late-step alerts: {sum(f['late_steps'].values())} ("
                  + ", ".join(f"{k} {v}" for k, v in sorted(f["late_steps"].items()))
                  + f"), {f['late_steps_resolved']} settled later")
    m = d["money"]
    # The demo sells in one currency; amounts of several could not be added up.
    one = next(iter(m["ledger_net"])) if len(m["ledger_net"]) == 1 else None
    console.print(f"Payments: {m['payments']} with serial numbers; refunds: "
                  + (", ".join(f"{st} {n}" + (f" ({format_minor(total, one)})" if one else "")
                               for st, (n, total) in sorted(m["refunds"].items())) or "none")
                  + "; taken in less paid back equals what the orders kept: "
                  + ("[bold]holds[/bold]" if m["balanced"] else
                     f"[bold red]does not hold[/bold red] (ledger {m['ledger_net']}, orders {m['orders_net']})"))
    console.print(f"Invoices: {m['invoices']}, credit notes: {m['credit_notes']}; invoiced less credited equals "
                  f"paid less refunded for every order invoiced: "
                  + ("[bold]holds[/bold]" if not m["invoices_off"] else
                     f"[bold red]does not hold for {m['invoices_off']}[/bold red]"))
    console.print("E-invoices at the tax platform: " + (", ".join(f"{st} {n}" for st, n in
                                                                  sorted(m["einvoices"].items())) or "none"))
    console.print("After-sales cases: " + (", ".join(f"{k} {v}" for k, v in sorted(m["case_kinds"].items()))
                                            or "none") + "; now " + (", ".join(f"{k} {v}" for k, v in
                                                                               sorted(m["cases"].items())) or "-"))
    console.print(f"Gift cards and points: {m['wallet_accounts']} accounts, movements "
                  + (", ".join(f"{k} {v}" for k, v in sorted(m["wallet_movements"].items())) or "none")
                  + "; every balance is the sum of its movements: "
                  + ("[bold]holds[/bold]" if not m["wallets_off"] else
                     f"[bold red]does not hold for {m['wallets_off']}[/bold red]"))
    console.print(f"Settlement: {m['merchants_settled']} merchants, commission "
                  + (format_minor(m["commission"], one) if one else str(m["commission"]))
                  + "; the statements add up to the invoices and credit notes: "
                  + ("[bold]holds[/bold]" if not m["settlement_off"] else
                     f"[bold red]does not hold in {', '.join(m['settlement_off'])}[/bold red]"))
    fr = m["freight"]
    console.print(f"Freight: {fr.get('template', 0)} orders charged by their freight template (the channel sent "
                  f"none), {fr.get('channel', 0)} channel figures differing from it recorded")
    console.print("Scripted events: " + ", ".join(f"{k} {v}" for k, v in sorted(d["actions"].items())))
    if d["ingest_errors"]:
        console.print(f"Payloads refused: {len(d['ingest_errors'])}, e.g. {d['ingest_errors'][0]}")
    console.print(f"{d['transitions']:,} transitions; stock rows with negative availability: "
                  f"{d['negative_available']}; simulated until {d['simulated_until']}")
    console.print(f"[bold]Done in {d['seconds']} s[/bold]: {d['orders_per_s']} orders and "
                  f"{d['transitions_per_s']} transitions a second")


"""The pipeline: stages that each take a batch of ready work in one transaction.

A stage claims up to ``batch_size`` rows (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so any number of workers on any number of machines share the
work through row locks alone; SQLite has one writer at a time anyway), does
its work for the whole batch, and commits once. :func:`run_until_idle`
repeats the stages until none finds work.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from . import inventory
from .contracts import Notification, OutboundMessage
from .db import append, drain, savepoint
from .domain import OrderView, SplitGroup, StockView
from .facts import order_view
from .models import History, Inbox, Order, OrderLine, Outbox, PluginState, Reservation, ScheduledTask
from .money import apportion
from .states import Event, IllegalTransition, State

if TYPE_CHECKING:
    from .app import OMS, Batch

log = logging.getLogger("oms.pipeline")
RETRY_LIMIT = 8


def _locked(s: Session, stmt: Select[Any], oms: OMS) -> Select[Any]:
    stmt = stmt.limit(oms.config.batch_size)
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


def _claim(s: Session, stmt: Select[Any], oms: OMS) -> list[Any]:
    """The first column of up to a batch of ready rows, locked for this worker."""
    return list(s.scalars(_locked(s, stmt, oms)))


def _claim_rows(s: Session, stmt: Select[Any], oms: OMS) -> list[Any]:
    """Plain rows (no ORM objects): queue tables are read and written in bulk."""
    return list(s.execute(_locked(s, stmt, oms)))


# -- screening -------------------------------------------------------------------
def screen(oms: OMS, s: Session, batch: Batch) -> int:
    ids = _claim(s, select(Order.id).where(Order.status == State.PAID.value, Order.stage == "screen")
                 .order_by(Order.id), oms)
    orders = oms.load_orders(s, ids)
    facts = oms.facts(s, orders, batch)
    for order in orders:
        decision = oms.rulebook.decide("blocking", facts[order.id])
        reasons = [a.params["reason"] for a in (decision.actions if decision else []) if a.name == "hold"]
        oms.record(s, order, "blocking", decision, {"hold": bool(reasons), "reasons": reasons})
        if reasons:
            order.hold_reason, order.hold_stage = "; ".join(reasons), "screening"
            oms.fire(s, order, Event.HOLD, actor="rules:blocking", cause=order.hold_reason, batch=batch)
        else:
            order.stage = "split"
    return len(orders)


# -- splitting -------------------------------------------------------------------
def _reserved_map(res: Sequence[Reservation]) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in res:
        out[r.warehouse][r.line_no] += r.quantity
    return {w: dict(v) for w, v in out.items()}


def split(oms: OMS, s: Session, batch: Batch) -> int:
    ids = _claim(s, select(Order.id).where(Order.status == State.PAID.value, Order.stage == "split")
                 .order_by(Order.id), oms)
    orders = oms.load_orders(s, ids)
    facts = oms.facts(s, orders, batch)
    reservations = inventory.reservations_of(s, ids)
    whs = oms.warehouses(s)
    stock = inventory.stock_view(s, {ln.sku for o in orders for ln in o.lines}, whs)
    for order in orders:
        decision = oms.rulebook.decide("split", facts[order.id])
        action = next((a for a in (decision.actions if decision else []) if a.name == "split"), None)
        view = order_view(order, _reserved_map(reservations.get(order.id, [])))
        if action is None:
            groups: tuple[SplitGroup, ...] = (SplitGroup({ln.line_no: ln.quantity for ln in order.lines}),)
            used = "single"
        else:
            strategy = oms.ext.split_strategies.get(action.params["strategy"])
            groups = strategy.run(view, stock, action.params).groups
            used = strategy.name
        groups = _shippable(oms, view, stock, groups)
        _check_plan(order, groups)
        outcome: dict[str, Any] = {"strategy": used, "groups": [
            {"lines": {str(k): v for k, v in g.lines.items()}, "reason": g.reason,
             "warehouse_hint": g.warehouse_hint} for g in groups]}
        if len(groups) <= 1:
            order.stage = "route"
            oms.record(s, order, "split", decision, {**outcome, "children": []})
            continue
        children = _make_children(oms, s, order, groups, reservations.get(order.id, []))
        outcome["children"] = [c.number for c in children]
        oms.record(s, order, "split", decision, outcome)
        order.stage = None
        oms.fire(s, order, Event.SPLIT, actor="rules:split",
                 cause=f"{used}: {len(children)} child orders", batch=batch)
    return len(orders)


class PlanError(Exception):
    pass


STOCK_REFINER = "by_warehouse_stock"


def _covered(view: OrderView, stock: StockView, group: SplitGroup) -> bool:
    """Can one warehouse ship the whole group, counting what this order already holds there?"""
    skus = {ln.line_no: ln.sku for ln in view.lines}
    for w in stock.warehouses:
        held = view.reserved.get(w.code, {})
        if all(stock.qty(w.code, skus[n]) + held.get(n, 0) >= q for n, q in group.lines.items()):
            return True
    return False


def _shippable(oms: OMS, view: OrderView, stock: StockView, groups: Sequence[SplitGroup]) -> tuple[SplitGroup, ...]:
    """Business rules decide why goods travel apart; stock decides whether a group can travel at all.

    A group that no single warehouse can ship (two cold-chain items held in
    different cold stores, say) is divided further by the stock strategy, so
    every child order can be routed.
    """
    if STOCK_REFINER not in oms.ext.split_strategies:
        return tuple(groups)
    refiner = oms.ext.split_strategies.get(STOCK_REFINER)
    out: list[SplitGroup] = []
    for g in groups:
        if _covered(view, stock, g):
            out.append(g)
            continue
        part = replace(view, lines=tuple(replace(ln, quantity=g.lines[ln.line_no]) for ln in view.lines
                                        if ln.line_no in g.lines))
        for sub in refiner.run(part, stock, {"strategy": STOCK_REFINER}).groups:
            out.append(SplitGroup(sub.lines, reason="; ".join(r for r in (g.reason, sub.reason) if r),
                                  warehouse_hint=sub.warehouse_hint))
    return tuple(out)


def _check_plan(order: Order, groups: Sequence[SplitGroup]) -> None:
    """A strategy's plan must place every unit exactly once: a plugin bug stops here."""
    want = {ln.line_no: ln.quantity for ln in order.lines}
    got: dict[int, int] = defaultdict(int)
    for g in groups:
        for line_no, q in g.lines.items():
            if q <= 0:
                raise PlanError(f"order {order.number}: split plan has quantity {q} for line {line_no}")
            got[line_no] += q
    if dict(got) != want:
        raise PlanError(f"order {order.number}: split plan {dict(got)} does not match lines {want}")


def _make_children(oms: OMS, s: Session, parent: Order, groups: Sequence[SplitGroup],
                   reservations: Sequence[Reservation]) -> list[Order]:
    now = oms.clock.now()
    lines = {ln.line_no: ln for ln in parent.lines}
    # Each line's discount follows its units into the children, to the cent.
    shares: dict[int, list[int]] = {
        n: apportion(ln.discount, [g.lines.get(n, 0) for g in groups]) for n, ln in lines.items()}
    child_lines: list[list[OrderLine]] = []
    for gi, g in enumerate(groups):
        cl = []
        for new_no, (n, q) in enumerate(sorted(g.lines.items()), start=1):
            src = lines[n]
            cl.append(OrderLine(line_no=new_no, sku=src.sku, channel_sku=src.channel_sku, name=src.name, quantity=q,
                                unit_price=src.unit_price, goods=src.unit_price * q, discount=shares[n][gi],
                                merchant=src.merchant, weight_g=src.weight_g, attributes=dict(src.attributes),
                                mapped=src.mapped))
        child_lines.append(cl)
    goods = [sum(ln.goods for ln in cl) for cl in child_lines]
    disc_w = [sum(ln.discount for ln in cl) for cl in child_lines]
    freight, tax = apportion(parent.freight, goods), apportion(parent.tax, goods)
    coupon, gift, points = (apportion(parent.coupon, disc_w), apportion(parent.gift_card, disc_w),
                            apportion(parent.points, disc_w))
    children = []
    for i, cl in enumerate(child_lines):
        payable = goods[i] + freight[i] + tax[i] - coupon[i] - gift[i] - points[i]
        child = Order(
            number=f"{parent.number}-{i + 1}", shard=parent.shard, parent_id=parent.id, channel=parent.channel,
            external_id=None, status=State.PAID.value, customer_id=parent.customer_id, customer=parent.customer,
            currency=parent.currency, ship_to=dict(parent.ship_to), goods=goods[i], freight=freight[i], tax=tax[i],
            coupon=coupon[i], gift_card=gift[i], points=points[i], payable=payable, paid_amount=0,
            payment_txn=parent.payment_txn, paid_at=parent.paid_at, placed_at=parent.placed_at, created_at=now,
            updated_at=now, stage="route", lines=cl, warehouse=groups[i].warehouse_hint)
        s.add(child)
        children.append(child)
    s.flush()
    if sum(c.payable for c in children) != parent.payable:
        raise PlanError(f"order {parent.number}: children payable does not add up to the parent's")
    for c in children:
        append(s, History, order_id=c.id, from_state=None, to_state=State.PAID.value, event="create",
               actor="rules:split", cause=f"split from {parent.number}", at=now)
    _hand_reservations(s, parent, children, groups, reservations)
    return children


def _hand_reservations(s: Session, parent: Order, children: Sequence[Order], groups: Sequence[SplitGroup],
                       reservations: Sequence[Reservation]) -> None:
    """Pass the parent's reserved units to the children, the hinted warehouse first."""
    pool: dict[int, list[list[Any]]] = defaultdict(list)
    for r in reservations:
        pool[r.line_no].append([r.warehouse, r.quantity])
    skus = {ln.line_no: ln.sku for ln in parent.lines}
    for child, g in zip(children, groups, strict=True):
        for new_no, (n, q) in enumerate(sorted(g.lines.items()), start=1):
            chunks = sorted(pool[n], key=lambda c: c[0] != g.warehouse_hint)
            left = q
            for chunk in chunks:
                take = min(left, chunk[1])
                if take:
                    s.add(Reservation(order_id=child.id, line_no=new_no, warehouse=chunk[0],
                                      sku=skus[n], quantity=take))
                    chunk[1] -= take
                    left -= take
            if left:
                raise PlanError(f"order {parent.number}: line {n} is not fully reserved")
    for r in reservations:
        s.delete(r)


# -- routing ---------------------------------------------------------------------
def route(oms: OMS, s: Session, batch: Batch) -> int:
    ids = _claim(s, select(Order.id).where(Order.status == State.PAID.value, Order.stage == "route")
                 .order_by(Order.id), oms)
    orders = oms.load_orders(s, ids)
    facts = oms.facts(s, orders, batch)
    reservations = inventory.reservations_of(s, ids)
    # One stock view for the batch, kept current as orders move their reservations;
    # it guides the strategies, the conditional UPDATEs guarantee the stock.
    available = dict(inventory.stock_view(s, {ln.sku for o in orders for ln in o.lines}, oms.warehouses(s))
                     .available)
    stock = StockView(oms.warehouses(s), available)
    for order in orders:
        _route_one(oms, s, order, reservations.get(order.id, []), stock, available, batch, facts[order.id])
    return len(orders)


def _route_one(oms: OMS, s: Session, order: Order, res: Sequence[Reservation], stock: StockView,
               available: dict[tuple[str, str], int], batch: Batch, facts: dict[str, Any]) -> None:
    now = oms.clock.now()
    view = order_view(order, _reserved_map(res))
    decision = oms.rulebook.decide("routing", facts)
    tried: list[dict[str, Any]] = []
    need = {ln.line_no: (ln.sku, ln.quantity) for ln in order.lines}
    candidates: list[tuple[str, str, str]] = []
    for action in (decision.actions if decision else []):
        if action.name != "route":
            continue
        strategy = oms.ext.routing_strategies.get(action.params["strategy"])
        plan = strategy.run(view, stock, action.params)
        tried.append({"strategy": strategy.name, "warehouse": plan.warehouse if plan else None,
                      "reason": plan.reason if plan else "no answer"})
        if plan is not None:
            candidates.append((plan.warehouse, strategy.name, plan.reason))
    reserved_at = {r.warehouse for r in res}
    if len(reserved_at) == 1 and sum(r.quantity for r in res) == sum(q for _, q in need.values()):
        # Core fallback: the stock is already held in one warehouse.
        wh = next(iter(reserved_at))
        candidates.append((wh, "core-fallback", "all units already reserved there"))
    for wh, strategy_name, reason in candidates:
        if not inventory.move_to_warehouse(s, order.id, f"order:{order.number}", wh, need, now):
            tried.append({"strategy": strategy_name, "warehouse": wh, "reason": "stock moved away; tried next"})
            continue
        held_at_target: dict[int, int] = defaultdict(int)
        for r in res:
            if r.warehouse == wh:
                held_at_target[r.line_no] += r.quantity
            else:
                available[(r.warehouse, r.sku)] = available.get((r.warehouse, r.sku), 0) + r.quantity
        for line_no, (sku, qty) in need.items():
            available[(wh, sku)] = available.get((wh, sku), 0) - (qty - held_at_target[line_no])
        order.warehouse, order.stage = wh, None
        order.carrier = oms.carrier.name
        oms.record(s, order, "routing", decision, {"warehouse": wh, "strategy": strategy_name, "reason": reason,
                                                   "tried": tried})
        oms.fire(s, order, Event.ROUTE, actor="rules:routing", cause=f"{wh} by {strategy_name}: {reason}",
                 batch=batch)
        oms.enqueue(s, order, "connector", oms.wms.name, "wms.create", _wms_document(order))
        return
    order.hold_reason, order.hold_stage = "no warehouse can ship the whole order", "routing"
    oms.record(s, order, "routing", decision, {"warehouse": None, "tried": tried})
    oms.fire(s, order, Event.HOLD, actor="rules:routing", cause=order.hold_reason, batch=batch)


def _wms_document(order: Order) -> dict[str, Any]:
    return {"order_number": order.number, "warehouse": order.warehouse, "carrier": order.carrier,
            "ship_to": order.ship_to, "currency": order.currency, "cod_amount": 0,
            "lines": [{"line_no": ln.line_no, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity}
                      for ln in order.lines]}


# -- outbox ----------------------------------------------------------------------
def dispatch_outbox(oms: OMS, s: Session, batch: Batch) -> int:
    """Send due messages, oldest first; a message waits while an older one of its order is unsent."""
    now = oms.clock.now()
    earlier = aliased(Outbox)
    stmt = (select(Outbox.id, Outbox.order_id, Outbox.order_number, Outbox.kind, Outbox.target, Outbox.topic,
                   Outbox.payload, Outbox.attempts)
            .where(Outbox.status == "pending", Outbox.available_at <= now,
                   ~exists().where(earlier.order_id == Outbox.order_id,
                                   earlier.status == "pending", earlier.id < Outbox.id))
            .order_by(Outbox.id))
    rows = _claim_rows(s, stmt, oms)
    blocked: set[int | None] = set()
    ctx = _ctx(oms, s)
    # Orders that will be dispatched, loaded (and their facts built) for the batch at once.
    dispatching = oms.load_orders(s, sorted({m.order_id for m in rows if m.topic == "wms.create" and m.order_id}))
    oms.facts(s, dispatching, batch, point="notifications")
    by_id = {o.id: o for o in dispatching}
    sent: list[int] = []
    changed: list[dict[str, Any]] = []
    for msg in rows:
        if msg.order_id is not None and msg.order_id in blocked:
            continue
        try:
            if msg.kind == "notification":
                _deliver(oms, s, msg, ctx, batch, by_id)  # touches no table: nothing to roll back
            else:
                with savepoint(s):  # a connector that fails half-way leaves no trace
                    _deliver(oms, s, msg, ctx, batch, by_id)
            sent.append(msg.id)
        except _Withdrawn as why:
            changed.append({"id": msg.id, "status": "withdrawn", "last_error": str(why)})
        except Exception as exc:  # a failed delivery is retried later, never lost
            log.warning("outbox %s (%s) failed: %s", msg.id, msg.topic, exc)
            attempts = msg.attempts + 1
            retry = now + timedelta(seconds=oms.config.timeouts.outbox_retry_seconds * 2 ** (attempts - 1))
            changed.append({"id": msg.id, "attempts": attempts, "last_error": f"{type(exc).__name__}: {exc}"[:2000],
                            "status": "dead" if attempts >= RETRY_LIMIT else "pending", "available_at": retry})
            blocked.add(msg.order_id)
    # Make what was sent durable before the batch records it as sent; if this
    # raises, the whole batch rolls back and every message stays pending.
    for _, sender in oms.ext.senders.items():
        flush = getattr(sender, "flush", None)
        if flush is not None:
            flush()
    for change in changed:
        s.execute(update(Outbox).where(Outbox.id == change.pop("id")).values(**change),
                  execution_options={"synchronize_session": False})
    # One UPDATE for the whole batch: the common case should not pay for per-row bookkeeping.
    for i in range(0, len(sent), 500):
        s.execute(update(Outbox).where(Outbox.id.in_(sent[i:i + 500]))
                  .values(status="sent", sent_at=now, attempts=Outbox.attempts + 1),
                  execution_options={"synchronize_session": False})
    return len(rows)


def _ctx(oms: OMS, s: Session) -> Any:
    from .app import Context
    return Context(oms, s)


class _Withdrawn(Exception):
    """The message is no longer wanted: its order moved on before it left."""


def _deliver(oms: OMS, s: Session, msg: Any, ctx: Any, batch: Batch, orders: dict[int, Order]) -> None:
    if msg.kind == "notification":
        p = msg.payload
        oms.ext.sender_for(msg.target).send(Notification(
            id=msg.id, order_number=msg.order_number, medium=msg.target, recipient=p["recipient"],
            template=p["template"], subject=p.get("subject", ""), body=p["body"]))
        return
    connector = oms.ext.connectors.get(msg.target)
    order = orders.get(msg.order_id) if msg.topic == "wms.create" and msg.order_id is not None else None
    if order is not None and order.status != State.ROUTED.value:
        # Cancelled after routing, before the document left: it must never reach the warehouse.
        raise _Withdrawn(f"order {order.number} is {order.status}")
    connector.send(OutboundMessage(msg.id, msg.order_number, msg.topic, msg.payload), ctx)
    if order is not None:
        oms.fire(s, order, Event.DISPATCH, actor=f"connector:{connector.name}", cause=f"document {msg.id} sent",
                 batch=batch)


# -- callbacks -------------------------------------------------------------------
def apply_inbox(oms: OMS, s: Session, batch: Batch) -> int:
    rows = _claim_rows(s, select(Inbox.id, Inbox.source, Inbox.payload).where(Inbox.status == "pending")
                       .order_by(Inbox.id), oms)
    numbers: dict[int, list[Any]] = {}
    results: dict[int, tuple[str, str]] = {}
    for row in rows:
        try:
            connector = oms.ext.connectors.get(row.source)
            numbers[row.id] = list(connector.parse_callback(row.payload))
        except (ValueError, LookupError) as exc:
            results[row.id] = ("rejected", f"unreadable callback: {exc}")
    wanted = sorted({e.order_number for evs in numbers.values() for e in evs})
    by_number = {o.number: o for o in oms.load_orders_by_number(s, wanted)}
    oms.facts(s, list(by_number.values()), batch, point="notifications")  # built once for the whole batch
    for row in rows:
        if row.id not in numbers:
            continue
        connector = oms.ext.connectors.get(row.source)
        outcomes = [_apply_event(oms, s, connector, ev, by_number.get(ev.order_number), batch)
                    for ev in numbers[row.id]]
        results[row.id] = ("rejected" if any(o.startswith("rejected") for o in outcomes) else "applied",
                           "; ".join(outcomes)[:4000])
    if results:
        s.execute(update(Inbox), [{"id": i, "status": st, "outcome": oc} for i, (st, oc) in results.items()])
    return len(rows)


def _apply_event(oms: OMS, s: Session, connector: Any, ev: Any, order: Order | None, batch: Batch) -> str:
    if order is None:
        return f"rejected: no order {ev.order_number}"
    try:
        entry = oms.status_entry(connector, ev.status)
    except LookupError as exc:
        return f"rejected: {exc}"
    try:
        # check() raises before anything is written, so no savepoint is needed.
        oms.check(order, entry.event)
    except IllegalTransition as exc:
        return f"rejected: {exc}"
    if entry.event is Event.SHIP:
        order.tracking_no = str(ev.data.get("tracking_no") or order.tracking_no or "")
        order.carrier = str(ev.data.get("carrier") or order.carrier or "")
    oms.fire(s, order, entry.event, actor=f"{connector.kind}:{connector.name}",
             cause=f"{ev.status}" + (f" {ev.data.get('note')}" if ev.data.get("note") else ""), batch=batch)
    return f"{order.number} {ev.status} -> {order.status}"


# -- timers and tasks ------------------------------------------------------------
_TIMERS = {
    State.PENDING_PAYMENT: (Event.PAYMENT_TIMEOUT, "unpaid when the payment window closed"),
    State.DELIVERED: (Event.CONFIRM, "confirmation window ended"),
    State.COMPLETED: (Event.CLOSE, "after-sales window ended"),
}


def timers(oms: OMS, s: Session, batch: Batch) -> int:
    now = oms.clock.now()
    ids = _claim(s, select(Order.id).where(Order.due_at <= now, Order.status.in_([st.value for st in _TIMERS]))
                 .order_by(Order.due_at, Order.id), oms)
    orders = oms.load_orders(s, ids)
    oms.facts(s, orders, batch, point="notifications")
    for order in orders:
        event, why = _TIMERS[State(order.status)]
        oms.fire(s, order, event, actor="timer", cause=why, batch=batch)
    return len(ids)


def tasks(oms: OMS, s: Session, batch: Batch) -> int:
    now = oms.clock.now()
    rows = _claim_rows(s, select(ScheduledTask.id, ScheduledTask.connector, ScheduledTask.key,
                                 ScheduledTask.payload).where(ScheduledTask.due_at <= now)
                       .order_by(ScheduledTask.due_at, ScheduledTask.id), oms)
    keys: dict[str, set[str]] = defaultdict(set)
    for task in rows:
        if task.key is not None:
            keys[task.connector].add(task.key)
    # Loaded into the session's identity map so that state_get needs no query; the list
    # keeps them alive (the identity map only holds unchanged objects weakly).
    states = [st for namespace, names in keys.items() for st in s.scalars(
        select(PluginState).where(PluginState.namespace == namespace, PluginState.key.in_(sorted(names))))]
    ctx = _ctx(oms, s)
    for task in rows:
        oms.ext.connectors.get(task.connector).on_task(task.payload, ctx)
    del states
    ids = [task.id for task in rows]
    for i in range(0, len(ids), 500):
        s.execute(delete(ScheduledTask).where(ScheduledTask.id.in_(ids[i:i + 500])),
                  execution_options={"synchronize_session": False})
    return len(rows)


def parents(oms: OMS, s: Session, batch: Batch) -> int:
    """A split parent follows its children: done when all are, cancelled when all are.

    A child that ends flags its parent (stage "check") in the same
    transaction, so only flagged parents are looked at and none is missed.
    """
    ids = _claim(s, select(Order.id).where(Order.status == State.SPLIT.value, Order.stage == "check")
                 .order_by(Order.id), oms)
    if not ids:
        return 0
    done = 0
    final = {State.COMPLETED.value, State.CLOSED.value, State.CANCELLED.value}
    statuses: dict[int, set[str]] = defaultdict(set)
    for pid, status in s.execute(select(Order.parent_id, Order.status).where(Order.parent_id.in_(ids))):
        statuses[pid].add(status)
    for order in oms.load_orders(s, ids):
        kids = statuses[order.id]
        order.stage = None
        if not kids <= final:
            continue
        if kids == {State.CANCELLED.value}:
            oms.fire(s, order, Event.CHILDREN_CANCELLED, actor="oms", cause="every child order was cancelled",
                     batch=batch)
        else:
            oms.fire(s, order, Event.CHILDREN_DONE, actor="oms", cause="every child order is finished", batch=batch)
        done += 1
    return done


STAGES: tuple[tuple[str, Callable[[OMS, Session, Batch], int]], ...] = (
    ("timers", timers),
    ("tasks", tasks),
    ("inbox", apply_inbox),
    ("screen", screen),
    ("split", split),
    ("route", route),
    ("outbox", dispatch_outbox),
    ("parents", parents),
)


def run_until_idle(oms: OMS, *, max_passes: int = 10_000, on_pass: Callable[[dict[str, int]], None] | None = None
                   ) -> dict[str, int]:
    """Run every stage until a whole pass finds nothing to do. Returns work done per stage."""
    from .app import Batch
    total: dict[str, int] = defaultdict(int)
    for _ in range(max_passes):
        # One transaction per pass: every stage's batch commits together.
        with oms.db.session() as s:
            batch = Batch()
            done = {}
            for name, stage in STAGES:
                done[name] = stage(oms, s, batch)
                drain(s)  # the next stage's queries must see this one's changes
                s.flush()
        for k, v in done.items():
            total[k] += v
        if on_pass:
            on_pass(done)
        if not any(done.values()):
            break
    return dict(total)


def next_due(oms: OMS) -> datetime | None:
    """The earliest time at which a timer, task or retry becomes due."""
    with oms.db.read() as s:
        times = [
            s.scalar(select(func.min(Order.due_at)).where(Order.status.in_([st.value for st in _TIMERS]))),
            s.scalar(select(func.min(ScheduledTask.due_at))),
            s.scalar(select(func.min(Outbox.available_at)).where(Outbox.status == "pending")),
        ]
    return min((t for t in times if t is not None), default=None)


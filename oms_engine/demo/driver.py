"""``oms demo``: weeks of trading, driven through the real pipeline.

It seeds a catalogue and three warehouses, generates a few thousand varied
orders as canonical JSON payloads, and feeds them through the JSON channel
(the real intake path) on a simulated clock. Customers pay, pay late or never;
some cancel; some ask to stop a parcel being picked; operations release or
reject held orders; the simulated WMS and carrier answer through callbacks.
The clock jumps from one due moment to the next, so three weeks of order life
(the 15-day confirmation window included) take seconds.

The demo runs on a database of its own (``var/demo.db`` next to config.yaml)
unless one is named, and resets it only when it holds nothing but demo orders.
Its notifications go to an outbox directory of its own (``var/demo-outbox``),
never the configured one: the file senders are idempotent on message ids, and
the demo's ids would collide with the real database's (a real notification
recorded as sent would be missing from a file the demo reset).
"""

from __future__ import annotations

import heapq
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import delete, func, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from ..clock import SimulatedClock
from ..config import Config
from ..engine import OMS
from ..errors import OmsError
from ..orders.machine import State
from ..orders.queries import get_order
from ..payments import wallets
from ..storage.db import make_engine
from ..storage.migrate import upgrade
from ..storage.models import Base, Customer, Meta, Order
from .generator import (
    CURRENCY,
    GIFT_CARD_VALUE,
    POINTS_GRANTED,
    START,
    TICK,
    WAREHOUSES,
    Plan,
    Scripted,
    gift_card,
    make_customers,
    plan_orders,
    seed_catalogue,
)
from .summary import print_summary, stock_totals, summarise

DEMO_MARK = "demo"
DEMO_DATABASE = "sqlite:///var/demo.db"
DEMO_OUTBOX = "var/demo-outbox"


class DemoRefused(OmsError):
    pass


def demo_config(config: Config, database_url: str | None) -> Config:
    """The configuration the demo runs with: its own database unless ``--db`` names one, and always its own
    outbox directory."""
    return config.model_copy(update={"database_url": database_url or DEMO_DATABASE, "outbox_dir": DEMO_OUTBOX})


def _at_real_pace(config: Config) -> Config:
    """The simulated warehouse and carrier at their real pace, whatever config.yaml says: the demo's clock
    jumps from one due moment to the next, and its customers ask to stop parcels while they are being
    picked, which takes the warehouse's time. Now and then the warehouse starts picking a day late (a
    late-step alert) or finds a bin empty (the order moves to another warehouse)."""
    return config.with_plugin_settings(sim_wms={"time_scale": 1.0, "late_rate": 0.03, "shortage_rate": 0.02},
                                       sim_carrier={"time_scale": 1.0})


def _holds_other_orders(url: str, *, any_orders: bool = False) -> bool:
    """True when the database has orders and no mark saying the demo made them (``any_orders``: any at all)."""
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        if "orders" not in tables:
            return False
        with engine.connect() as conn:
            if not conn.scalar(select(func.count()).select_from(Order)):
                return False
            if any_orders:
                return True
            return "oms_meta" not in tables or conn.scalar(select(Meta.value).where(Meta.key == DEMO_MARK)) is None
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def reset(config: Config, *, force: bool = False) -> None:
    """Empty the demo's database (and the notification files of its own outbox, see demo_config); refuse a
    database holding other orders."""
    url = config.resolved_database_url()
    if not force and _holds_other_orders(url):
        raise DemoRefused(f"the database {make_engine(url).url.render_as_string()} holds orders the demo did not "
                          "make: refusing to reset it (use another database with --db, or --force)")
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        engine.dispose()
        if path and path != ":memory:":
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
    else:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
    if config.outbox_dir != DEMO_OUTBOX:
        return  # not the demo's own outbox: its files are real deliveries and are never deleted
    outbox = config.path(config.outbox_dir)
    for f in outbox.glob("*.jsonl") if outbox.exists() else []:
        f.unlink()


def _review(oms: OMS, rng: random.Random, log: Counter[str]) -> None:
    with oms.db.session() as s:
        held = list(s.scalars(select(Order).where(Order.status == State.ON_HOLD.value)))
        facts = [(o.number, o.hold_stage, o.hold_reason or "", bool(o.customer.blacklisted)) for o in held]
    for number, stage, reason, blacklisted in facts:
        try:
            if blacklisted or "PO box" in reason or "disposable" in reason:
                oms.commands.reject(number, actor="ops:demo", note="confirmed risky in review")
                log["rejected in review"] += 1
            elif stage == "intake" and "unmapped SKU" in reason:
                continue  # waits for the catalogue team: stays held, with its reason
            elif stage in ("screening", "routing") or "totals disagree" in reason:
                oms.commands.release(number, actor="ops:demo", note="checked by a person")
                log["released in review"] += 1
        except (OmsError, ValueError) as exc:
            log[f"review refused: {type(exc).__name__}"] += 1


def run_demo(config: Config, *, orders: int = 2000, skus: int = 1200, seed: int = 7, fresh: bool = True,
             force: bool = False, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    config = _at_real_pace(config)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    if fresh:
        reset(config, force=force)
    clock = SimulatedClock(START - timedelta(hours=1))
    engine = make_engine(config.resolved_database_url())
    upgrade(engine)
    with engine.begin() as conn:  # marks the database as the demo's own, so a later run may reset it
        conn.execute(delete(Meta).where(Meta.key == DEMO_MARK))
        conn.execute(insert(Meta).values(key=DEMO_MARK, value=START.isoformat()))
    engine.dispose()
    oms = OMS(config, clock=clock)
    try:
        products = seed_catalogue(oms.db, oms.clock, rng, skus)
        customers = make_customers(rng, max(orders // 3, 50))
        with oms.db.session() as s:
            blacklisted = rng.sample(customers, max(len(customers) // 50, 2))
            s.execute(insert(Customer), [
                {"ref": c["ref"], "name": c["name"], "email": c["email"], "phone": c["phone"], "level": c["level"],
                 "blacklisted": c in blacklisted, "blacklist_reason": "chargebacks" if c in blacklisted else "",
                 "created_at": START - timedelta(days=400)} for c in customers])
        with oms.db.session() as s:   # the shop's gift cards and the points it granted its gold customers
            for c in customers:
                code = gift_card(c)
                if code:
                    wallets.credit(s, "gift_card", code, CURRENCY, GIFT_CARD_VALUE, clock.now(), actor="shop",
                                   note="issued")
                if c["level"] == "gold":
                    wallets.credit(s, "points", c["ref"], CURRENCY, POINTS_GRANTED, clock.now(), actor="shop",
                                   note="loyalty points granted")
        plan = plan_orders(rng, products, customers, orders)
        stock_before = stock_totals(oms.db)
        console.print(f"[bold]oms demo[/bold]: {len(products)} SKUs, {len(WAREHOUSES)} warehouses, "
                      f"{len(customers)} customers, {len(plan.payloads)} order payloads "
                      f"(database {oms.db.engine.url.render_as_string()})")
        stats = _drive(oms, clock, rng, plan, console)
        elapsed = time.perf_counter() - t0
        summary = summarise(oms, stock_before, stats, plan, elapsed)
        print_summary(console, summary)
        return summary
    finally:
        oms.close()


def _drive(oms: OMS, clock: SimulatedClock, rng: random.Random, plan: Plan, console: Console) -> dict[str, Any]:
    heap = list(plan.script)
    heapq.heapify(heap)
    pending = list(plan.payloads)
    numbers: dict[str, str] = {}
    log: Counter[str] = Counter()
    ingest_errors: list[str] = []
    end = START + timedelta(days=40)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[now]}"),
                        TextColumn("{task.fields[open]} open"), TimeElapsedColumn(), console=console,
                        transient=False)
    with progress:
        task = progress.add_task("simulated time", total=(end - START).total_seconds(), now="", open="")
        while True:
            now = clock.now()
            due = [p for p in pending if p[0] <= now]
            if due:
                pending = pending[len(due):]
                body = json.dumps([o for _, o in due]).encode()
                for r in oms.intake.ingest("json", body, source="demo"):
                    if r.error:
                        ingest_errors.append(f"{r.external_id}: {r.error}")
                    elif r.external_id and r.number:
                        numbers.setdefault(r.external_id, r.number)
                        log["duplicate payloads recognised"] += int(r.duplicate)
            while heap and heap[0].at <= now:
                again = _act(oms, heapq.heappop(heap), numbers, rng, log)
                if again is not None:
                    heapq.heappush(heap, again)
            oms.pipeline.run_until_idle()
            candidates = [t for t in (oms.pipeline.next_due(), heap[0].at if heap else None,
                                      pending[0][0] if pending else None) if t is not None]
            if not candidates or now > end:
                break
            clock.advance_to(max(min(candidates), now + TICK))
            progress.update(task, completed=min((clock.now() - START).total_seconds(), (end - START).total_seconds()),
                            now=f"{clock.now():%b %d %H:%M}", open=_open_orders(oms))
        progress.update(task, completed=(end - START).total_seconds())
    return {"log": log, "ingest_errors": ingest_errors, "finished_at": clock.now()}


def _open_orders(oms: OMS) -> int:
    with oms.db.read() as s:
        return s.scalar(select(func.count()).select_from(Order).where(
            Order.status.notin_([State.CLOSED.value, State.CANCELLED.value, State.COMPLETED.value]))) or 0


_BEFORE_PICKING = {State.PAID.value, State.ROUTED.value, State.DISPATCHED.value, State.ACCEPTED.value}
_BEING_PICKED = {State.PICKING.value, State.PACKED.value}
_RECEIVED = {State.DELIVERED.value, State.COMPLETED.value}
_MOVABLE = {State.ROUTED.value, State.DISPATCHED.value, State.ACCEPTED.value, State.PICKING.value}


def _act(oms: OMS, ev: Scripted, numbers: dict[str, str], rng: random.Random, log: Counter[str]
         ) -> Scripted | None:
    """Carry out one scripted event; returns an event to try again later, if any."""
    if ev.kind == "review":
        _review(oms, rng, log)
        return None
    ext_id = ev.data if ev.kind == "cancel" else ev.data[0]
    number = numbers.get(ext_id)
    if number is None:
        return None
    if ev.kind == "stop":
        # The customer asks to stop a parcel while it is being picked: they keep asking
        # (every tick, a few times) until the warehouse has started on it.
        with oms.db.read() as s:
            order = get_order(s, number)
            states = {c.status for c in order.children} if order.children else {order.status}
        tries = ev.data[1]
        if not states & _BEING_PICKED and states & _BEFORE_PICKING and tries < 8:
            return Scripted(oms.clock.now() + TICK, ev.seq, "stop", (ext_id, tries + 1))
        if not states & _BEING_PICKED:
            log["stop asked too late or too early"] += 1
            return None
    if ev.kind == "move":
        _move(oms, number, ev.data[1], log)
        return None
    if ev.kind == "aftersales":
        _aftersales(oms, number, ev.data[1], ev.data[2], log)
        return None
    actions: dict[str, Callable[[], Any]] = {
        "pay": lambda: oms.commands.pay(number, ev.data[1], ev.data[2], actor="payment:demo"),
        "cancel": lambda: oms.commands.cancel(number, actor="customer", reason="customer changed their mind"),
        "stop": lambda: oms.commands.cancel(number, actor="customer", reason="please stop the parcel"),
    }
    try:
        status = actions[ev.kind]()
        log[f"{ev.kind} -> {status}"] += 1
    except (OmsError, ValueError, LookupError) as exc:
        log[f"{ev.kind} refused ({type(exc).__name__})"] += 1
    return None


def _aftersales(oms: OMS, number: str, kind: str, turn: float, log: Counter[str]) -> None:
    """The customer opens a case on what they received (the order, or the first part of a split one that
    shipped); the rules or, for what they leave, operations decide it: most approved, some denied, and some
    of those appealed and approved after all."""
    with oms.db.read() as s:
        order = get_order(s, number)
        shipped = [o.number for o in (order.children or [order]) if o.status in _RECEIVED]
    if not shipped:
        log["after-sales: nothing received yet"] += 1
        return
    try:
        reason = {"return_refund": "not as described", "exchange": "wrong size"}.get(kind, "arrived damaged")
        case = oms.aftersales.open(shipped[0], kind, reason=reason, actor="customer")
        log[f"after-sales {kind} opened"] += 1
        if case["status"] != "under_review":
            return
        if turn < 0.7:
            oms.aftersales.act(case["number"], "approve", actor="ops:demo", note="checked the photos")
            return
        case = oms.aftersales.act(case["number"], "deny", actor="ops:demo", note="no fault found")
        if turn < 0.85:
            oms.aftersales.act(case["number"], "appeal", actor="customer", note="please look again")
            oms.aftersales.act(case["number"], "approve", actor="ops:demo", note="approved on appeal")
    except (OmsError, ValueError) as exc:
        log[f"after-sales refused: {type(exc).__name__}"] += 1


def _move(oms: OMS, number: str, turn: float, log: Counter[str]) -> None:
    """Operations move a routed order (or one part of a split one) to another warehouse equipped for its goods,
    to balance the load: cancelled at the first, through the interception rules when it is being picked, and
    sent to the second."""
    with oms.db.read() as s:
        order = get_order(s, number)
        parts = [c for c in order.children if c.status in _MOVABLE] if order.children else [order]
        part = parts[0] if parts and parts[0].status in _MOVABLE else None
        if part is not None:
            number, here = part.number, part.warehouse
            needed = {f for ln in part.lines for f in ("cold_chain", "oversize") if (ln.attributes or {}).get(f)}
    if part is None:
        log["move skipped (not routed, or shipped already)"] += 1
        return
    others = [w["code"] for w in WAREHOUSES if w["code"] != here and needed <= set(w["capabilities"])]
    if not others:
        log["move skipped (no other warehouse equipped)"] += 1
        return
    # The first in a shuffled turn that has the stock takes it (the command refuses one that has not).
    start = int(turn * len(others))
    for target in others[start:] + others[:start]:
        try:
            oms.commands.move(number, target, actor="ops:demo", reason="balancing the warehouses' load")
            log["move asked"] += 1
            return
        except OmsError as exc:
            refusal = str(exc).split(": ")[-1][:60]
    log[f"move refused: {refusal}"] += 1

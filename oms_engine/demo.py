"""``oms demo``: a realistic day of trading, driven through the real pipeline.

It seeds a catalogue and three warehouses, generates a few thousand varied
orders as canonical JSON payloads, and feeds them through the JSON channel
(the real intake path) on a simulated clock. Customers pay, pay late or never;
some cancel; some ask to stop a parcel being picked; operations release or
reject held orders; the simulated WMS and carrier answer through callbacks.
The clock jumps from one due moment to the next, so three weeks of order life
(the 15-day confirmation window included) take seconds.
"""

from __future__ import annotations

import heapq
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, insert, select

from . import commands
from .app import OMS
from .clock import SimulatedClock
from .config import Config
from .db import make_engine
from .intake import ingest
from .migrate import upgrade
from .models import Base, Customer, History, Order, Outbox, Product, Stock, Warehouse
from .pipeline import next_due, run_until_idle
from .states import IllegalTransition, State

START = datetime(2026, 11, 2, 8, 0, 0)
TICK = timedelta(hours=2)
CURRENCY = "CNY"

WAREHOUSES = [
    dict(code="WH-SH", name="Shanghai Qingpu DC", country="CN", region="Shanghai", city="Shanghai", priority=10,
         lat=31.15, lon=121.12, capabilities=["cold_chain"]),
    dict(code="WH-BJ", name="Beijing Daxing DC", country="CN", region="Beijing", city="Beijing", priority=20,
         lat=39.73, lon=116.34, capabilities=["oversize"]),
    dict(code="WH-GZ", name="Guangzhou Baiyun DC", country="CN", region="Guangdong", city="Guangzhou", priority=30,
         lat=23.39, lon=113.30, capabilities=["cold_chain", "oversize"]),
]
PLACES = [("Shanghai", "Shanghai", "Pudong"), ("Jiangsu", "Nanjing", "Gulou"), ("Zhejiang", "Hangzhou", "Xihu"),
          ("Beijing", "Beijing", "Chaoyang"), ("Tianjin", "Tianjin", "Heping"), ("Hebei", "Shijiazhuang", "Qiaoxi"),
          ("Guangdong", "Shenzhen", "Nanshan"), ("Guangdong", "Guangzhou", "Tianhe"), ("Fujian", "Xiamen", "Siming"),
          ("Sichuan", "Chengdu", "Wuhou"), ("Hubei", "Wuhan", "Wuchang")]
CATEGORIES = {"grocery": 0.0, "frozen": 1.0, "apparel": 0.0, "electronics": 0.0, "home": 0.0, "furniture": 0.0,
              "beauty": 0.0, "toys": 0.0}
SURNAMES = "Wang Li Zhang Liu Chen Yang Zhao Huang Zhou Wu Xu Sun Hu Zhu Gao Lin He Guo Ma Luo".split()  # noqa: SIM905
GIVEN = "Wei Fang Na Min Jing Lei Qiang Yan Jun Tao Ming Hua Xin Yu Hao Jie Lan Ping Bo Dan".split()  # noqa: SIM905


@dataclass(order=True)
class Scripted:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    data: Any = field(compare=False)


def _price(rng: random.Random, category: str) -> int:
    low, high = {"grocery": (590, 12900), "frozen": (1990, 29900), "apparel": (3900, 59900),
                 "electronics": (9900, 899900), "home": (1900, 49900), "furniture": (39900, 699900),
                 "beauty": (2900, 89900), "toys": (1900, 39900)}[category]
    return int(Decimal(rng.randint(low, high)).quantize(Decimal(10)))


def seed_catalogue(oms: OMS, rng: random.Random, skus: int) -> list[dict[str, Any]]:
    merchants = [f"M-{i:02d}" for i in range(1, 13)]
    products = []
    for i in range(1, skus + 1):
        category = rng.choice(list(CATEGORIES))
        cold = category == "frozen" or (category == "grocery" and rng.random() < 0.15)
        oversize = category == "furniture" or (category == "electronics" and rng.random() < 0.1)
        products.append(dict(
            sku=f"SKU-{i:05d}", name=f"{category.title()} item {i}", price=_price(rng, category), currency=CURRENCY,
            merchant=rng.choice(merchants[:4]) if rng.random() < 0.7 else rng.choice(merchants),
            weight_g=rng.randint(20_000, 60_000) if oversize else rng.randint(100, 3_000),
            attributes={"category": category, "cold_chain": cold, "oversize": oversize,
                        "presale": rng.random() < 0.02, "fragile": rng.random() < 0.1}))
    stock_rows = []
    for p in products:
        for w in WAREHOUSES:
            attrs = p["attributes"]
            if (attrs["cold_chain"] and "cold_chain" not in w["capabilities"]) or (
                    attrs["oversize"] and "oversize" not in w["capabilities"]):
                continue
            if rng.random() < 0.85:
                stock_rows.append(dict(warehouse=w["code"], sku=p["sku"], on_hand=rng.randint(5, 80), reserved=0))
    with oms.db.session() as s:
        s.execute(insert(Warehouse), WAREHOUSES)
        s.execute(insert(Product), products)
        s.execute(insert(Stock), stock_rows)
    return products


def _customers(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(1, n + 1):
        region, city, district = rng.choice(PLACES)
        name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
        out.append({"ref": f"C-{i:05d}", "name": name, "email": f"c{i:05d}@example.com",
                    "phone": f"13{rng.randint(100000000, 999999999)}", "level": rng.choice(
                        ["regular"] * 6 + ["silver"] * 3 + ["gold"]),
                    "address": {"name": name, "phone": "", "country": "CN", "region": region, "city": city,
                                "district": district, "line1": f"{rng.randint(1, 999)} {city} Road",
                                "postcode": f"{rng.randint(100000, 899999)}"}})
    for c in out:
        c["address"]["phone"] = c["phone"]
    return out


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


@dataclass
class Plan:
    payloads: list[tuple[datetime, dict[str, Any]]]
    script: list[Scripted]
    expect: Counter[str]


def plan_orders(rng: random.Random, products: list[dict[str, Any]], customers: list[dict[str, Any]],
                n: int) -> Plan:
    by_cat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_merchant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in products:
        by_cat[p["attributes"]["category"]].append(p)
        by_merchant[p["merchant"]].append(p)
    merchants = sorted(by_merchant)
    script: list[Scripted] = []
    seq = iter(range(10**9))
    payloads = []
    expect: Counter[str] = Counter()
    bursty = rng.sample(customers, 3)
    for i in range(1, n + 1):
        placed = START + timedelta(seconds=rng.randint(0, 36 * 3600))
        cust = rng.choice(bursty) if rng.random() < 0.01 else rng.choice(customers)
        address = dict(cust["address"])
        n_lines = rng.choice([1, 1, 1, 2, 2, 3, 4, 5])
        # Most baskets come from one shop; about one in five mixes merchants.
        shop = rng.choice(merchants)
        chosen = []
        for _ in range(n_lines):
            pool = by_merchant[shop] if rng.random() < 0.8 else products
            chosen.append(rng.choice(pool))
        lines = [{"sku": p["sku"], "quantity": rng.choice([1, 1, 1, 2, 3]), "unit_price": _money(p["price"])}
                 for p in {p["sku"]: p for p in chosen}.values()]
        goods = sum(int(Decimal(ln["unit_price"]) * 100) * ln["quantity"] for ln in lines)
        freight = 0 if goods >= 9900 else 1000
        coupon = rng.choice([0, 0, 0, 500, 1000, 2000]) if goods > 5000 else 0
        points = rng.choice([0, 0, 0, 0, 100, 300]) if goods > 3000 else 0
        payable = goods + freight - coupon - points
        order: dict[str, Any] = {
            "external_id": f"D-{i:06d}", "currency": CURRENCY, "placed_at": placed.isoformat() + "Z",
            "customer": {k: cust[k] for k in ("ref", "name", "email", "phone", "level")},
            "ship_to": address, "lines": lines, "freight": _money(freight), "coupon": _money(coupon),
            "points": _money(points), "declared_total": _money(payable)}
        roll = rng.random()
        txn = f"PAY-{i:06d}"
        if roll < 0.05:
            expect["never paid"] += 1                                   # payment window closes
        elif roll < 0.08:
            expect["paid late"] += 1
            script.append(Scripted(placed + timedelta(minutes=rng.randint(3, 25)), next(seq), "pay",
                                   (order["external_id"], payable, txn)))
        else:
            order["payment"] = {"transaction_id": txn, "amount": _money(payable), "method": "alipay"}
        if roll >= 0.05:
            r2 = rng.random()
            if r2 < 0.03:
                expect["customer cancels"] += 1
                script.append(Scripted(placed + timedelta(minutes=rng.randint(40, 90)), next(seq), "cancel",
                                       order["external_id"]))
            elif r2 < 0.06:
                expect["interception asked"] += 1
                script.append(Scripted(placed + timedelta(minutes=rng.randint(170, 240)), next(seq), "stop",
                                       (order["external_id"], 0)))
        odd = rng.random()
        if odd < 0.01:
            order["ship_to"] = {**address, "line1": ""}                   # incomplete address
        elif odd < 0.015:
            order["ship_to"] = {**address, "line1": f"PO Box {rng.randint(100, 999)}"}
        elif odd < 0.02:
            order["lines"] = [*lines, {"sku": f"EXT-{rng.randint(1000, 9999)}", "quantity": 1,
                                       "unit_price": "10.00"}]            # unmapped SKU: held, not dropped
            order["declared_total"] = _money(payable + 1000)
            if "payment" in order:
                order["payment"]["amount"] = _money(payable + 1000)
        elif odd < 0.025:
            order["declared_total"] = _money(payable + 100)               # totals disagree
        payloads.append((placed, order))
        if rng.random() < 0.01:
            payloads.append((placed + timedelta(minutes=5), order))       # the channel sends it again
            expect["re-sent by channel"] += 1
    # Big first orders from new customers: blocking rule material.
    for j in range(max(n // 200, 3)):
        placed = START + timedelta(hours=rng.randint(1, 30))
        p = rng.choice(by_cat["electronics"] + by_cat["furniture"])
        qty = max(1, 600000 // max(p["price"], 1) + 1)
        goods = p["price"] * qty
        ref = f"NEW-{j:04d}"
        addr = dict(rng.choice(customers)["address"])
        order = {"external_id": f"B-{j:05d}", "currency": CURRENCY, "placed_at": placed.isoformat() + "Z",
                 "customer": {"ref": ref, "name": addr["name"], "email": f"{ref.lower()}@example.com",
                              "phone": addr["phone"]}, "ship_to": addr,
                 "lines": [{"sku": p["sku"], "quantity": qty, "unit_price": _money(p["price"])}],
                 "payment": {"transaction_id": f"PAY-{ref}", "amount": _money(goods)}}
        payloads.append((placed, order))
        expect["big first orders"] += 1
    payloads.sort(key=lambda x: x[0])
    # Operations review the queue twice a day.
    for day in range(3):
        for hour in (12, 18):
            script.append(Scripted(START + timedelta(days=day, hours=hour - 8), next(seq), "review", None))
    return Plan(payloads, script, expect)


def _reset(config: Config) -> None:
    engine = make_engine(config.resolved_database_url())
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        engine.dispose()
        if path and path != ":memory:":
            from pathlib import Path
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
    else:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
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
                commands.reject(oms, number, actor="ops:demo", note="confirmed risky in review")
                log["rejected in review"] += 1
            elif stage == "intake" and "unmapped SKU" in reason:
                continue  # waits for the catalogue team: stays held, with its reason
            elif stage in ("screening", "routing") or "totals disagree" in reason:
                commands.release(oms, number, actor="ops:demo", note="checked by a person")
                log["released in review"] += 1
        except (commands.CommandError, IllegalTransition, ValueError) as exc:
            log[f"review refused: {type(exc).__name__}"] += 1


def run_demo(config: Config, *, orders: int = 2000, skus: int = 1200, seed: int = 7, fresh: bool = True,
             console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    rng = random.Random(seed)
    t0 = time.perf_counter()
    if fresh:
        _reset(config)
    clock = SimulatedClock(START - timedelta(hours=1))
    upgrade(make_engine(config.resolved_database_url()))
    oms = OMS(config, clock=clock)
    try:
        products = seed_catalogue(oms, rng, skus)
        customers = _customers(rng, max(orders // 3, 50))
        with oms.db.session() as s:
            blacklisted = rng.sample(customers, max(len(customers) // 50, 2))
            s.execute(insert(Customer), [
                {"ref": c["ref"], "name": c["name"], "email": c["email"], "phone": c["phone"], "level": c["level"],
                 "blacklisted": c in blacklisted, "blacklist_reason": "chargebacks" if c in blacklisted else "",
                 "created_at": START - timedelta(days=400)} for c in customers])
        plan = plan_orders(rng, products, customers, orders)
        stock_before = _stock_totals(oms)
        console.print(f"[bold]oms demo[/bold]: {len(products)} SKUs, {len(WAREHOUSES)} warehouses, "
                      f"{len(customers)} customers, {len(plan.payloads)} order payloads "
                      f"(database {oms.db.engine.url.render_as_string()})")
        stats = _drive(oms, clock, rng, plan, console)
        elapsed = time.perf_counter() - t0
        summary = _summary(oms, stock_before, stats, plan, elapsed)
        _print_summary(console, summary)
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
                for r in ingest(oms, "json", body, source="demo"):
                    if r.error:
                        ingest_errors.append(f"{r.external_id}: {r.error}")
                    elif r.external_id and r.number:
                        numbers.setdefault(r.external_id, r.number)
                        log["duplicate payloads recognised"] += int(r.duplicate)
            while heap and heap[0].at <= now:
                again = _act(oms, heapq.heappop(heap), numbers, rng, log)
                if again is not None:
                    heapq.heappush(heap, again)
            run_until_idle(oms)
            candidates = [t for t in (next_due(oms), heap[0].at if heap else None,
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
            order = oms.get_order(s, number)
            states = {c.status for c in order.children} if order.children else {order.status}
        tries = ev.data[1]
        if not states & _BEING_PICKED and states & _BEFORE_PICKING and tries < 8:
            return Scripted(oms.clock.now() + TICK, ev.seq, "stop", (ext_id, tries + 1))
        if not states & _BEING_PICKED:
            log["stop asked too late or too early"] += 1
            return None
    actions: dict[str, Callable[[], Any]] = {
        "pay": lambda: commands.pay(oms, number, ev.data[1], ev.data[2], actor="payment:demo"),
        "cancel": lambda: commands.cancel(oms, number, actor="customer", reason="customer changed their mind"),
        "stop": lambda: commands.cancel(oms, number, actor="customer", reason="please stop the parcel"),
    }
    try:
        status = actions[ev.kind]()
        log[f"{ev.kind} -> {status}"] += 1
    except (commands.CommandError, IllegalTransition, ValueError, LookupError) as exc:
        log[f"{ev.kind} refused ({type(exc).__name__})"] += 1
    return None


def _stock_totals(oms: OMS) -> dict[str, tuple[int, int]]:
    with oms.db.session() as s:
        return {w: (int(h), int(r)) for w, h, r in s.execute(
            select(Stock.warehouse, func.sum(Stock.on_hand), func.sum(Stock.reserved)).group_by(Stock.warehouse))}


def _summary(oms: OMS, stock_before: dict[str, tuple[int, int]], stats: dict[str, Any], plan: Plan,
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
        sent = dict(s.execute(select(Outbox.target, func.count()).where(Outbox.kind == "notification",
                                                                      Outbox.status == "sent")
                              .group_by(Outbox.target)).all())
        unsent = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status.in_(["pending", "dead"]))) or 0
        transitions = s.scalar(select(func.count()).select_from(History)) or 0
        events = dict(s.execute(select(History.event, func.count()).where(History.event.in_(
            ["intercept", "intercept_confirmed", "intercept_refused", "refuse", "payment_timeout"]))
            .group_by(History.event)).all())
        negative = s.scalar(select(func.count()).select_from(Stock).where(Stock.on_hand < Stock.reserved)) or 0
    after = _stock_totals(oms)
    return {"orders": parents, "children": children, "holds": dict(holds.most_common()), "routing": routed,
            "split_parents": split_parents, "child_orders": n_children, "notifications": sent,
            "outbox_unsent": unsent, "transitions": transitions, "events": events,
            "stock_before": stock_before, "stock_after": after,
            "negative_available": negative, "actions": dict(stats["log"]), "ingest_errors": stats["ingest_errors"],
            "planned": dict(plan.expect), "seconds": round(elapsed, 2),
            "simulated_until": stats["finished_at"].isoformat(timespec="minutes")}


def _print_summary(console: Console, d: dict[str, Any]) -> None:
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
    console.print(f"[bold]Done in {d['seconds']} s[/bold]")


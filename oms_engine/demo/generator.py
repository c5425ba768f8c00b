"""The demo's world: a catalogue, warehouses, customers, and a plan of orders with what happens to them.

Seeded from one random generator, so the same seed gives the same demo.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..clock import Clock
from ..masterdata.seeding import seed
from ..money import decimal_text
from ..storage.db import Database

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


def seed_catalogue(db: Database, clock: Clock, rng: random.Random, skus: int) -> list[dict[str, Any]]:
    """A catalogue of ``skus`` products and their opening stock in the three warehouses, set up through the
    import code (masterdata/seeding.py) as a shop's own files would be."""
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
                # Bought at 45 to 70 % of the shelf price: the stock starts valued.
                cost = p["price"] * rng.randint(45, 70) // 100
                stock_rows.append(dict(warehouse=w["code"], sku=p["sku"], quantity=rng.randint(5, 80),
                                       unit_cost=decimal_text(cost, CURRENCY)))
    seed(db, clock, warehouses=WAREHOUSES, products=products, stock=stock_rows, source="demo", actor="oms:demo")
    return products


def make_customers(rng: random.Random, n: int) -> list[dict[str, Any]]:
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


def money(minor: int) -> str:
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
        lines = [{"sku": p["sku"], "quantity": rng.choice([1, 1, 1, 2, 3]), "unit_price": money(p["price"])}
                 for p in {p["sku"]: p for p in chosen}.values()]
        goods = sum(int(Decimal(ln["unit_price"]) * 100) * ln["quantity"] for ln in lines)
        freight = 0 if goods >= 9900 else 1000
        coupon = rng.choice([0, 0, 0, 500, 1000, 2000]) if goods > 5000 else 0
        points = rng.choice([0, 0, 0, 0, 100, 300]) if goods > 3000 else 0
        payable = goods + freight - coupon - points
        order: dict[str, Any] = {
            "external_id": f"D-{i:06d}", "currency": CURRENCY, "placed_at": placed.isoformat() + "Z",
            "customer": {k: cust[k] for k in ("ref", "name", "email", "phone", "level")},
            "ship_to": address, "lines": lines, "freight": money(freight), "coupon": money(coupon),
            "points": money(points), "declared_total": money(payable)}
        roll = rng.random()
        txn = f"PAY-{i:06d}"
        if roll < 0.05:
            expect["never paid"] += 1                                   # payment window closes
        elif roll < 0.08:
            expect["paid late"] += 1
            script.append(Scripted(placed + timedelta(minutes=rng.randint(3, 25)), next(seq), "pay",
                                   (order["external_id"], payable, txn)))
        else:
            order["payment"] = {"transaction_id": txn, "amount": money(payable), "method": "alipay"}
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
            order["declared_total"] = money(payable + 1000)
            if "payment" in order:
                order["payment"]["amount"] = money(payable + 1000)
        elif odd < 0.025:
            order["declared_total"] = money(payable + 100)               # totals disagree
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
                 "lines": [{"sku": p["sku"], "quantity": qty, "unit_price": money(p["price"])}],
                 "payment": {"transaction_id": f"PAY-{ref}", "amount": money(goods)}}
        payloads.append((placed, order))
        expect["big first orders"] += 1
    payloads.sort(key=lambda x: x[0])
    # Operations review the queue twice a day.
    for day in range(3):
        for hour in (12, 18):
            script.append(Scripted(START + timedelta(days=day, hours=hour - 8), next(seq), "review", None))
    return Plan(payloads, script, expect)

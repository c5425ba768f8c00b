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

# Three carriers with their prices and transit times (sim_carrier quotes from these); ZTO is the cheapest
# and says no now and then, so the next candidate takes the parcel.
CARRIERS = [
    dict(code="SF", name="SF Express", connector="sim_carrier",
         settings={"base_price": 1800, "price_per_kg": 500, "transit_hours": 24},
         services=[dict(code="STANDARD", name="SF Standard", attributes={"max_weight_g": 30000, "cod": True}),
                   dict(code="COLD", name="SF Cold Chain", attributes={"cold_chain": True, "max_weight_g": 20000,
                                                                      "base_price": 3200, "transit_hours": 24})]),
    dict(code="ZTO", name="ZTO Express", connector="sim_carrier",
         settings={"base_price": 900, "price_per_kg": 300, "transit_hours": 60, "quote_refusal_rate": 0.15},
         services=[dict(code="ECONOMY", name="ZTO Economy", attributes={"max_weight_g": 20000, "cod": True})]),
    dict(code="DEPPON", name="Deppon Logistics", connector="sim_carrier",
         settings={"base_price": 4500, "price_per_kg": 150, "transit_hours": 72},
         services=[dict(code="HEAVY", name="Deppon Heavy Goods",
                        attributes={"max_weight_g": 500000, "oversize": True})]),
]
_ALL_CARRIERS = ["SF", "ZTO", "DEPPON"]
WAREHOUSES = [
    dict(code="WH-SH", name="Shanghai Qingpu DC", country="CN", region="Shanghai", city="Shanghai", priority=10,
         lat=31.15, lon=121.12, capabilities=["cold_chain"], carriers=_ALL_CARRIERS),
    dict(code="WH-BJ", name="Beijing Daxing DC", country="CN", region="Beijing", city="Beijing", priority=20,
         lat=39.73, lon=116.34, capabilities=["oversize"], carriers=_ALL_CARRIERS),
    dict(code="WH-GZ", name="Guangzhou Baiyun DC", country="CN", region="Guangdong", city="Guangzhou", priority=30,
         lat=23.39, lon=113.30, capabilities=["cold_chain", "oversize"], carriers=_ALL_CARRIERS),
]
KIT_SHARE = 0.03        # of the catalogue: gift sets made of two or three other products
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


def _kits(rng: random.Random, products: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """Gift sets: each a bill of materials of two or three plain products, at a tenth off their sum."""
    plain = [p for p in products if not any(p["attributes"][k] for k in ("cold_chain", "oversize", "presale"))]
    kits = []
    for i in range(start, start + max(int(len(products) * KIT_SHARE), 2)):
        parts = rng.sample(plain, rng.choice([2, 2, 3]))
        qty = {p["sku"]: rng.choice([1, 1, 2]) for p in parts}
        merchant = parts[0]["merchant"]
        kits.append(dict(sku=f"SKU-{i:05d}", name=f"Gift set {i}", currency=CURRENCY, merchant=merchant,
                         price=int(Decimal(sum(p["price"] * qty[p["sku"]] for p in parts) * 9 // 10)
                                   .quantize(Decimal(10))),
                         weight_g=sum(p["weight_g"] * qty[p["sku"]] for p in parts),
                         components=[{"sku": sku, "quantity": q} for sku, q in qty.items()],
                         attributes={"category": "gift set", "cold_chain": False, "oversize": False,
                                     "presale": False, "fragile": any(p["attributes"]["fragile"] for p in parts)}))
    return kits


def _lots(rng: random.Random, sku: int | str, quantity: int) -> list[tuple[str, int, str]]:
    """A cold-chain product's stock as two lots: one close to its expiry (under the 30 days of shelf life a
    sale needs, for some), one fresh. (lot, quantity, expires_on)"""
    soon = (START + timedelta(days=rng.randint(10, 60))).date().isoformat()
    fresh = (START + timedelta(days=rng.randint(90, 240))).date().isoformat()
    first = quantity // 3
    return [(f"L{sku}-A", first, soon), (f"L{sku}-B", quantity - first, fresh)] if first else \
        [(f"L{sku}-B", quantity, fresh)]


def seed_catalogue(db: Database, clock: Clock, rng: random.Random, skus: int) -> list[dict[str, Any]]:
    """A catalogue of ``skus`` products (a few of them gift-set kits, the cold-chain ones kept in lots with
    expiry dates) and their opening stock in the three warehouses, with three carriers, set up through the
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
                        "presale": rng.random() < 0.02, "fragile": rng.random() < 0.1}, lot_tracked=cold))
    stock_rows = []
    for p in products:
        for w in WAREHOUSES:
            attrs = p["attributes"]
            if (attrs["cold_chain"] and "cold_chain" not in w["capabilities"]) or (
                    attrs["oversize"] and "oversize" not in w["capabilities"]):
                continue
            if rng.random() < 0.85:
                # Bought at 45 to 70 % of the shelf price: the stock starts valued.
                cost = decimal_text(p["price"] * rng.randint(45, 70) // 100, CURRENCY)
                quantity = rng.randint(5, 80)
                if p["lot_tracked"]:
                    stock_rows.extend(dict(warehouse=w["code"], sku=p["sku"], quantity=q, unit_cost=cost, lot=lot,
                                           expires_on=expires)
                                      for lot, q, expires in _lots(rng, p["sku"][4:], quantity))
                else:
                    stock_rows.append(dict(warehouse=w["code"], sku=p["sku"], quantity=quantity, unit_cost=cost))
    # Kits have no stock of their own: they are picked as their components.
    products += _kits(rng, products, skus + 1)
    seed(db, clock, carriers=CARRIERS, warehouses=WAREHOUSES, products=products, stock=stock_rows, source="demo",
         actor="oms:demo", freight_templates=FREIGHT_TEMPLATES)
    return products


# What delivery costs (rules/freight.yaml names STANDARD): 10.00 anywhere in China, more to the far west,
# free when the goods after promotions reach 99.00.
FREIGHT_TEMPLATES = [
    dict(code="STANDARD", name="Standard delivery", currency=CURRENCY, free_above="99.00",
         zones=[dict(regions=["CN"], first_price="10.00"),
                dict(regions=["Xinjiang", "Tibet", "Qinghai"], first_weight_g=1000, first_price="20.00",
                     extra_weight_g=1000, extra_price="8.00", free_above="299.00")]),
]


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


GIFT_CARD_VALUE = 30000     # what each card the shop issued holds
POINTS_GRANTED = 5000       # points the shop granted each gold customer, in minor units


def gift_card(cust: dict[str, Any]) -> str | None:
    """The code of the gift card the shop issued the customer (one in eight have one), or None."""
    return f"GC-{cust['ref']}" if int(cust["ref"].rsplit("-", 1)[1]) % 8 == 0 else None


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


@dataclass
class Plan:
    payloads: list[tuple[datetime, dict[str, Any]]]
    script: list[Scripted]
    expect: Counter[str]


FOLLOW_UP_SHARE = 0.06     # orders followed by a second one from the customer within the hour or so
MOVE_SHARE = 0.015         # orders operations move to another warehouse once they are routed
AFTERSALES_SHARE = 0.05    # paid orders on which the customer opens an after-sales case some days later


def order_payload(external_id: str, placed: datetime, cust: dict[str, Any], ship_to: dict[str, Any],
                  lines: list[dict[str, Any]], txn: str) -> dict[str, Any]:
    """A paid order with no promotions: free freight from 99.00."""
    goods = sum(int(Decimal(ln["unit_price"]) * 100) * ln["quantity"] for ln in lines)
    freight = 0 if goods >= 9900 else 1000
    return {"external_id": external_id, "currency": CURRENCY, "placed_at": placed.isoformat() + "Z",
            "customer": {k: cust[k] for k in ("ref", "name", "email", "phone", "level")}, "ship_to": ship_to,
            "lines": lines, "freight": money(freight), "declared_total": money(goods + freight),
            "payment": {"transaction_id": txn, "amount": money(goods + freight), "method": "alipay"}}


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
        coupon = rng.choice([0, 0, 0, 500, 1000, 2000]) if goods > 5000 else 0
        # The shop's freight is the OMS's STANDARD template (FREIGHT_TEMPLATES): free when the goods, after the
        # coupon, reach 99.00.
        freight = 0 if goods - coupon >= 9900 else 1000
        points = rng.choice([0, 0, 0, 0, 100, 300]) if goods > 3000 else 0
        # Drawn apart from the rest of the plan, so gift cards changed no other order's fate.
        gift = min(goods // 4, 5000) if gift_card(cust) and random.Random(f"gift:{i}").random() < 0.5 else 0
        payable = goods + freight - coupon - points - gift
        order: dict[str, Any] = {
            "external_id": f"D-{i:06d}", "currency": CURRENCY, "placed_at": placed.isoformat() + "Z",
            "customer": {k: cust[k] for k in ("ref", "name", "email", "phone", "level")},
            "ship_to": address, "lines": lines, "freight": money(freight), "coupon": money(coupon),
            "points": money(points), "declared_total": money(payable)}
        if random.Random(f"freight:{i}").random() < 0.2:
            # One shop in five leaves the freight to the OMS: its template charges the same.
            del order["freight"]
            expect["freight charged by template"] += 1
        if gift:
            order["gift_card"], order["gift_card_code"] = money(gift), gift_card(cust)
            expect["paid partly by gift card"] += 1
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
        if odd >= 0.025 and "payment" in order and rng.random() < FOLLOW_UP_SHARE:
            # The customer remembers one more thing: a second order to the same address, which can go in the
            # same parcel (rules/merging.yaml).
            p = rng.choice(by_merchant[shop])
            extra = order_payload(f"D-{i:06d}-2", placed + timedelta(minutes=rng.randint(10, 80)), cust,
                                  order["ship_to"], [{"sku": p["sku"], "quantity": 1, "unit_price": money(p["price"])}],
                                  f"PAY-{i:06d}-2")
            payloads.append((datetime.fromisoformat(extra["placed_at"][:-1]), extra))
            expect["second order soon after"] += 1
        # Drawn apart from the rest of the plan, so adding after-sales changed no other order's fate.
        later = random.Random(f"aftersales:{i}")
        if roll >= 0.08 and "payment" in order and later.random() < AFTERSALES_SHARE:
            pick = later.random()
            kind = "return_refund" if pick < 0.45 else "refund_only" if pick < 0.7 else "exchange"
            expect[f"after-sales {kind.replace('_', ' ')}"] += 1
            script.append(Scripted(placed + timedelta(days=later.uniform(2.5, 6)), next(seq), "aftersales",
                                   (order["external_id"], kind, later.random())))
        if roll >= 0.08 and "payment" in order and rng.random() < MOVE_SHARE:
            expect["moved by operations"] += 1
            script.append(Scripted(placed + timedelta(minutes=rng.randint(30, 100)), next(seq), "move",
                                   (order["external_id"], rng.random())))
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

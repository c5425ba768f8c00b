"""The benchmark's world: 5 warehouses, a large catalogue, customers, and a stream of orders.

Shaped like a marketplace shop's traffic: orders of 1 to 10 lines, most from
one merchant, a few with cold-chain or oversize goods, about a fifth needing a
split and about one in twenty held by the default blocking rules (a
blacklisted customer, an incomplete or PO-box address). Stock is deep, so the
benchmark measures the pipeline, not stock-outs. Seeded: the same seed gives
the same world and the same orders.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from ..clock import Clock
from ..demo.generator import CARRIERS, FREIGHT_TEMPLATES
from ..masterdata.seeding import seed as seed_master_data
from ..storage.db import Database
from ..storage.models import Customer

# The demo's three carriers (one refusing now and then): every parcel's courier is chosen by rules/carriers.yaml.
_CARRIERS = [c["code"] for c in CARRIERS]
WAREHOUSES: list[dict[str, Any]] = [
    dict(code="WH-SH", name="Shanghai", country="CN", region="Shanghai", city="Shanghai", priority=10,
         lat=31.2, lon=121.5, capabilities=["cold_chain"], carriers=_CARRIERS),
    dict(code="WH-BJ", name="Beijing", country="CN", region="Beijing", city="Beijing", priority=20,
         lat=39.9, lon=116.4, capabilities=["oversize"], carriers=_CARRIERS),
    dict(code="WH-GZ", name="Guangzhou", country="CN", region="Guangdong", city="Guangzhou", priority=30,
         lat=23.1, lon=113.3, capabilities=["cold_chain", "oversize"], carriers=_CARRIERS),
    dict(code="WH-CD", name="Chengdu", country="CN", region="Sichuan", city="Chengdu", priority=40,
         lat=30.7, lon=104.1, capabilities=[], carriers=_CARRIERS),
    dict(code="WH-WH", name="Wuhan", country="CN", region="Hubei", city="Wuhan", priority=50,
         lat=30.6, lon=114.3, capabilities=["cold_chain"], carriers=_CARRIERS),
]
PLACES = [("Shanghai", "Shanghai"), ("Jiangsu", "Nanjing"), ("Zhejiang", "Hangzhou"), ("Beijing", "Beijing"),
          ("Tianjin", "Tianjin"), ("Hebei", "Shijiazhuang"), ("Guangdong", "Shenzhen"), ("Fujian", "Xiamen"),
          ("Sichuan", "Chengdu"), ("Hubei", "Wuhan")]
MERCHANTS = 50
COLD_SHARE, OVERSIZE_SHARE = 0.02, 0.01
MIXED_MERCHANT_SHARE = 0.12    # orders that take lines from more than one merchant
BLACKLISTED_SHARE = 0.02       # customers
INCOMPLETE_SHARE, PO_BOX_SHARE = 0.015, 0.01


@dataclass(frozen=True)
class Catalogue:
    skus: list[str]
    price: dict[str, int]
    by_merchant: dict[int, list[str]]
    special: set[str]             # cold-chain or oversize


@dataclass(frozen=True)
class World:
    """What the benchmark's database is seeded with, and what its orders are made of."""

    products: list[dict[str, Any]]
    stock: list[dict[str, Any]]
    people: list[dict[str, Any]]
    catalogue: Catalogue


def make(rng: random.Random, *, skus: int, customers: int) -> World:
    """The world, generated (the same seed gives the same world); nothing is written."""
    products, stock_rows = [], []
    by_merchant: dict[int, list[str]] = {m: [] for m in range(MERCHANTS)}
    price: dict[str, int] = {}
    special: set[str] = set()
    for i in range(skus):
        sku = f"B{i:06d}"
        roll = rng.random()
        cold, oversize = roll < COLD_SHARE, COLD_SHARE <= roll < COLD_SHARE + OVERSIZE_SHARE
        merchant = rng.randrange(MERCHANTS)
        price[sku] = rng.randrange(5, 500) * 100 + rng.choice((0, 50, 90))
        by_merchant[merchant].append(sku)
        if cold or oversize:
            special.add(sku)
        products.append(dict(sku=sku, name=f"Item {i}", price=price[sku], currency="CNY", merchant=f"M-{merchant:02d}",
                             weight_g=rng.randrange(25_000, 50_000) if oversize else rng.randrange(100, 2_000),
                             attributes={"category": "frozen" if cold else "general", "cold_chain": cold,
                                         "oversize": oversize}))
        for w in WAREHOUSES:
            if (cold and "cold_chain" not in w["capabilities"]) or (oversize and "oversize" not in w["capabilities"]):
                continue
            if rng.random() < 0.97:
                stock_rows.append(dict(warehouse=w["code"], sku=sku, quantity=100_000))
    people = []
    for i in range(customers):
        region, city = rng.choice(PLACES)
        people.append({"ref": f"BC-{i:06d}", "name": f"Customer {i}", "email": f"c{i}@example.com",
                       "phone": f"13{rng.randrange(10**8, 10**9)}", "level": "regular",
                       "blacklisted": rng.random() < BLACKLISTED_SHARE, "region": region, "city": city})
    plain = [sku for sku in price if sku not in special]
    catalogue = Catalogue(plain, price, {m: [s for s in v if s not in special] for m, v in by_merchant.items()},
                          special)
    return World(products, stock_rows, people, catalogue)


def write(db: Database, world: World) -> None:
    """The catalogue and its opening stock through the import code, as a shop's own files would come
    (masterdata/seeding.py): checked, with history, and the stock as opening rows of the ledger. Customers
    with a bulk INSERT (intake creates them; they are not master data)."""
    seed_master_data(db, Clock(), carriers=CARRIERS, warehouses=WAREHOUSES, products=world.products, stock=world.stock,
                     freight_templates=FREIGHT_TEMPLATES, source="bench", actor="oms:bench")
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.session() as s:
        s.execute(insert(Customer), [{"ref": c["ref"], "name": c["name"], "email": c["email"], "phone": c["phone"],
                                      "level": "regular", "blacklisted": c["blacklisted"],
                                      "blacklist_reason": "chargebacks" if c["blacklisted"] else "",
                                      "created_at": now} for c in world.people])


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def orders(rng: random.Random, catalogue: Catalogue, customers: list[dict[str, Any]], count: int,
           *, prefix: str = "BN", lines: tuple[int, int] = (1, 10)) -> Iterator[dict[str, Any]]:
    """``count`` canonical JSON-channel orders, paid in full, of ``lines`` (least, most) lines each."""
    special = sorted(catalogue.special)
    for i in range(count):
        c = rng.choice(customers)
        merchant = rng.randrange(MERCHANTS)
        n = rng.randint(*lines)
        chosen: dict[str, int] = {}
        for _ in range(n):  # an SKU drawn twice makes one line: n lines at most
            pool = catalogue.skus if rng.random() < MIXED_MERCHANT_SHARE / 3 else catalogue.by_merchant[merchant]
            chosen[rng.choice(pool)] = rng.choice((1, 1, 1, 2, 3))
        if rng.random() < 0.03:
            chosen[rng.choice(special)] = 1
        goods = sum(catalogue.price[sku] * q for sku, q in chosen.items())
        freight = 0 if goods >= 9900 else 1000
        address = {"name": c["name"], "phone": c["phone"], "country": "CN", "region": c["region"],
                   "city": c["city"], "district": "Centre", "line1": f"{rng.randrange(1, 999)} Road",
                   "postcode": "200000"}
        roll = rng.random()
        if roll < INCOMPLETE_SHARE:
            address["line1"] = ""
        elif roll < INCOMPLETE_SHARE + PO_BOX_SHARE:
            address["line1"] = f"PO Box {rng.randrange(100, 999)}"
        yield {"external_id": f"{prefix}-{i:07d}", "currency": "CNY",
               "placed_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
               "customer": {k: c[k] for k in ("ref", "name", "email", "phone")}, "ship_to": address,
               "lines": [{"sku": sku, "quantity": q} for sku, q in chosen.items()],
               "freight": _money(freight), "declared_total": _money(goods + freight),
               "payment": {"transaction_id": f"PAY-{prefix}-{i}", "amount": _money(goods + freight)}}


# Shapes of the rules an operations team piles up over the years: one recalled SKU, one embargoed
# postcode, one customer under watch, one merchant's big baskets... Each names values of its own, so
# with many of them few ever fire on the same order and the hold rate stays near the default rules'.
_RULE_SHAPES = (
    "any_line: {{sku: {sku}, quantity: {{gte: 3}}}}",
    "ship_to.postcode: '{postcode}'",
    "customer.ref: {ref}",
    "all: [{{order.payable: {{gt: {amount}}}}}, {{ship_to.region: {region}}}]",
    "any_line: {{merchant: M-{merchant:02d}, weight_g: {{gt: {weight}}}}}",
    "customer.email: {{matches: '@{domain}$'}}",
    "all: [{{order.item_count: {{gte: {items}}}}}, {{customer.level: {level}}}]",
    "not: {{ship_to.country: {{in: [CN, {country}]}}}}",
)


def blocking_rules(count: int, rng: random.Random, catalogue: Catalogue, customers: list[dict[str, Any]]) -> str:
    """``count`` extra blocking rules (YAML list items) in the shapes above, seeded."""
    out: list[str] = []
    for i in range(count):
        when = _RULE_SHAPES[i % len(_RULE_SHAPES)].format(
            sku=rng.choice(catalogue.skus), postcode=f"{rng.randrange(100000, 999999)}",
            ref=rng.choice(customers)["ref"], amount=rng.randrange(50_000, 5_000_000),
            region=rng.choice(PLACES)[0], merchant=rng.randrange(MERCHANTS), weight=rng.randrange(5_000, 40_000),
            domain=f"d{i}-example\\.net", items=rng.randrange(20, 60), level=f"level-{i}",
            country=f"X{chr(65 + i % 26)}")
        out.append(f"  - name: bench-rule-{i:04d}\n    priority: {100 + i}\n    when: {{{when}}}\n"
                   f"    then:\n      - hold: {{reason: bench rule {i}}}\n")
    return "".join(out)

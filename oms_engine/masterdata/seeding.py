"""A world set up through the import code: warehouses, products and opening stock, as files would bring them.

The demo, the benchmark and the test world use this rather than inserting
rows, so they go through the same checks, history and ledger (opening rows)
as a user's own data does, and ``oms stock verify`` holds for them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..clock import Clock
from ..money import decimal_text
from ..stock.opening import Openings
from ..storage.db import Database
from .files import Row
from .service import MasterData


def product_record(p: dict[str, Any]) -> dict[str, Any]:
    """A product as its import takes it: the price (minor units here) as a decimal amount."""
    return {**p, "price": decimal_text(p["price"], p["currency"])}


def seed(db: Database, clock: Clock, *, warehouses: Sequence[dict[str, Any]] = (),
         products: Sequence[dict[str, Any]] = (), stock: Sequence[dict[str, Any]] = (),
         carriers: Sequence[dict[str, Any]] = (), freight_templates: Sequence[dict[str, Any]] = (),
         source: str = "seed", actor: str = "oms:seed") -> None:
    """``carriers``: with their ``services`` nested, set up before the warehouses that name them. ``stock``:
    rows of warehouse, sku, quantity (and unit_cost, lot, expires_on), posted as opening balances."""
    md = MasterData(db=db, clock=clock)
    if carriers:
        md.apply("carriers", [Row(f"{source}:carrier {i}", dict(c)) for i, c in enumerate(carriers, 1)],
                 actor=actor, source=source)
    if warehouses:
        md.apply("warehouses", [Row(f"{source}:warehouse {i}", dict(w)) for i, w in enumerate(warehouses, 1)],
                 actor=actor, source=source)
    if products:
        md.apply("products", [Row(f"{source}:product {i}", product_record(p)) for i, p in enumerate(products, 1)],
                 actor=actor, source=source)
    if freight_templates:
        md.apply("freight-templates", [Row(f"{source}:freight template {i}", dict(f))
                                       for i, f in enumerate(freight_templates, 1)], actor=actor, source=source)
    if stock:
        Openings(db=db, clock=clock).import_rows([Row(f"{source}:stock {i}", dict(r)) for i, r in enumerate(stock, 1)],
                                                 actor=actor, source=source)

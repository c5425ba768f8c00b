"""The read-only views and plans that hooks receive and return.

Plain frozen dataclasses with no database behind them, so a strategy can be
unit-tested without the core. Stable: fields are only ever added, with
defaults, within a major version (see docs/plugins.md, "Stability").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

AttrValue = bool | int | str

# Line attributes a warehouse must list among its capabilities to handle the line.
CAPABILITY_ATTRIBUTES: tuple[str, ...] = ("cold_chain", "oversize")


@dataclass(frozen=True)
class Address:
    name: str = ""
    phone: str = ""
    country: str = ""           # ISO 3166-1 alpha-2
    region: str = ""            # province / state
    city: str = ""
    district: str = ""
    line1: str = ""
    line2: str = ""
    postcode: str = ""

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Address:
        """From a stored address, ignoring keys a later version may have added."""
        return cls(**{k: str(data.get(k) or "") for k in cls.__dataclass_fields__})

    def is_complete(self) -> bool:
        return bool(self.name and self.country and self.city and self.line1)


@dataclass(frozen=True)
class LineView:
    line_no: int
    sku: str
    quantity: int
    unit_price: int
    goods: int          # unit_price * quantity
    discount: int       # apportioned share of the order-level discounts
    merchant: str
    weight_g: int
    attributes: Mapping[str, AttrValue] = field(default_factory=dict)

    # Cached: routing asks it of every line for every warehouse it weighs (views are immutable).
    @cached_property
    def capabilities(self) -> frozenset[str]:
        """What a warehouse must be equipped for to ship this line (cold chain, oversize)."""
        return frozenset(a for a in CAPABILITY_ATTRIBUTES if self.attributes.get(a))


@dataclass(frozen=True)
class OrderView:
    number: str
    channel: str
    currency: str
    customer_ref: str
    customer_level: str
    ship_to: Address
    lines: tuple[LineView, ...]
    payable: int
    freight: int
    parent_number: str | None = None
    # warehouse -> {line_no: qty} already reserved for this order
    reserved: Mapping[str, Mapping[int, int]] = field(default_factory=dict)

    @property
    def weight_g(self) -> int:
        return sum(ln.weight_g * ln.quantity for ln in self.lines)

    @cached_property
    def capabilities(self) -> frozenset[str]:
        return frozenset().union(*(ln.capabilities for ln in self.lines if ln.quantity > 0))

    @cached_property
    def units_by_sku(self) -> Mapping[str, int]:
        """Every line in full, summed per SKU (see :func:`units_by_sku`)."""
        need: dict[str, int] = {}
        for ln in self.lines:
            if ln.quantity > 0:
                need[ln.sku] = need.get(ln.sku, 0) + ln.quantity
        return need


@dataclass(frozen=True)
class WarehouseView:
    code: str
    name: str
    country: str
    region: str
    city: str
    priority: int           # lower is preferred
    lat: float
    lon: float
    capabilities: frozenset[str] = frozenset()  # e.g. {"cold_chain", "oversize"}
    regions: frozenset[str] = frozenset()       # the regions it ships to; empty: anywhere


@dataclass(frozen=True)
class StockView:
    """Available quantity per (warehouse, sku), as seen when the decision is made."""

    warehouses: tuple[WarehouseView, ...]
    available: Mapping[tuple[str, str], int]

    def qty(self, warehouse: str, sku: str) -> int:
        return self.available.get((warehouse, sku), 0)

    def warehouse(self, code: str) -> WarehouseView:
        for w in self.warehouses:
            if w.code == code:
                return w
        raise KeyError(code)

    def for_order(self, order: OrderView) -> OrderStock:
        return OrderStock.of(order, self)


def units_by_sku(order: OrderView, lines: Mapping[int, int] | None = None) -> dict[str, int]:
    """line_no -> quantity (default: every line in full) summed per SKU: lines sharing an SKU share its stock."""
    if lines is None:
        return dict(order.units_by_sku)
    need: dict[str, int] = {}
    for ln in order.lines:
        q = ln.quantity if lines is None else lines.get(ln.line_no, 0)
        if q > 0:
            need[ln.sku] = need.get(ln.sku, 0) + q
    return need


@dataclass(frozen=True)
class OrderStock:
    """Stock as one order sees it: what is free, plus what is already reserved for this order.

    StockView.available excludes every reservation, this order's own
    included; units reserved for the order at a warehouse are nevertheless
    its to use there, so they are added back. The one answer to "can this
    warehouse ship these units?" for the core and every strategy.
    """

    order: OrderView
    stock: StockView
    available: Mapping[tuple[str, str], int]

    @classmethod
    def of(cls, order: OrderView, stock: StockView) -> OrderStock:
        sku_of = {ln.line_no: ln.sku for ln in order.lines}
        # Only this order's SKUs: a stock view may hold the whole catalogue.
        codes = dict.fromkeys([*(w.code for w in stock.warehouses), *order.reserved])
        free = stock.available.get   # StockView.qty, without a method call per pair
        skus = dict.fromkeys(sku_of.values())
        eff = {key: max(0, free(key, 0)) for key in ((w, sku) for w in codes for sku in skus)}
        for warehouse, by_line in order.reserved.items():
            for line_no, qty in by_line.items():
                sku = sku_of.get(line_no)
                # A reservation for a line this order does not have is not its to use.
                if sku is not None and qty > 0:
                    eff[(warehouse, sku)] = eff.get((warehouse, sku), 0) + qty
        return cls(order, stock, eff)

    def qty(self, warehouse: str, sku: str) -> int:
        return self.available.get((warehouse, sku), 0)

    def covers(self, warehouse: str, lines: Mapping[int, int] | None = None) -> bool:
        """Has ``warehouse`` the stock for these units (line_no -> qty; default: the whole order)?"""
        need = self.order.units_by_sku if lines is None else units_by_sku(self.order, lines)
        return all(self.qty(warehouse, sku) >= q for sku, q in need.items())

    def units(self, warehouse: str, lines: Mapping[int, int] | None = None) -> int:
        """How many of these units ``warehouse`` could ship."""
        return sum(min(q, self.qty(warehouse, sku)) for sku, q in units_by_sku(self.order, lines).items())

    def eligible(self, warehouse: WarehouseView, lines: Mapping[int, int] | None = None) -> bool:
        """Is ``warehouse`` equipped (cold chain, oversize...) for these lines?"""
        return needed_capabilities(self.order, lines) <= warehouse.capabilities

    def can_ship(self, warehouse: WarehouseView, lines: Mapping[int, int] | None = None) -> bool:
        return self.eligible(warehouse, lines) and self.covers(warehouse.code, lines)

    def shippers(self, lines: Mapping[int, int] | None = None) -> list[WarehouseView]:
        """Every warehouse that could ship these units on its own."""
        return [w for w in self.stock.warehouses if self.can_ship(w, lines)]


def needed_capabilities(order: OrderView, lines: Mapping[int, int] | None = None) -> frozenset[str]:
    if lines is None:
        return order.capabilities
    chosen: Iterable[LineView] = order.lines if lines is None else (ln for ln in order.lines if lines.get(ln.line_no))
    return frozenset().union(*(ln.capabilities for ln in chosen if ln.quantity > 0))


@dataclass(frozen=True)
class SplitGroup:
    """One child order to be: which lines (and how many of each) go together."""

    lines: Mapping[int, int]            # line_no -> quantity
    reason: str = ""
    warehouse_hint: str | None = None   # a strategy that knows where it should ship


@dataclass(frozen=True)
class SplitPlan:
    groups: tuple[SplitGroup, ...]
    strategy: str = ""


@dataclass(frozen=True)
class RoutePlan:
    warehouse: str
    reason: str = ""
    strategy: str = ""

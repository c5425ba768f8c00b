"""The read-only views and plans that hooks receive and return.

Plain frozen dataclasses with no database behind them, so a strategy can be
unit-tested without the core. Stable: fields are only ever added, with
defaults, within a major version (see docs/plugins.md, "Stability").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    # A kit's components, (sku, units per kit): the line's units are these in stock. Empty: not a kit.
    components: tuple[tuple[str, int], ...] = ()

    def stock_units(self, quantity: int | None = None) -> tuple[tuple[str, int], ...]:
        """(sku, units) that ``quantity`` of this line (default: all of it) takes from stock."""
        q = self.quantity if quantity is None else quantity
        if not self.components:
            return ((self.sku, q),)
        return tuple((sku, per * q) for sku, per in self.components)

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
    # warehouse -> {line_no: qty} already reserved for this order (whole kits, for a kit line)
    reserved: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    # warehouse -> {sku: units} already reserved for this order, kits as their components
    reserved_units: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def weight_g(self) -> int:
        return sum(ln.weight_g * ln.quantity for ln in self.lines)

    @cached_property
    def capabilities(self) -> frozenset[str]:
        return frozenset().union(*(ln.capabilities for ln in self.lines if ln.quantity > 0))

    @cached_property
    def units_by_sku(self) -> Mapping[str, int]:
        """Every line in full, summed per SKU, kits as their components (see :func:`units_by_sku`)."""
        need: dict[str, int] = {}
        for ln in self.lines:
            if ln.quantity > 0:
                for sku, q in ln.stock_units():
                    need[sku] = need.get(sku, 0) + q
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
    """line_no -> quantity (default: every line in full) summed per SKU: lines sharing an SKU share its stock
    (a kit's units are its components')."""
    if lines is None:
        return dict(order.units_by_sku)
    need: dict[str, int] = {}
    for ln in order.lines:
        q = lines.get(ln.line_no, 0)
        if q > 0:
            for sku, units in ln.stock_units(q):
                need[sku] = need.get(sku, 0) + units
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
        # Only this order's SKUs: a stock view may hold the whole catalogue.
        skus = dict.fromkeys(order.units_by_sku)
        held = order.reserved_units or _units_held(order)
        codes = dict.fromkeys([*(w.code for w in stock.warehouses), *held])
        free = stock.available.get   # StockView.qty, without a method call per pair
        eff = {key: max(0, free(key, 0)) for key in ((w, sku) for w in codes for sku in skus)}
        for warehouse, by_sku in held.items():
            for sku, qty in by_sku.items():
                # A reservation of an SKU this order does not need is not its to use.
                if sku in skus and qty > 0:
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


def _units_held(order: OrderView) -> dict[str, dict[str, int]]:
    """``reserved`` (by line) as units per SKU, for a view made without ``reserved_units``."""
    lines = {ln.line_no: ln for ln in order.lines}
    out: dict[str, dict[str, int]] = {}
    for warehouse, by_line in order.reserved.items():
        for line_no, qty in by_line.items():
            ln = lines.get(line_no)
            if ln is not None and qty > 0:
                for sku, units in ln.stock_units(qty):
                    out.setdefault(warehouse, {})[sku] = out.get(warehouse, {}).get(sku, 0) + units
    return out


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


@dataclass(frozen=True)
class ServiceView:
    """A carrier's service as master data has it: what it takes (``attributes``: ``cold_chain``, ``cod``,
    ``max_weight_g``, ``max_volume_cm3``, ``max_value``, ``regions``, ``transit_days``...)."""

    carrier: str
    code: str
    name: str
    connector: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shipment:
    """A parcel to be handed to a carrier: what courier matching weighs and a carrier quotes.

    ``reference`` is the order's number, or a merged parcel's document number (``orders`` lists every order
    in it). Amounts are minor units of ``currency``. Times are UTC: ``ready_at`` is when the warehouse is
    expected to hand the parcel over; ``deliver_from`` / ``deliver_by`` the window the customer booked, and
    ``promised_by`` the latest delivery the channel promised (None: no promise).
    """

    reference: str
    orders: tuple[str, ...]
    warehouse: str
    origin: Address
    destination: Address
    weight_g: int
    volume_cm3: int
    value: int
    currency: str
    cod_amount: int = 0
    cold_chain: bool = False
    oversize: bool = False
    ready_at: datetime | None = None
    deliver_from: datetime | None = None
    deliver_by: datetime | None = None
    promised_by: datetime | None = None


@dataclass(frozen=True)
class Quote:
    """A carrier's answer for a shipment on one service: it takes it, at ``price`` (minor units of
    ``currency``), delivering by ``eta``; or it refuses, saying why (out of area, over weight...)."""

    accepted: bool
    price: int = 0
    currency: str = ""
    eta: datetime | None = None
    reason: str = ""

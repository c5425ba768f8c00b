"""The canonical order and the plain views that plugins see.

Channel adapters turn a marketplace payload into :class:`CanonicalOrder`; the
core validates it (pydantic, so errors name the field), stores it and takes it
through the pipeline. Strategies receive :class:`OrderView` and :class:`StockView`,
plain read-only data with no database behind it, so a plugin can be unit-tested
without the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

AttrValue = bool | int | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(_Strict):
    name: str = ""
    phone: str = ""
    country: str = ""           # ISO 3166-1 alpha-2
    region: str = ""            # province / state
    city: str = ""
    district: str = ""
    line1: str = ""
    line2: str = ""
    postcode: str = ""

    def is_complete(self) -> bool:
        return bool(self.name and self.country and self.city and self.line1)


class Customer(_Strict):
    ref: str = Field(min_length=1, description="the channel's or the shop's customer id")
    name: str = ""
    email: str = ""
    phone: str = ""
    level: str = "regular"


class CanonicalLine(_Strict):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0, le=100_000)
    # Price the customer agreed to, minor units; None takes the catalogue price.
    unit_price: int | None = Field(default=None, ge=0)
    name: str | None = None
    channel_line_id: str | None = None


class CanonicalPayment(_Strict):
    transaction_id: str = Field(min_length=1)
    amount: int = Field(ge=0)
    method: str = ""
    paid_at: datetime | None = None


class CanonicalOrder(_Strict):
    """What every channel adapter produces: one order, amounts in minor units."""

    channel: str = Field(min_length=1)
    external_id: str = Field(min_length=1, max_length=128)
    currency: str = Field(min_length=3, max_length=3)
    placed_at: datetime | None = None
    customer: Customer
    ship_to: Address
    lines: tuple[CanonicalLine, ...] = Field(min_length=1, max_length=500)
    freight: int = Field(default=0, ge=0)
    tax: int = Field(default=0, ge=0)
    coupon: int = Field(default=0, ge=0)
    gift_card: int = Field(default=0, ge=0)
    points: int = Field(default=0, ge=0)
    # The total the channel says the customer owes; when it disagrees with the
    # OMS's own arithmetic the order is held, not dropped.
    declared_total: int | None = Field(default=None, ge=0)
    payment: CanonicalPayment | None = None
    note: str = ""

    @field_validator("currency")
    @classmethod
    def _upper(cls, v: str) -> str:
        if not v.isalpha():
            raise ValueError("currency must be a 3-letter ISO 4217 code")
        return v.upper()


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
    # warehouse -> {line_no: qty} reserved at creation, a hint for stock splits
    reserved: Mapping[str, Mapping[int, int]] = field(default_factory=dict)

    @property
    def weight_g(self) -> int:
        return sum(ln.weight_g * ln.quantity for ln in self.lines)


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


@dataclass(frozen=True)
class StockView:
    """Available quantity per (warehouse, sku), as seen when the decision is made."""

    warehouses: tuple[WarehouseView, ...]
    available: Mapping[tuple[str, str], int]

    def qty(self, warehouse: str, sku: str) -> int:
        return self.available.get((warehouse, sku), 0)

    def covers(self, warehouse: str, lines: tuple[LineView, ...] | list[LineView]) -> bool:
        need: dict[str, int] = {}
        for ln in lines:
            need[ln.sku] = need.get(ln.sku, 0) + ln.quantity
        return all(self.qty(warehouse, sku) >= q for sku, q in need.items())

    def warehouse(self, code: str) -> WarehouseView:
        for w in self.warehouses:
            if w.code == code:
                return w
        raise KeyError(code)


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
class ParsedPayload:
    """One order out of a payload, or the error that stopped it."""

    external_id: str | None
    order: CanonicalOrder | None = None
    error: str | None = None
    raw: Any = None

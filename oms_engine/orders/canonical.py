"""The canonical order: what every channel adapter produces.

Channel adapters turn a marketplace payload into :class:`CanonicalOrder`; the
core validates it (pydantic, so errors name the field), stores it and takes it
through the pipeline. Amounts are integer minor units of the order's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanonicalAddress(_Strict):
    name: str = ""
    phone: str = ""
    country: str = ""           # ISO 3166-1 alpha-2
    region: str = ""            # province / state
    city: str = ""
    district: str = ""
    line1: str = ""
    line2: str = ""
    postcode: str = ""


class CanonicalCustomer(_Strict):
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
    customer: CanonicalCustomer
    ship_to: CanonicalAddress
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
class ParsedPayload:
    """One order out of a payload, or the error that stopped it."""

    external_id: str | None
    order: CanonicalOrder | None = None
    error: str | None = None
    raw: Any = None

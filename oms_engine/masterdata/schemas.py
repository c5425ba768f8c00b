"""What a master record may say: one pydantic model per entity, the same for a file row, the API and the CLI.

Rows from CSV come as text; the models take "12", "true" and "yes" where a
number or a boolean is meant, and a list cell ("cold_chain;oversize") where a
list is. Unknown fields are errors, so a misspelt column is not silently
ignored. Money ("59.00") is read exactly in the record's currency
(money.py) and stored in minor units.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..money import MoneyError, currency_digits, decimal_text, to_minor
from ..orders.canonical import Id32, Id64, SingleLine, Text64, Text100, Text200

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(";") if item.strip()]
    return value


def _components(value: object) -> object:
    """A bill of materials as a CSV cell gives it: "TEA-1:2;CUP-1:1" (SKU:quantity, ';' between)."""
    if not isinstance(value, str):
        return value
    out = []
    for item in _split(value):  # type: ignore[union-attr]
        sku, sep, qty = item.rpartition(":")
        if not sep or not sku.strip():
            raise ValueError(f"{item[:40]!r} is not SKU:quantity (e.g. \"TEA-1:2\")")
        out.append({"sku": sku.strip(), "quantity": qty.strip()})
    return out


def _code(value: object) -> object:
    if isinstance(value, str) and not _CODE.fullmatch(value):
        raise ValueError(f"{value[:40]!r} is not a code: letters, digits, '.', '_' and '-', starting with a "
                         "letter or digit")
    return value


Code32 = Annotated[Id32, BeforeValidator(_code)]
Code64 = Annotated[Id64, BeforeValidator(_code)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200), SingleLine]
Names = Annotated[list[Annotated[str, Field(min_length=1, max_length=64), SingleLine]], BeforeValidator(_split)]
Scalar = str | int | bool | float | None


def _currency(code: str) -> str:
    currency_digits(code)   # the one ISO 4217 table the OMS reads amounts with (money.py)
    return code


Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]
Country = Annotated[str, Field(strict=True, pattern=r"^[A-Z]{2}$")]
Count = Annotated[int, Field(ge=0, le=10**9)]
Flag = Annotated[bool, Field()]


def _money(value: Any, info: ValidationInfo, currency_field: str = "currency") -> int:
    currency = info.data.get(currency_field)
    if currency is None:
        return 0   # the currency's own error is reported; an amount cannot be read without it
    try:
        return to_minor(value if not isinstance(value, float) else str(value), currency)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    active: Flag = True


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    sku: Code64
    quantity: Annotated[int, Field(gt=0, le=10_000)]


class ProductIn(Record):
    sku: Code64
    name: Name
    currency: Currency
    price: int            # minor units of ``currency``; given as a decimal amount, e.g. "59.00"
    merchant: Id64
    weight_g: Count = 0
    length_mm: Count = 0
    width_mm: Count = 0
    height_mm: Count = 0
    barcode: Text64 | None = None
    supplier: Code32 | None = None
    attributes: dict[str, Scalar] = {}
    # A kit: the components one unit of it is made of (none: not a kit).
    components: Annotated[list[Component], BeforeValidator(_components)] = []
    lot_tracked: Flag = False
    # Shorthands for the attributes the OMS itself reads (split, routing, couriers).
    category: Text64 | None = None
    cold_chain: bool | None = None
    oversize: bool | None = None
    presale: bool | None = None
    fragile: bool | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any, info: ValidationInfo) -> int:
        return _money(value, info)

    @model_validator(mode="after")
    def _shorthands(self) -> ProductIn:
        attrs = dict(self.attributes)
        for name in ("category", "cold_chain", "oversize", "presale", "fragile"):
            value = getattr(self, name)
            if value is not None:
                attrs[name] = value
                setattr(self, name, None)
        self.attributes = attrs
        skus = [c.sku for c in self.components]
        if len(set(skus)) != len(skus):
            raise ValueError("a kit names each component once")
        if self.sku in skus:
            raise ValueError("a kit cannot be its own component")
        if self.components and self.lot_tracked:
            raise ValueError("a kit has no stock of its own, so no lots: track its components' lots instead")
        return self


class WarehouseIn(Record):
    code: Code32
    name: Annotated[str, Field(strict=True, min_length=1, max_length=100), SingleLine]
    country: Country
    region: Text64
    city: Text64
    priority: Annotated[int, Field(ge=0, le=1_000_000)] = 100
    lat: Annotated[float, Field(ge=-90, le=90)] = 0.0
    lon: Annotated[float, Field(ge=-180, le=180)] = 0.0
    capabilities: Names = []
    regions: Names = []
    carriers: Names = []     # the carriers that collect from it; none: every active carrier
    address: dict[str, Annotated[str, Field(max_length=200), SingleLine]] = {}
    wms_connector: Code64 | None = None
    wms_settings: dict[str, Scalar] = {}


class CarrierIn(Record):
    code: Code32
    name: Text100
    connector: Code64 | None = None
    settings: dict[str, Scalar | list[Scalar]] = {}


class ServiceIn(Record):
    carrier: Code32
    code: Code32
    name: Text100
    attributes: dict[str, Scalar | list[Scalar]] = {}


class SupplierIn(Record):
    code: Code32
    name: Text200
    contact: dict[str, Annotated[str, Field(max_length=200), SingleLine]] = {}
    address: dict[str, Annotated[str, Field(max_length=200), SingleLine]] = {}


def _region(value: str) -> str:
    # "*" (anywhere), "CN" (a country), "CN/Jiangsu" (a region of a country) or "Jiangsu" (a region by name).
    country, sep, region = value.partition("/")
    if sep and (not re.fullmatch(r"[A-Z]{2}", country) or not region.strip()):
        raise ValueError(f"{value[:40]!r} is not COUNTRY/REGION (e.g. \"CN/Xinjiang\")")
    return value


Region = Annotated[str, Field(min_length=1, max_length=64), SingleLine, AfterValidator(_region)]
AmountIn = str | int
Weight = Annotated[int, Field(ge=0, le=10**9)]


class FreightZoneIn(BaseModel):
    """A zone of a freight template: where it applies and what it charges. Amounts are decimal amounts in the
    template's currency ("12.00"); the template turns them into minor units."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    regions: Annotated[list[Region], BeforeValidator(_split), Field(min_length=1, max_length=200)]
    first_weight_g: Weight = 0            # 0: one price whatever the weight (then extra_price is 0)
    first_price: AmountIn
    extra_weight_g: Annotated[int, Field(ge=1, le=10**9)] = 1000
    extra_price: AmountIn = 0
    free_above: AmountIn | None = None    # overrides the template's threshold for this zone


class FreightTemplateIn(Record):
    code: Code32
    name: Text100
    currency: Currency
    zones: Annotated[list[FreightZoneIn], Field(min_length=1, max_length=100)]
    # Goods (after promotions) at or above it travel free; a zone may say otherwise.
    free_above: AmountIn | None = None

    @model_validator(mode="after")
    def _amounts(self) -> FreightTemplateIn:
        try:
            self.free_above = _amount(self.free_above, self.currency)
            for i, z in enumerate(self.zones):
                z.first_price, z.extra_price = _amount(z.first_price, self.currency), _amount(z.extra_price,
                                                                                              self.currency)
                z.free_above = _amount(z.free_above, self.currency)
                if not z.first_weight_g and z.extra_price:
                    raise ValueError(f"zone {i + 1}: a zone without a first weight charges one price; "
                                     "extra_price needs first_weight_g")
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
        seen: dict[str, int] = {}
        for i, z in enumerate(self.zones, 1):
            for r in z.regions:
                if r.casefold() in seen:
                    raise ValueError(f"zone {i}: '{r}' is in zone {seen[r.casefold()]} already")
                seen[r.casefold()] = i
        return self


def _amount(value: AmountIn | None, currency: str) -> int | None:
    """A decimal amount ("12.00", or 12 for whole units, as a product's price is read) in minor units."""
    return None if value is None else to_minor(value, currency)


def freight_input(data: dict[str, Any]) -> dict[str, Any]:
    """A stored freight template as :class:`FreightTemplateIn` takes it: its amounts as decimal amounts."""
    cur = data["currency"]

    def text(v: int | None) -> str | None:
        return None if v is None else decimal_text(v, cur)

    out = dict(data, free_above=text(data.get("free_above")))
    out["zones"] = [{**z, "first_price": text(z["first_price"]), "extra_price": text(z["extra_price"]),
                     "free_above": text(z.get("free_above"))} for z in data["zones"]]
    for z in out["zones"]:
        if z["free_above"] is None:
            del z["free_above"]
    return out


class SkuMappingIn(Record):
    channel: Id32
    channel_sku: Id64
    sku: Id64


class OpeningIn(BaseModel):
    """A stock import row: the opening balance of a SKU at a warehouse, and what a unit cost."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    warehouse: Code32
    sku: Id64
    quantity: Annotated[int, Field(gt=0, le=10**9)]
    unit_cost: str | int | None = None    # a decimal amount in the product's currency; read once it is known
    # A lot-tracked product's lot and its expiry (a row per lot).
    lot: Annotated[str, Field(min_length=1, max_length=64), SingleLine] | None = None
    expires_on: date | None = None

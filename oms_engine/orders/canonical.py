"""The canonical order: what every channel adapter produces.

Channel adapters turn a marketplace payload into :class:`CanonicalOrder`; the
core validates it (pydantic, so errors name the field), stores it and takes it
through the pipeline. Amounts are integer minor units of the order's currency.

The model is the one place where the bounds of stored data are decided, so that
SQLite and PostgreSQL refuse the same orders, before anything is written:

- every text field has a maximum length that fits its column
  (``oms_engine/storage/models.py``), and no control characters (C0, DEL, C1)
  or lone surrogates: PostgreSQL cannot store NUL in text and UTF-8 cannot
  encode a surrogate; only ``note`` may have line breaks and tabs;
- every amount is an ``int`` (never ``bool`` or a numeric string) from 0 to
  :data:`MAX_AMOUNT` minor units, and so are a line's ``unit_price x quantity``
  and the order's lines + freight + tax: BigInteger columns and the OMS's
  sums (several amounts added together) then never overflow;
- quantities are ``int`` from 1 to 100,000;
- times carry a time-zone offset and are kept in UTC (a naive time is refused,
  since nobody can tell which instant it meant), from 2000-01-01 to 2100-01-01;
- the currency is an active ISO 4217 code for legal tender (no funds, metals,
  XTS or XXX) whose minor unit the OMS's money module agrees with.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .. import money
from ..money import MAX_AMOUNT, format_minor

MAX_QUANTITY = 100_000
MAX_LINES = 500
# From 1970: marketplace sandboxes send orders dated at the Unix epoch (see the Amazon sample).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

def currency_digits(code: object) -> int:
    """The number of decimals of ``code``, or ValueError saying why it is not a currency the OMS takes."""
    if not isinstance(code, str):
        raise ValueError(f"an ISO 4217 currency code (e.g. \"CNY\") is required, not {_json_type(code)}")
    return money.currency_digits(code)


def minor_units(value: object, currency: str) -> int:
    """An amount as the canonical formats write it, in minor units: a string of ASCII digits with an optional
    point and at most the currency's decimals ("129.90"). ValueError says what is wrong with anything else.

    Numbers are refused: most JSON readers make them floats, which cannot hold most decimal amounts; so are
    exponents, signs (a minus is refused as negative, "-0.00" too), spaces, "_" and non-ASCII digits.
    """
    currency_digits(currency)
    if not isinstance(value, str):
        raise ValueError(f"an amount is a decimal string such as \"129.90\", not {_json_type(value)}")
    if value != value.strip():
        raise ValueError(f"{shown(value)} is not a decimal amount: ASCII digits with an optional \".\", "
                         f"e.g. \"129.90\"")
    return money.to_minor(value, currency)


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def shown(value: object, limit: int = 40) -> str:
    """``value`` quoted for an error message: control characters escaped, cut to ``limit`` characters."""
    text = repr(value if not isinstance(value, str) or len(value) <= limit else value[:limit])
    return text + ("..." if isinstance(value, str) and len(value) > limit else "")


# Unicode's categories Cc (control characters) and Cs (surrogates) as ranges, so that a text is searched
# by the regular expression engine rather than character by character.
_CONTROL_OR_SURROGATE = "\x00-\x1f\x7f-\x9f\ud800-\udfff"
_BAD = {"": re.compile(f"[{_CONTROL_OR_SURROGATE}]"),
        "\n\r\t": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")}


def _bad_character(text: str, allowed: str = "") -> str | None:
    found = _BAD[allowed].search(text)
    if found is None:
        return None
    ch = found.group()
    what = "a lone surrogate" if unicodedata.category(ch) == "Cs" else "a control character"
    return f"contains U+{ord(ch):04X} ({what}) at position {found.start()}, which is not allowed here"


def _single_line(value: object) -> object:
    problem = _bad_character(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


def _multi_line(value: object) -> object:
    problem = _bad_character(value, allowed="\n\r\t") if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


# Before pydantic's own check, so a lone surrogate is reported as such rather than as "not a string".
SingleLine = BeforeValidator(_single_line)
MultiLine = BeforeValidator(_multi_line)

# Text fields, each no longer than the column it is stored in (storage/models.py) or, for the JSON
# address, than any real address part; an empty string is allowed unless min_length says otherwise.
Text32 = Annotated[str, Field(strict=True, max_length=32), SingleLine]
Text64 = Annotated[str, Field(strict=True, max_length=64), SingleLine]
Text100 = Annotated[str, Field(strict=True, max_length=100), SingleLine]
Text128 = Annotated[str, Field(strict=True, max_length=128), SingleLine]
Text200 = Annotated[str, Field(strict=True, max_length=200), SingleLine]
def _nfc(value: str) -> str:
    # An id is compared with stored ones: "café" typed as one character or as "e" and a combining accent is
    # one id (Unicode's composed form, NFC), not two orders or an unmapped SKU.
    return value if value.isascii() else unicodedata.normalize("NFC", value)


Composed = AfterValidator(_nfc)
Id32 = Annotated[str, Field(strict=True, min_length=1, max_length=32), SingleLine, Composed]
Id64 = Annotated[str, Field(strict=True, min_length=1, max_length=64), SingleLine, Composed]
Id128 = Annotated[str, Field(strict=True, min_length=1, max_length=128), SingleLine, Composed]
Note = Annotated[str, Field(strict=True, max_length=4000), MultiLine]

Amount = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII)


def _parse_time(value: object) -> object:
    """RFC 3339 text (``2026-11-20T09:30:00+08:00``) or a datetime; pydantic's own parsing would also take
    unix timestamps and date-only strings."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a date-time string such as \"2026-11-20T09:30:00Z\" is required, not {_json_type(value)}")
    m = _RFC3339.fullmatch(value)
    if not m:
        raise ValueError(f"{shown(value)} is not an RFC 3339 date-time such as \"2026-11-20T09:30:00+08:00\"")
    if m.group(2) is None:
        raise ValueError(f"{shown(value)} has no time-zone offset: add Z (UTC) or the offset, e.g. +08:00")
    text = value
    if m.group(1) and len(m.group(1)) > 6:  # datetime keeps microseconds; nanoseconds are cut, not refused
        text = value[:m.start(1) + 6] + value[m.end(1):]
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{shown(value)} is not a valid date-time") from None


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("has no time-zone offset: add Z (UTC) or the offset, e.g. +08:00")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"{value.isoformat()} is outside the accepted range "
                         f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)")
    return utc


# An aware datetime in UTC; the database stores it naive (see :func:`naive_utc`).
Instant = Annotated[datetime, BeforeValidator(_parse_time), AfterValidator(_in_utc)]


# What a channel sends that the canonical order has no place for (seed 002): kept, not refused. JSON values only,
# bounded so that no payload can make a row of it unreasonably large or deep.
MAX_EXTENSION_BYTES = 16_384
MAX_EXTENSION_DEPTH = 8
_EXTENSION_SCALARS = (str, int, float, bool, type(None))


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(text: str) -> str | None:
    """A channel's own text is kept as sent, control characters and all, except what no database can keep:
    NUL (PostgreSQL) and lone surrogates (UTF-8)."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    what = "NUL" if found.group() == "\x00" else "a lone surrogate"
    return f"contains U+{ord(found.group()):04X} ({what}) at position {found.start()}, which cannot be stored"


def extension_problem(value: object, depth: int) -> str | None:
    """Why the model would refuse ``value`` inside extension fields at ``depth`` (0: the fields), or None."""
    if isinstance(value, bool | type(None)):
        return None
    if isinstance(value, str):
        return _unstorable(value)
    if isinstance(value, int):
        return None if -(2 ** 63) <= value < 2 ** 63 else f"the number {value} is out of range"
    if isinstance(value, float):
        return None if value == value and value not in (float("inf"), float("-inf")) else "not a finite number"
    if depth >= MAX_EXTENSION_DEPTH:
        return f"nested deeper than {MAX_EXTENSION_DEPTH} levels"
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = extension_problem(item, depth + 1)
            if problem:
                return f"[{i}]: {problem}"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 64 or _unstorable(key):
                return f"the key {shown(key)} is not a name of 1 to 64 characters"
            problem = extension_problem(item, depth + 1)
            if problem:
                return f"{key}: {problem}"
        return None
    return f"{_json_type(value)} is not a JSON value"


def _extensions(value: object) -> object:
    if not isinstance(value, dict):
        raise ValueError(f"extension fields are an object of names and JSON values, not {_json_type(value)}")
    problem = extension_problem(value, 0)
    if problem:
        raise ValueError(problem)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_EXTENSION_BYTES:
        raise ValueError(f"extension fields take {size:,} bytes as JSON, over the limit of {MAX_EXTENSION_BYTES:,}")
    return value


# The channel's own fields, by name: JSON values, at most MAX_EXTENSION_BYTES as JSON.
Extensions = Annotated[dict[str, Any], BeforeValidator(_extensions)]


def naive_utc(value: datetime) -> datetime:
    """An instant as the database keeps it: UTC without tzinfo (SQLite has no time zones)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanonicalAddress(_Strict):
    name: Text200 = ""
    phone: Text64 = ""
    country: Text32 = ""        # ISO 3166-1 alpha-2
    region: Text100 = ""      # province / state
    city: Text100 = ""
    district: Text100 = ""
    line1: Text200 = ""
    line2: Text200 = ""
    postcode: Text32 = ""

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        # Rules and routing compare it with codes ("CN"): a name or lower case would silently match nothing.
        if v and not re.fullmatch(r"[A-Z]{2}", v):
            raise ValueError(f"{shown(v)} is not an ISO 3166-1 alpha-2 country code such as \"CN\"")
        return v


class CanonicalCustomer(_Strict):
    ref: Id128 = Field(description="the channel's or the shop's customer id")
    name: Text200 = ""
    email: Text200 = ""
    phone: Text64 = ""
    # Only a new customer takes it; afterwards the level is the OMS's (see orders/customers.py).
    level: Id32 = "regular"
    # How the buyer wants to be told, as this order says: a language tag ("zh-CN", "en") and a medium ("sms",
    # "email", "app"; "" : no preference). Kept with the order's contact; the notification rules read them.
    language: Annotated[str, Field(strict=True, max_length=16, pattern=r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)?$")] = ""
    preferred_medium: Text32 = ""
    # The buyer's user id in the shop's app (a WeChat-style openid): where its app messages go; the customer's
    # ref when not given, which is right only for a shop whose app knows its customers by the same id.
    app_user: Text128 = ""


class LinePromotion(_Strict):
    """A promotion the channel says a line got, kept as it sent it: the amount off the line, in minor units."""

    code: Text64 = ""          # the coupon or campaign code
    name: Text200 = ""         # as the shop shows it ("2 for 1", "Double 11")
    kind: Text32 = ""          # the channel's own word: coupon, price_cut, bundle...
    amount: Amount


class LineProperty(_Strict):
    """A name and value the customer gave a line (an engraving, a size note), as the channel sent it."""

    name: Text200
    value: Annotated[str, Field(strict=True, max_length=2000), MultiLine] = ""


class CanonicalLine(_Strict):
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
    # Price the customer agreed to, minor units; None takes the catalogue price.
    unit_price: Amount | None = None
    name: Text200 | None = None
    channel_line_id: Text128 | None = None
    # The promotions the channel allotted to this line (part of the order's ``coupon``).
    promotions: Annotated[tuple[LinePromotion, ...], Field(max_length=50)] = ()
    # What the customer asked of this line (an engraving): kept as sent and shown with the order.
    properties: Annotated[tuple[LineProperty, ...], Field(max_length=50)] = ()
    # The channel's fields of the line with no place here (its product and variant ids, its tax lines...).
    extensions: Extensions = Field(default_factory=dict)

    @model_validator(mode="after")
    def _line_total(self) -> CanonicalLine:
        if self.unit_price is not None and self.unit_price * self.quantity > MAX_AMOUNT:
            raise ValueError(f"unit_price x quantity is {self.unit_price * self.quantity:,} minor units, "
                             f"over the limit of {MAX_AMOUNT:,}")
        return self

    def promoted(self) -> int:
        """The promotions' amount off this line."""
        return sum(p.amount for p in self.promotions)


class CanonicalPayment(_Strict):
    transaction_id: Id128
    amount: Amount
    method: Text64 = ""
    paid_at: Instant | None = None
    # The channel holds the money as an authorization it captures later (a shop that captures on fulfilment or
    # by hand): secured, so the order goes on; cancelled before anything ships, it is voided, not refunded.
    authorized: bool = False


class CanonicalOrder(_Strict):
    """What every channel adapter produces: one order, amounts in minor units."""

    # For adapters: the largest amount, and the checks the model makes, usable before building it.
    MAX_AMOUNT: ClassVar[int] = MAX_AMOUNT

    @staticmethod
    def currency_digits(code: object) -> int:
        """The decimals of an ISO 4217 currency the OMS takes; ValueError says why it does not take ``code``."""
        return currency_digits(code)

    @staticmethod
    def minor_units(value: object, currency: str) -> int:
        """A decimal-string amount ("129.90") in minor units of ``currency``; ValueError says what is wrong."""
        return minor_units(value, currency)

    channel: Id32
    external_id: Id128
    currency: str
    placed_at: Instant | None = None
    customer: CanonicalCustomer
    ship_to: CanonicalAddress
    lines: tuple[CanonicalLine, ...]
    # None: the channel sent no freight; the OMS charges its own (freight/charges.py).
    freight: Amount | None = None
    tax: Amount = 0
    coupon: Amount = 0
    gift_card: Amount = 0
    # The code of the gift card that paid ``gift_card``: its balance moves when the OMS holds it.
    gift_card_code: Id64 | None = None
    points: Amount = 0
    # The total the channel says the customer owes; when it disagrees with the
    # OMS's own arithmetic the order is held, not dropped.
    declared_total: Amount | None = None
    payment: CanonicalPayment | None = None
    note: Note = ""
    # A delivery date or time window the customer booked: from (may be omitted) and by. A booked day is the
    # window from its first to its last moment.
    deliver_from: Instant | None = None
    deliver_by: Instant | None = None
    # The channel's own words for the kind of order ("StandardOrder", "web") and where it stands there
    # ("Unshipped", "processing"), as it sent them.
    order_type: Text32 = ""
    channel_status: Text64 = ""
    # The channel's fields with no place here (its tags, note attributes, discount codes...), kept as sent.
    extensions: Extensions = Field(default_factory=dict)
    # The channel says the order is cancelled there; and what it says it paid the customer back (orders/updates.py).
    cancelled: bool = False
    refunded: Amount = 0

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: object) -> str:
        currency_digits(v)
        assert isinstance(v, str)
        return v

    @field_validator("lines")
    @classmethod
    def _line_count(cls, v: tuple[CanonicalLine, ...]) -> tuple[CanonicalLine, ...]:
        # Checked here rather than with Field(min_length=...): pydantic would add a second, misleading
        # "at least 1 item" error to every error inside a line.
        if not 1 <= len(v) <= MAX_LINES:
            raise ValueError(f"an order has 1 to {MAX_LINES} lines, not {len(v)}")
        return v

    @model_validator(mode="after")
    def _window(self) -> CanonicalOrder:
        if self.deliver_from is not None and self.deliver_by is None:
            raise ValueError("deliver_from needs deliver_by: a delivery window has an end")
        if self.deliver_from is not None and self.deliver_by is not None and self.deliver_from > self.deliver_by:
            raise ValueError(f"deliver_from {self.deliver_from.isoformat()} is after deliver_by "
                             f"{self.deliver_by.isoformat()}")
        return self

    @model_validator(mode="after")
    def _total(self) -> CanonicalOrder:
        priced = sum(ln.unit_price * ln.quantity for ln in self.lines if ln.unit_price is not None)
        if priced + (self.freight or 0) + self.tax > MAX_AMOUNT:
            total = priced + (self.freight or 0) + self.tax
            raise ValueError(f"lines + freight + tax come to {format_minor(total, self.currency)}, "
                             f"over the limit of {format_minor(MAX_AMOUNT, self.currency)}")
        return self

    def channel_fields(self) -> dict[str, Any] | None:
        """What the order keeps of the channel's own (order type and status, extension fields, line properties
        and extensions), or None when the channel sent none of it."""
        # The channel's own line id too: what the OMS tells the channel of a line names it so (channels/reports.py).
        lines = {str(i): {k: v for k, v in (("id", ln.channel_line_id),
                                            ("properties", [p.model_dump() for p in ln.properties]),
                                            ("extensions", ln.extensions)) if v}
                 for i, ln in enumerate(self.lines, start=1) if ln.properties or ln.extensions or ln.channel_line_id}
        if not (self.order_type or self.channel_status or self.extensions or lines):
            return None
        return {"order_type": self.order_type, "channel_status": self.channel_status,
                "extensions": self.extensions, "lines": lines}

    def contact(self) -> dict[str, str]:
        """The buyer's contact details as this order gives them: the order's own snapshot."""
        c = self.customer
        out = {"name": c.name, "email": c.email, "phone": c.phone}
        if c.language:
            out["language"] = c.language
        if c.preferred_medium:
            out["preferred_medium"] = c.preferred_medium
        if c.app_user:
            out["app_user"] = c.app_user
        return out

    def content_hash(self) -> str:
        """sha256 of the order's content: sorted keys, instants in UTC, fields left at their default omitted
        (so a field added to the model later does not change the hash of orders that do not use it)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        if data.get("freight") == 0:
            # Freight 0 hashed as it did when no freight and freight 0 were one thing, so an order stored
            # before sent again is known to be the same.
            del data["freight"]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ParsedPayload:
    """One order out of a payload, or the error that stopped it."""

    external_id: str | None
    order: CanonicalOrder | None = None
    error: str | None = None
    raw: Any = None

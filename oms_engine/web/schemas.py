"""Models the routes share: query parameters, cursors, notes, and the answers that recur.

Query parameters arrive as text; these types read them strictly (``1_000``,
`` 7 `` and other scripts' digits are not numbers here), and every query
model forbids parameters it does not name. Query models are named
``...Query``: a refusal then says "parameter", not "field".
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from ..orders.canonical import Note
from .errors import ApiError

DB_INT_MAX = 2**63 - 1
MAX_LIMIT = 500
_INTEGER = re.compile(r"-?[0-9]{1,25}")


def _query_int(value: Any) -> Any:
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise ValueError("must be a whole number written in ASCII digits")
    return value


QueryInt = Annotated[int, BeforeValidator(_query_int)]


def query_int(low: int, high: int, description: str | None = None) -> Any:
    """A whole-number parameter within [low, high]: the bounds before the validator, so the document shows them
    as minimum and maximum (after it, pydantic can only name them ge and le)."""
    return Annotated[int, Field(ge=low, le=high, description=description), BeforeValidator(_query_int)]


Limit = query_int(1, MAX_LIMIT, "rows per page")
Id = query_int(1, DB_INT_MAX)


def _date_or_time(value: Any) -> Any:
    """A date is its start (UTC); a time keeps its offset (none: UTC)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
        return datetime.combine(date.fromisoformat(value.strip()), time())
    return value


def _naive_utc(value: datetime) -> datetime:
    # Stored times are naive UTC: a time given with an offset is converted to it.
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


DateOrTime = Annotated[datetime, BeforeValidator(_date_or_time), AfterValidator(_naive_utc)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Flag = Annotated[str, Field(pattern=r"^(true|false|1|0)$")]


class Query(BaseModel):
    """A query string: unknown parameters refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PageQuery(Query):
    limit: Limit = 50
    cursor: Annotated[str, Field(max_length=200, description="the `next` of the previous page")] | None = None


class DateRangeQuery(PageQuery):
    # Read as naive UTC, as the database keeps times.
    since: DateOrTime | None = Field(None, description="from this time (a date: its start, UTC)")
    until: DateOrTime | None = Field(None, description="before this time (a date: its start, UTC)")


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor for the next page: the sort key of the last row given."""
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    """The parts of a cursor made by :func:`encode_cursor`; a cursor that is not one is a 400."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    parts = text.split("|")
    if len(parts) != n or not all(parts):
        raise ApiError(400, "parameter 'cursor' is not a cursor this list gave", field="cursor")
    return parts


def cursor_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    [text] = decode_cursor(cursor, 1)
    if not _INTEGER.fullmatch(text) or not 0 < int(text) <= DB_INT_MAX:
        raise ApiError(400, "parameter 'cursor' is not a cursor this list gave", field="cursor")
    return int(text)


class Body(BaseModel):
    """A JSON body: unknown fields refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoteBody(Body):
    note: Annotated[Note, Field(max_length=2000)] = ""


class Answer(BaseModel):
    """An answer: documented fields typed, further fields allowed (a client ignores what it does not know)."""

    model_config = ConfigDict(extra="allow")


class OrderStatus(Answer):
    number: str
    status: str


# -- shared by the stock, documents and reports routes ------------------------------------------------
def one_of(*values: str) -> Any:
    """One of ``values``, documented as their enum; anything else is refused naming them and what was given."""
    def check(value: object) -> object:
        if isinstance(value, str) and value not in values:
            raise ValueError(f"must be one of {', '.join(values)}, got '{value[:40]}'")
        return value
    return Annotated[Literal[values], BeforeValidator(check)]


_FLAGS = {"true": True, "1": True, "false": False, "0": False, "": False}


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word not in _FLAGS:
            raise ValueError(f"must be true or false, got '{value[:40]}'")
        return _FLAGS[word]
    return value


# A query switch: true/1 or false/0 (or empty: false); pydantic's own would also take yes, on, t ...
QueryFlag = Annotated[bool, BeforeValidator(_flag)]

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def _decimal(value: Any) -> Any:
    if not isinstance(value, str):
        # A JSON number would go through a float somewhere on the way; money never does.
        raise ValueError('must be a decimal string such as "18.50", never a JSON number')
    if not _DECIMAL.fullmatch(value.strip()):
        raise ValueError(f"must be a decimal string such as \"18.50\", got '{value[:40]}'")
    return value.strip()


# An amount of money given in a body: 0 or more, in the currency's units; whether it has more decimals than
# the currency has, the service that knows the currency says.
DecimalText = Annotated[str, StringConstraints(max_length=40, pattern=r"^[0-9]+(\.[0-9]+)?$"),
                        BeforeValidator(_decimal),
                        Field(description='a decimal string such as "18.50", never a JSON number')]

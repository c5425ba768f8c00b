"""Reading a request: the OMS behind the app, JSON bodies, fields and query parameters, strictly."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from .. import strict_json
from .errors import ApiError

if TYPE_CHECKING:
    from ..engine import OMS

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
# Ids and amounts are BIGINT (SQLite's INTEGER is the same 64 bits): a larger number is an error, not a query.
DB_INT_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,25}")


def oms() -> OMS:
    oms: OMS = current_app.extensions["oms"]
    return oms


def body_json(*, optional: bool = False) -> Any:
    """The request body as JSON, read by :mod:`oms_engine.strict_json`: anything else is a 400 saying why."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "the request body must be a JSON document")
    try:
        data = strict_json.loads(raw)
    except strict_json.JsonRejected as exc:
        raise ApiError(400, f"the request body: {exc}") from None
    _storable(data, "")
    return data


def _storable(value: Any, path: str) -> None:
    """Refuse text the database cannot store: NUL (PostgreSQL) and lone surrogates (not UTF-8 at all)."""
    if isinstance(value, str):
        _storable_text(value, f"field '{path[:100]}'" if path else "the request body")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            _storable_text(key, f"the name of field '{where[:100]}'")
            _storable(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _storable(item, f"{path}.{i}" if path else str(i))


def _storable_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise ApiError(400, f"{what} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{what} contains a lone surrogate (\\u{ord(text[_first_surrogate(text)]):04x}), "
                            "which is no character") from None


def _first_surrogate(text: str) -> int:
    return next(i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF)


def body_object(allowed: Iterable[str], *, optional: bool = False) -> dict[str, Any]:
    data = body_json(optional=optional)
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {json_type(data)}")
    allowed = tuple(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        # A misspelt field silently ignored would lose what the person typed.
        raise ApiError(400, f"unknown field(s) {', '.join(k[:50] for k in unknown)}; "
                            f"allowed: {', '.join(allowed) or 'none'}")
    return data


def json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def string_field(data: Mapping[str, Any], name: str, *, required: bool, max_len: int) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"field '{name}' is required")
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"field '{name}' must be a string, got {json_type(value)}")
    value = value.strip()
    if required and not value:
        raise ApiError(400, f"field '{name}' must not be empty")
    if len(value) > max_len:
        raise ApiError(400, f"field '{name}' is longer than {max_len} characters")
    return value


def int_param(name: str, default: int | None, low: int, high: int = DB_INT_MAX) -> int | None:
    """An integer query parameter within [low, high]; ``high`` is never past what a BIGINT column holds."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    high = min(high, DB_INT_MAX)
    bounds = f"between {low} and {high}"
    # ASCII digits only: int() would also take '1_000', ' 7 ' and other scripts' digits.
    if not _INTEGER.fullmatch(raw):
        raise ApiError(400, f"parameter '{name}' must be an integer {bounds}, got '{raw[:40]}'")
    value = int(raw)
    if value < low or value > high:
        raise ApiError(400, f"parameter '{name}' must be an integer {bounds}, got {raw[:40]}")
    return value

"""Reading a request: the OMS behind the app, JSON bodies, fields and query parameters, strictly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from .errors import ApiError

if TYPE_CHECKING:
    from ..engine import OMS

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


def oms() -> OMS:
    oms: OMS = current_app.extensions["oms"]
    return oms


def body_json(*, optional: bool = False) -> Any:
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "the request body must be a JSON document")
    try:
        # Decoded here: json.loads would guess UTF-16/32 from the bytes, and JSON is UTF-8 (RFC 8259).
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed JSON: the body is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def body_object(allowed: Iterable[str], *, optional: bool = False) -> dict[str, Any]:
    data = body_json(optional=optional)
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {json_type(data)}")
    allowed = tuple(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        # A misspelt field silently ignored would lose what the person typed.
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}")
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


def int_param(name: str, default: int | None, low: int, high: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"parameter '{name}' must be an integer {bounds}, got '{raw}'") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"parameter '{name}' must be an integer {bounds}, got {value}")
    return value

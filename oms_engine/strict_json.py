"""Reading JSON from outside the OMS: exactly RFC 8259 in UTF-8, within bounds, or a clear refusal.

``json.loads`` alone accepts what should be refused and crashes on what
should be refused politely: it guesses UTF-16/32 from the bytes, keeps the
last of duplicate keys silently, accepts NaN and Infinity, recurses until
RecursionError on deeply nested input, and raises a bare ValueError past
4,300 digits. :func:`loads` refuses all of these with :class:`JsonRejected`,
whose message says what and where, before anything is stored or compared.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import OmsError

MAX_DEPTH = 64            # objects and arrays nested in each other
MAX_NUMBER_CHARS = 40     # a number literal longer than this is no amount, quantity or id we accept


class JsonRejected(OmsError, ValueError):
    pass


# A JSON string (escapes included), and a bracket outside one: found by the regular expression engine,
# so the scan below runs in Python only over brackets, not over every character of a large payload.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)   # a backslash escapes any character
_BRACKET = re.compile(r"[\[\]{}]")


def _deepest(text: str) -> int:
    """How deep objects and arrays nest, strings left out; never less than the truth (an unterminated
    string is not left out, so its brackets count)."""
    depth = deepest = 0
    for b in _BRACKET.findall(_STRING.sub("", text)):
        if b in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _depth_ok(text: str, limit: int) -> None:
    """Refuse nesting deeper than ``limit`` before the recursive parser sees it; the character-by-character
    scan, which says where, runs only when the quick count says the limit may be passed."""
    if _deepest(text) <= limit:
        return
    depth = 0
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                raise JsonRejected(f"malformed JSON: nested more than {limit} levels deep (at character {i})")
        elif ch in "]}":
            depth -= 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonRejected(f"malformed JSON: the key '{key[:50]}' appears twice in one object")
        out[key] = value
    return out


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonRejected(f"malformed JSON: the number {text[:20]}... has more than {MAX_NUMBER_CHARS} characters")
    if text.lstrip("-").isdigit():
        return int(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonRejected(f"malformed JSON: the number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise JsonRejected(f"malformed JSON: {name} is not a JSON number")


def decode_utf8(data: bytes) -> str:
    """The text of a JSON body: UTF-8 only (RFC 8259 section 8.1), a byte-order mark refused."""
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise JsonRejected("malformed JSON: the body starts with a byte-order mark; send plain UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRejected(f"malformed JSON: the body is not UTF-8 (byte {exc.start})") from None


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    text = decode_utf8(data) if isinstance(data, bytes) else data
    _depth_ok(text, max_depth)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_number, parse_float=_number,
                          parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise JsonRejected("malformed JSON: nested too deeply") from None

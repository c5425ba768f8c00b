"""Strict JSON reading: the nesting limit holds whatever the text, strings and escapes included."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_engine.strict_json import MAX_DEPTH, JsonRejected, loads

# Strings full of brackets, quotes and backslashes: what could fool a scan that skips strings.
_TRICKY = st.text(alphabet='[]{}"\\ab\u00e9', max_size=8)
_VALUE = st.recursive(st.none() | st.integers(-10, 10) | _TRICKY,
                      lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_TRICKY, inner, max_size=2),
                      max_leaves=6)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _nest(value: object, levels: int) -> object:
    for _ in range(levels):
        value = [value]
    return value


@settings(max_examples=200, deadline=None)
@given(value=_VALUE, extra=st.integers(0, MAX_DEPTH + 3))
def test_text_is_refused_exactly_when_nested_past_the_limit(value: object, extra: int) -> None:
    doc = _nest(value, extra)
    text = json.dumps(doc, ensure_ascii=False)
    if _depth(doc) > MAX_DEPTH:
        with pytest.raises(JsonRejected, match=f"nested more than {MAX_DEPTH} levels deep"):
            loads(text)
    else:
        assert loads(text) == doc


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"note": "[" * 500 + '\\"{' * 500})
    assert loads(text) == {"note": "[" * 500 + '\\"{' * 500}


def test_a_backslash_before_a_raw_line_break_does_not_hide_brackets() -> None:
    # The exact scan takes the line break as escaped and the string as closed at the next quote; the
    # quick count must see the same, or the brackets after it would pass uncounted.
    text = '["a\\\n", ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + ', "x"]'
    with pytest.raises(JsonRejected, match=f"nested more than {MAX_DEPTH} levels deep"):
        loads(text)

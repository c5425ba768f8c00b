"""Checking the parameters a YAML rule passes to a strategy.

A strategy registers a ``validate(params)`` that raises ValueError; the rule
loader reports the message with the file and line, so a typo in a rule is
caught when the file loads, not in the middle of a batch. These helpers give
every strategy (built-in or third-party) the same wording.

``kind`` is "split" or "routing", ``name`` the strategy's name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Validator = Callable[[Mapping[str, Any]], None]


def check_keys(kind: str, name: str, params: Mapping[str, Any], allowed: Iterable[str],
               required: Iterable[str] = (), *, thing: str = "strategy") -> None:
    """Reject unknown or missing keys.

    ``strategy`` is always accepted: the rule loader passes the whole mapping
    on, including the key that chose the strategy. ``thing`` names what takes
    the parameters in messages ("strategy", "action"...).
    """
    where = f"{kind} {thing} '{name}'"
    if not isinstance(params, Mapping):
        raise ValueError(f"{where}: parameters must be a mapping, got {type(params).__name__}")
    allowed = tuple(allowed)
    for key in params:
        if key == "strategy":
            continue
        if key not in allowed:
            hint = ""
            if isinstance(key, str):
                close = difflib.get_close_matches(key, allowed, n=1)
                if close:
                    hint = f"; did you mean '{close[0]}'?"
            known = ", ".join(allowed) if allowed else "none"
            raise ValueError(f"{where}: unknown parameter {key!r} (allowed: {known}){hint}")
    for key in required:
        if key not in params:
            raise ValueError(f"{where}: parameter '{key}' is required")


def no_params(kind: str, name: str) -> Validator:
    """The validator of a strategy that takes no parameters."""
    def validate(params: Mapping[str, Any]) -> None:
        check_keys(kind, name, params, ())
    return validate


def _type_error(kind: str, name: str, key: str, expected: str, value: Any, thing: str = "strategy") -> ValueError:
    return ValueError(f"{kind} {thing} '{name}': parameter '{key}' must be {expected}, "
                      f"got {value!r} ({type(value).__name__})")


def check_str(kind: str, name: str, params: Mapping[str, Any], key: str) -> None:
    if key in params:
        value = params[key]
        if not isinstance(value, str) or not value.strip():
            raise _type_error(kind, name, key, "a non-empty string", value)


def check_bool(kind: str, name: str, params: Mapping[str, Any], key: str) -> None:
    # YAML turns "yes"/"no" into booleans already; a string here is a quoting
    # mistake that would otherwise be truthy, so it is refused.
    if key in params and not isinstance(params[key], bool):
        raise _type_error(kind, name, key, "true or false", params[key])


def check_positive_int(kind: str, name: str, params: Mapping[str, Any], key: str) -> None:
    if key in params:
        value = params[key]
        # bool is an int subclass; `max_items: true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _type_error(kind, name, key, "a whole number greater than 0", value)


def check_str_list(kind: str, name: str, params: Mapping[str, Any], key: str, *, items: str = "warehouse codes",
                   item: str = "a warehouse", thing: str = "strategy") -> None:
    """A non-empty list of distinct non-empty strings; ``items`` and ``item`` name them in messages."""
    if key in params:
        value = params[key]
        if (not isinstance(value, list | tuple) or not value
                or not all(isinstance(v, str) and v.strip() for v in value)):
            raise _type_error(kind, name, key, f"a non-empty list of {items}", value, thing)
        if len(set(value)) != len(value):
            raise ValueError(f"{kind} {thing} '{name}': parameter '{key}' lists {item} twice: {value!r}")

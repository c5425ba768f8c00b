"""Checking and projecting caller facts before either evaluator sees them.

durable_rules compares loosely ("abc" > 100 is true, 1 == True), so a value whose
type differs from what the rules were validated against must never reach it.
Both evaluators receive the same projected document: only the fields a ruleset
knows about, with nulls dropped (null counts as missing).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import FactError
from .model import Ruleset

MISSING: Any = object()
ANY_TYPE = "any"  # fields only tested with `exists`: copied as-is
_INT64 = 2**63


def is_mapping(node: Any) -> bool:
    # Facts are plain dicts almost always: the exact type test spares the ABC's slow instance check.
    return type(node) is dict or isinstance(node, Mapping)


def lookup(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if not is_mapping(node) or part not in node or node[part] is None:
            return MISSING
        node = node[part]
    return node


def _check_scalar(path: str, kind: str, value: Any) -> Any:
    ok: bool
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and -_INT64 < value < _INT64
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "str":
        ok = isinstance(value, str)
    else:  # pragma: no cover - types are validated when the schema is built
        raise AssertionError(kind)
    if not ok:
        raise FactError(path, f"expected {kind}, got {type(value).__name__} {value!r}")
    return value


def _check_value(path: str, kind: str, value: Any) -> Any:
    if kind == ANY_TYPE:
        return value
    if kind.startswith("list["):
        if not isinstance(value, list):
            raise FactError(path, f"expected {kind}, got {type(value).__name__}")
        return [_check_scalar(f"{path}[{i}]", kind[5:-1], v) for i, v in enumerate(value)]
    return _check_scalar(path, kind, value)


def _put(out: dict[str, Any], path: str, value: Any, *, replace: bool = False) -> None:
    parts = path.split(".")
    node = out
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # a scalar and an object under one name; the scalar wins
        node = child
    if replace:
        node[parts[-1]] = value
    else:
        node.setdefault(parts[-1], value)


def _project(source: Any, fields: _Fields, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Every decision projects every field of its ruleset: the loop is written for that (the path's parts and
    # the type a plain value must have worked out once per ruleset, in _make_plan).
    for path, parts, kind, parents, leaf, exact in fields:
        node = source
        for part in parts:
            if type(node) is not dict and not isinstance(node, Mapping):   # as is_mapping, inline: per field
                node = MISSING
                break
            node = node.get(part)
            if node is None:
                node = MISSING
                break
        if node is MISSING:
            continue
        if type(node) is not exact and kind != ANY_TYPE:
            node = _check_value(prefix + path, kind, node)
        target: Any = out
        for name in parents:
            child = target.get(name)
            if child is None:
                child = target[name] = {}
            elif type(child) is not dict:
                target = None   # a scalar and an object under one name; the scalar wins
                break
            target = child
        if target is not None and leaf not in target:
            target[leaf] = node
    return out


# (path, its parts, its type, the parts above its leaf, the leaf, the Python type that needs no check (None:
# every value is checked))
_Field = tuple[str, tuple[str, ...], str, tuple[str, ...], str, "type | None"]
_Fields = tuple[_Field, ...]
# A str or bool fact is right when it is exactly that type; ints are checked for their range, floats for being
# finite, lists item by item.
_EXACT: dict[str, type] = {"str": str, "bool": bool}


def _field(path: str, kind: str) -> _Field:
    parts = tuple(path.split("."))
    return path, parts, kind, parts[:-1], parts[-1], _EXACT.get(kind)


# (top-level fields, per list its element fields, whether any field is untyped)
_Plan = tuple[_Fields, tuple[tuple[str, _Fields], ...], bool]
# id(ruleset) -> (ruleset, plan); holding the ruleset keeps its id from being reused.
_PLANS: dict[int, tuple[Ruleset, _Plan]] = {}


def _plan(ruleset: Ruleset) -> _Plan:
    """Which fields to copy, split into plain ones and per list: computed once per ruleset."""
    hit = _PLANS.get(id(ruleset))
    if hit is not None and hit[0] is ruleset:
        return hit[1]
    if len(_PLANS) > 256:
        _PLANS.clear()
    plan = _make_plan(ruleset)
    _PLANS[id(ruleset)] = (ruleset, plan)
    return plan


def _make_plan(ruleset: Ruleset) -> _Plan:
    plain: list[_Field] = []
    per_list: dict[str, list[_Field]] = {lp: [] for lp in ruleset.list_paths}
    for path, kind in ruleset.field_types.items():
        owner = next((lp for lp in ruleset.list_paths if path.startswith(lp + ".")), None)
        if owner is None:
            plain.append(_field(path, kind))
        else:
            per_list[owner].append(_field(path[len(owner) + 1 :], kind))
    untyped = any(kind == ANY_TYPE for kind in ruleset.field_types.values())
    return tuple(plain), tuple((lp, tuple(f)) for lp, f in per_list.items()), untyped


_JSON_SCALARS = (str, int, float, bool)


def prepare_facts(facts: Mapping[str, Any], ruleset: Ruleset) -> dict[str, Any]:
    """Return the checked projection of `facts`; raise FactError naming the bad path."""
    if not isinstance(facts, Mapping):
        raise FactError("<facts>", f"expected a mapping, got {type(facts).__name__}")
    plain, per_list, untyped = _plan(ruleset)
    doc = _project(facts, plain, "")
    for list_path, item_fields in per_list:
        items = lookup(facts, list_path)
        if items is MISSING:
            continue
        if not isinstance(items, list | tuple):
            raise FactError(list_path, f"expected a list, got {type(items).__name__}")
        projected = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise FactError(f"{list_path}[{i}]", f"expected a mapping, got {type(item).__name__}")
            projected.append(_project(item, item_fields, f"{list_path}[{i}]."))
        # Replace any raw copy (from an `exists` test on the list) with the checked projection.
        _put(doc, list_path, projected, replace=True)
    if untyped:
        # Only untyped (exists-only) fields can carry arbitrary objects: check those serialise,
        # and keep a plain copy, so a Decision's facts do not change with the caller's objects.
        try:
            doc = json.loads(json.dumps(doc, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise FactError("<facts>", f"not JSON-serialisable: {exc}") from None
    return doc

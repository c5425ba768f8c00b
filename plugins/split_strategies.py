"""Built-in split strategies: divide an order into groups of lines (child orders).

Each strategy is a pure function ``(order, stock, params) -> SplitPlan`` over the
plain views of :mod:`oms_engine.domain`. ``params`` come from a YAML rule such as
``split: {strategy: by_attribute, attribute: cold_chain}``; :data:`PARAMS` maps each
strategy name to a validator the rule loader calls so a typo is reported with the
file and line instead of surfacing later as a KeyError in the middle of a batch.

Every strategy keeps these invariants (the property tests check them):
every unit of every line is in exactly one group, no group is empty, no
quantity is zero, the same input gives the same plan, and an order that needs
no split comes back as a single group.

The helpers for parameter checking and for "stock as this order sees it" are
shared with :mod:`oms_plugins.routing_strategies`, so both modules agree on
what a reservation and an unknown parameter mean.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from oms_engine.domain import LineView, OrderView, SplitGroup, SplitPlan, StockView
from oms_engine.hookspecs import hookimpl

Validator = Callable[[Mapping[str, Any]], None]
SplitFn = Callable[[OrderView, StockView, Mapping[str, Any]], SplitPlan]

# Line attributes that a warehouse must list among its capabilities to handle the line.
CAPABILITY_ATTRIBUTES: tuple[str, ...] = ("cold_chain", "oversize")


# --------------------------------------------------------------------------- params


def check_keys(kind: str, name: str, params: Mapping[str, Any], allowed: Iterable[str],
               required: Iterable[str] = ()) -> None:
    """Reject a params mapping with unknown or missing keys.

    ``strategy`` is always accepted: the rule loader passes the whole mapping on,
    including the key that chose the strategy.
    """
    where = f"{kind} strategy '{name}'"
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


def _type_error(kind: str, name: str, key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{kind} strategy '{name}': parameter '{key}' must be {expected}, "
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


def check_str_list(kind: str, name: str, params: Mapping[str, Any], key: str) -> None:
    if key in params:
        value = params[key]
        if (not isinstance(value, list | tuple) or not value
                or not all(isinstance(v, str) and v.strip() for v in value)):
            raise _type_error(kind, name, key, "a non-empty list of warehouse codes", value)
        if len(set(value)) != len(value):
            raise ValueError(f"{kind} strategy '{name}': parameter '{key}' "
                             f"lists a warehouse twice: {value!r}")


# --------------------------------------------------------------------------- stock


def effective_stock(order: OrderView, stock: StockView) -> dict[tuple[str, str], int]:
    """Available quantity per (warehouse, sku) as *this* order sees it.

    StockView.available already excludes every reservation, this order's own
    included; the units reserved for this order at a warehouse are nevertheless
    its to use there, so they are added back.
    """
    sku_of = {ln.line_no: ln.sku for ln in order.lines}
    # Only this order's SKUs: a stock view may hold the whole catalogue, and
    # copying it per order would dominate the cost of a batch.
    codes = dict.fromkeys([*(w.code for w in stock.warehouses), *order.reserved])
    eff = {(w, sku): max(0, stock.qty(w, sku)) for w in codes for sku in dict.fromkeys(sku_of.values())}
    for warehouse, by_line in order.reserved.items():
        for line_no, qty in by_line.items():
            sku = sku_of.get(line_no)
            # A reservation for a line this order does not have (e.g. a sibling
            # child's) is not this order's to use.
            if sku is None or qty <= 0:
                continue
            eff[(warehouse, sku)] = eff.get((warehouse, sku), 0) + qty
    return eff


def needed(lines: Iterable[LineView]) -> dict[str, int]:
    need: dict[str, int] = {}
    for ln in lines:
        if ln.quantity > 0:
            need[ln.sku] = need.get(ln.sku, 0) + ln.quantity
    return need


def covers(eff: Mapping[tuple[str, str], int], warehouse: str, need: Mapping[str, int]) -> bool:
    return all(eff.get((warehouse, sku), 0) >= q for sku, q in need.items())


def required_capabilities(line: LineView) -> frozenset[str]:
    return frozenset(a for a in CAPABILITY_ATTRIBUTES if line.attributes.get(a))


def _live_lines(order: OrderView) -> list[LineView]:
    # A zero-quantity line has nothing to ship; keeping it would create a
    # zero-quantity entry, which child-order creation must never see.
    return [ln for ln in order.lines if ln.quantity > 0]


def _group(lines: Mapping[int, int], reason: str, hint: str | None = None) -> SplitGroup:
    # Sorted by line number so the same split always reads (and compares) the same.
    return SplitGroup(lines=dict(sorted(lines.items())), reason=reason, warehouse_hint=hint)


def _plan(groups: Iterable[SplitGroup], strategy: str) -> SplitPlan:
    return SplitPlan(groups=tuple(g for g in groups if g.lines), strategy=strategy)


# --------------------------------------------------------------------------- single


def _validate_no_params(name: str) -> Validator:
    def validate(params: Mapping[str, Any]) -> None:
        check_keys("split", name, params, ())
    return validate


def single(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
    """Everything in one group: the explicit "do not split" choice."""
    PARAMS["single"](params)
    lines = {ln.line_no: ln.quantity for ln in _live_lines(order)}
    return _plan([_group(lines, "not split")], "single")


# --------------------------------------------------------------------------- by_merchant


def by_merchant(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
    """One group per merchant, in order of first appearance."""
    PARAMS["by_merchant"](params)
    groups: dict[str, dict[int, int]] = {}
    for ln in _live_lines(order):
        groups.setdefault(ln.merchant, {})[ln.line_no] = ln.quantity
    if len(groups) == 1:
        (merchant, lines), = groups.items()
        return _plan([_group(lines, f"all lines from merchant {merchant}")], "by_merchant")
    return _plan([_group(lines, f"merchant {m} ships apart") for m, lines in groups.items()], "by_merchant")


# --------------------------------------------------------------------------- by_attribute


def _validate_by_attribute(params: Mapping[str, Any]) -> None:
    check_keys("split", "by_attribute", params, ("attribute", "by_value"), required=("attribute",))
    check_str("split", "by_attribute", params, "attribute")
    check_bool("split", "by_attribute", params, "by_value")


def by_attribute(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
    """Lines whose attribute is truthy ship apart from the rest.

    With ``by_value: true`` there is one group per distinct value of the
    attribute (a missing attribute is a value of its own), e.g. one child per
    presale date. Groups come in order of first appearance.
    """
    _validate_by_attribute(params)
    attribute: str = params["attribute"]
    by_value: bool = params.get("by_value", False)
    groups: dict[tuple[str, Any], dict[int, int]] = {}
    labels: dict[tuple[str, Any], str] = {}
    for ln in _live_lines(order):
        value = ln.attributes.get(attribute)
        if by_value:
            # Keyed with the type so True and 1 (equal in Python) stay apart.
            key = (type(value).__name__, value)
            labels[key] = (f"{attribute} not set" if value is None
                           else f"{attribute} = {value!r} ships apart")
        else:
            key = ("bool", bool(value))
            labels[key] = f"{attribute} items ship apart" if value else f"items without {attribute}"
        groups.setdefault(key, {})[ln.line_no] = ln.quantity
    if len(groups) == 1:
        (lines,) = groups.values()
        return _plan([_group(lines, f"all lines alike in {attribute}")], "by_attribute")
    return _plan([_group(lines, labels[key]) for key, lines in groups.items()], "by_attribute")


# --------------------------------------------------------------------------- by_warehouse_stock


def _take(lines: list[LineView], remaining: Mapping[int, int], eff: Mapping[tuple[str, str], int],
          warehouse: str, capabilities: frozenset[str]) -> dict[int, int]:
    """What ``warehouse`` can ship of the remaining units, line by line.

    Lines sharing an SKU draw on the same stock, so it is consumed as lines are
    visited; a line the warehouse is not equipped for (cold chain...) gets nothing.
    """
    left: dict[str, int] = {}
    taken: dict[int, int] = {}
    for ln in lines:
        want = remaining.get(ln.line_no, 0)
        if want <= 0 or not required_capabilities(ln) <= capabilities:
            continue
        have = left.setdefault(ln.sku, eff.get((warehouse, ln.sku), 0))
        q = min(want, have)
        if q > 0:
            taken[ln.line_no] = q
            left[ln.sku] = have - q
    return taken


def by_warehouse_stock(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
    """The fewest groups that each ship entirely from one warehouse.

    One warehouse covering the whole order wins outright (lowest priority, then
    the most stock of the order's SKUs, then code). Otherwise a greedy set
    cover: the warehouse that can ship the most remaining units takes them
    (ties: priority, then code), a line's quantity divided if need be, until
    nothing more can be placed; what no warehouse has ends in a last group
    without a hint. Stock reserved for this order counts as available to it.
    A warehouse only takes lines it is equipped for (cold chain, oversize), so
    every hinted group can actually be routed there.
    """
    PARAMS["by_warehouse_stock"](params)
    name = "by_warehouse_stock"
    lines = _live_lines(order)
    if not lines:
        return _plan([], name)
    eff = effective_stock(order, stock)
    need = needed(lines)
    everything = {ln.line_no: ln.quantity for ln in lines}
    caps_needed = frozenset().union(*(required_capabilities(ln) for ln in lines))

    whole = [w for w in stock.warehouses if caps_needed <= w.capabilities and covers(eff, w.code, need)]
    if whole:
        best = min(whole, key=lambda w: (w.priority, -sum(eff.get((w.code, s), 0) for s in need), w.code))
        return _plan([_group(everything, f"all lines available at {best.code}", best.code)], name)

    remaining = dict(everything)
    groups: list[SplitGroup] = []
    candidates = list(stock.warehouses)
    while candidates and any(remaining.values()):
        scored = [(sum(t.values()), w, t) for w in candidates
                  for t in [_take(lines, remaining, eff, w.code, w.capabilities)]]
        units, best, taken = min(scored, key=lambda s: (-s[0], s[1].priority, s[1].code))
        if units == 0:
            break
        groups.append(_group(taken, f"available at {best.code}", best.code))
        for line_no, q in taken.items():
            remaining[line_no] -= q
        # Everything the warehouse could give has been taken; it has nothing more.
        candidates.remove(best)
    rest = {line_no: q for line_no, q in remaining.items() if q > 0}
    if rest:
        groups.append(_group(rest, "no stock"))
    return _plan(groups, name)


# --------------------------------------------------------------------------- max_parcel


def _validate_max_parcel(params: Mapping[str, Any]) -> None:
    check_keys("split", "max_parcel", params, ("max_items", "max_weight_g"))
    check_positive_int("split", "max_parcel", params, "max_items")
    check_positive_int("split", "max_parcel", params, "max_weight_g")
    if "max_items" not in params and "max_weight_g" not in params:
        raise ValueError("split strategy 'max_parcel': give max_items, max_weight_g or both")


class _Parcel:
    __slots__ = ("items", "lines", "overweight", "weight")

    def __init__(self) -> None:
        self.lines: dict[int, int] = {}
        self.items = 0
        self.weight = 0
        self.overweight = False


def max_parcel(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
    """Pack units into parcels within ``max_items`` and/or ``max_weight_g``.

    First-fit decreasing by unit weight. Identical units of a line are placed
    as a run (as many as fit in each parcel), which gives the same packing as
    placing them one by one without expanding a 10,000-unit line into 10,000
    steps. A unit heavier than ``max_weight_g`` on its own gets a parcel of its
    own that nothing else joins.
    """
    _validate_max_parcel(params)
    max_items: int | None = params.get("max_items")
    max_weight: int | None = params.get("max_weight_g")

    def room(parcel: _Parcel, unit_weight: int) -> int:
        if parcel.overweight:
            return 0
        fit = max_items - parcel.items if max_items is not None else None
        if max_weight is not None and unit_weight > 0:
            by_weight = max(0, (max_weight - parcel.weight) // unit_weight)
            fit = by_weight if fit is None else min(fit, by_weight)
        # Weightless units under a weight-only limit fit anywhere.
        return fit if fit is not None else 1 << 62

    parcels: list[_Parcel] = []
    lines = sorted(_live_lines(order), key=lambda ln: (-ln.weight_g, ln.line_no))
    for ln in lines:
        left = ln.quantity
        unit = max(0, ln.weight_g)
        for parcel in parcels:
            if left == 0:
                break
            q = min(left, room(parcel, unit))
            if q > 0:
                parcel.lines[ln.line_no] = parcel.lines.get(ln.line_no, 0) + q
                parcel.items += q
                parcel.weight += q * unit
                left -= q
        while left > 0:
            parcel = _Parcel()
            parcels.append(parcel)
            q = min(left, room(parcel, unit))
            if q == 0:
                # Too heavy even alone: ship the unit by itself rather than refuse the order.
                q = 1
                parcel.overweight = True
            parcel.lines[ln.line_no] = q
            parcel.items = q
            parcel.weight = q * unit
            left -= q

    limits = ", ".join(part for part in (
        f"max {max_items} items" if max_items is not None else "",
        f"max {max_weight} g" if max_weight is not None else "",
    ) if part)
    if len(parcels) == 1 and not parcels[0].overweight:
        return _plan([_group(parcels[0].lines, f"fits one parcel ({limits})")], "max_parcel")
    n = len(parcels)
    groups = [
        _group(p.lines, f"single unit over {max_weight} g ships alone" if p.overweight
               else f"parcel {i} of {n} ({limits})")
        for i, p in enumerate(parcels, start=1)
    ]
    return _plan(groups, "max_parcel")


# --------------------------------------------------------------------------- registry


PARAMS: dict[str, Validator] = {
    "single": _validate_no_params("single"),
    "by_merchant": _validate_no_params("by_merchant"),
    "by_attribute": _validate_by_attribute,
    "by_warehouse_stock": _validate_no_params("by_warehouse_stock"),
    "max_parcel": _validate_max_parcel,
}

STRATEGIES: dict[str, SplitFn] = {
    "single": single,
    "by_merchant": by_merchant,
    "by_attribute": by_attribute,
    "by_warehouse_stock": by_warehouse_stock,
    "max_parcel": max_parcel,
}


@hookimpl(trylast=True)
def oms_register_split_strategies(register: Callable[..., None]) -> None:
    # The hook also offers ``config``; these strategies take all they need from
    # the rule's params, so they do not ask for it.
    for name, strategy in STRATEGIES.items():
        register(name, strategy, PARAMS[name])

"""Built-in split strategies: divide an order into groups of lines (child orders).

Each strategy is a pure function ``(order, stock, params) -> SplitPlan`` over the
plain views of the public API (:mod:`oms_engine`). ``params`` come from a YAML rule such as
``split: {strategy: by_attribute, attribute: cold_chain}``; :data:`PARAMS` maps each
strategy name to a validator the rule loader calls so a typo is reported with the
file and line instead of surfacing later as a KeyError in the middle of a batch.

Every strategy keeps these invariants (the property tests check them):
every unit of every line is in exactly one group, no group is empty, no
quantity is zero, the same input gives the same plan, and an order that needs
no split comes back as a single group.

Parameter checks come from the public API (``oms_engine.check_keys`` ...), as
for any third-party strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from oms_engine import (
    LineView,
    OrderView,
    SplitGroup,
    SplitPlan,
    StockView,
    Validator,
    check_bool,
    check_keys,
    check_positive_int,
    check_str,
    hookimpl,
    no_params,
    plan_by_stock,
)

SplitFn = Callable[[OrderView, StockView, Mapping[str, Any]], SplitPlan]


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


def by_warehouse_stock(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
    """The fewest groups that each ship entirely from one warehouse (``oms_engine.plan_by_stock``).

    Stock already reserved for this order counts as available to it, and a
    warehouse only takes lines it is equipped for (cold chain, oversize).
    """
    PARAMS["by_warehouse_stock"](params)
    return plan_by_stock(order, stock, "by_warehouse_stock")


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
    "single": no_params("split", "single"),
    "by_merchant": no_params("split", "by_merchant"),
    "by_attribute": _validate_by_attribute,
    "by_warehouse_stock": no_params("split", "by_warehouse_stock"),
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

"""Dividing an order's units into groups that each ship entirely from one warehouse.

Used by the core when a split group cannot travel as it is (two cold-chain
items held in different cold stores, say), and by any split strategy that
wants "split by stock" (the built-in ``by_warehouse_stock`` is this function).

Algorithm: one eligible warehouse covering every unit wins outright (lowest
priority, then the most stock of the order's SKUs, then code). Otherwise a
greedy set cover: the warehouse that can ship the most remaining units takes
them (ties: priority, then code), a line's quantity divided if need be, until
nothing more can be placed; what no warehouse has ends in a last group
without a hint. A warehouse only takes lines it is equipped for (cold chain,
oversize), so every hinted group can be routed there.
"""

from __future__ import annotations

from ..plugin.views import OrderStock, OrderView, SplitGroup, SplitPlan, StockView, WarehouseView, units_by_sku


def _group(lines: dict[int, int], reason: str, hint: str | None = None) -> SplitGroup:
    # Sorted by line number so the same split always reads (and compares) the same.
    return SplitGroup(lines=dict(sorted(lines.items())), reason=reason, warehouse_hint=hint)


def _take(view: OrderStock, remaining: dict[int, int], warehouse: WarehouseView) -> dict[int, int]:
    """What ``warehouse`` can ship of the remaining units, line by line.

    Lines sharing an SKU draw on the same stock, so it is consumed as lines are
    visited; a line the warehouse is not equipped for gets nothing.
    """
    left: dict[str, int] = {}
    taken: dict[int, int] = {}
    for ln in view.order.lines:
        want = remaining.get(ln.line_no, 0)
        if want <= 0 or not ln.capabilities <= warehouse.capabilities:
            continue
        # Whole units of the line: a kit needs every one of its components.
        per = ln.stock_units(1)
        for sku, _ in per:
            left.setdefault(sku, view.qty(warehouse.code, sku))
        q = min(want, *(left[sku] // n for sku, n in per))
        if q > 0:
            taken[ln.line_no] = q
            for sku, n in per:
                left[sku] -= q * n
    return taken


def plan_by_stock(order: OrderView, stock: StockView, strategy: str = "by_warehouse_stock") -> SplitPlan:
    """The fewest groups that each ship entirely from one warehouse (see the module docstring)."""
    view = stock.for_order(order)
    everything = {ln.line_no: ln.quantity for ln in order.lines if ln.quantity > 0}
    if not everything:
        return SplitPlan((), strategy)
    need = units_by_sku(order)
    whole = view.shippers()
    if whole:
        best = min(whole, key=lambda w: (w.priority, -sum(view.qty(w.code, s) for s in need), w.code))
        return SplitPlan((_group(everything, f"all lines available at {best.code}", best.code),), strategy)

    remaining = dict(everything)
    groups: list[SplitGroup] = []
    candidates = list(stock.warehouses)
    while candidates and any(remaining.values()):
        scored = [(sum(t.values()), w, t) for w in candidates for t in [_take(view, remaining, w)]]
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
    return SplitPlan(tuple(groups), strategy)

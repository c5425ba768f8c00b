"""Built-in routing strategies: choose one warehouse for an order, or answer None.

Each strategy is a pure function ``(order, stock, params) -> RoutePlan | None``.
None means "this rule cannot decide" (no eligible warehouse has the stock, the
address is not located...), so the core tries the next routing rule in priority
order. :data:`PARAMS` maps each strategy name to the validator the rule loader
calls on the rule's ``route:`` mapping.

Common to every strategy:

* Capabilities: a line with ``cold_chain`` (or ``oversize``) truthy can only
  ship from a warehouse listing that capability; others are never chosen.
* Stock is seen as this order sees it: units reserved for it at a warehouse at
  creation count as available there (``oms_engine.OrderStock``).
* ``require_stock`` (default true): the warehouse must cover every line. With
  false, a covering warehouse is still preferred, and only when none covers
  does the strategy fall back to its first eligible choice, so a "ship anyway"
  rule never sends an order away from stock that was there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oms_engine import (
    OrderStock,
    OrderView,
    RoutePlan,
    StockView,
    Validator,
    WarehouseView,
    check_bool,
    check_keys,
    check_str,
    check_str_list,
    hookimpl,
)

RouteFn = Callable[[OrderView, StockView, Mapping[str, Any]], RoutePlan | None]

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


class _Context:
    """What every strategy needs to know about one order, computed once."""

    def __init__(self, order: OrderView, stock: StockView) -> None:
        self.stock = stock
        self.view: OrderStock = stock.for_order(order)
        self.n_lines = sum(1 for ln in order.lines if ln.quantity > 0)
        self.caps = order.capabilities
        self.total = sum(ln.quantity for ln in order.lines if ln.quantity > 0)

    def eligible(self, w: WarehouseView) -> bool:
        return self.view.eligible(w)

    def covers(self, w: WarehouseView) -> bool:
        return self.view.covers(w.code)

    def units(self, w: WarehouseView) -> int:
        return self.view.units(w.code)

    def known(self, codes: Sequence[str]) -> list[WarehouseView]:
        # A code the stock view does not know cannot be checked for capabilities
        # or stock, so it is never chosen (the rule falls through instead).
        by_code = {w.code: w for w in self.stock.warehouses}
        return [by_code[c] for c in codes if c in by_code]

    def lines_phrase(self) -> str:
        return f"{self.n_lines} line{'s' if self.n_lines != 1 else ''}"

    def stock_phrase(self, covering: bool) -> str:
        return (f"covering all {self.lines_phrase()}" if covering
                else f"(none covers all {self.lines_phrase()}; stock not required)")

    def cap_phrase(self) -> str:
        # Read as an adjective: "first cold_chain warehouse ...".
        return f" {'/'.join(sorted(self.caps))}" if self.caps else ""


def _pick(ctx: _Context, ranked: Sequence[WarehouseView],
          params: Mapping[str, Any]) -> tuple[WarehouseView, bool] | None:
    """The first eligible warehouse of ``ranked`` that covers the order, else
    (when stock is not required) the first eligible one; with whether it covers."""
    eligible = [w for w in ranked if ctx.eligible(w)]
    for w in eligible:
        if ctx.covers(w):
            return w, True
    if eligible and not params.get("require_stock", True):
        return eligible[0], False
    return None


def _by_priority(warehouses: Sequence[WarehouseView]) -> list[WarehouseView]:
    return sorted(warehouses, key=lambda w: (w.priority, w.code))


# --------------------------------------------------------------------------- priority


def _validate_priority(params: Mapping[str, Any]) -> None:
    check_keys("routing", "priority", params, ("order", "require_stock"))
    check_str_list("routing", "priority", params, "order")
    check_bool("routing", "priority", params, "require_stock")


def priority(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
    """The first eligible warehouse covering the order, in the rule's ``order``
    list or else by ascending warehouse priority (then code)."""
    _validate_priority(params)
    ctx = _Context(order, stock)
    if "order" in params:
        ranked, where = ctx.known(params["order"]), "in the rule's order list"
    else:
        ranked, where = _by_priority(stock.warehouses), "in priority list"
    picked = _pick(ctx, ranked, params)
    if picked is None:
        return None
    w, covering = picked
    return RoutePlan(w.code, f"first{ctx.cap_phrase()} warehouse {where} {ctx.stock_phrase(covering)}",
                     "priority")


# --------------------------------------------------------------------------- region


def _validate_region(params: Mapping[str, Any]) -> None:
    check_keys("routing", "region", params, ("map", "fallback", "require_stock"), required=("map",))
    table = params["map"]
    if not isinstance(table, Mapping) or not table:
        raise ValueError("routing strategy 'region': parameter 'map' must be a non-empty mapping of "
                         f"region or country to a list of warehouse codes, got {table!r}")
    seen: dict[str, str] = {}
    for key, codes in table.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"routing strategy 'region': map key {key!r} must be a region or country name")
        folded = key.strip().casefold()
        if folded in seen:
            # Keys are matched case-insensitively, so these two would silently shadow each other.
            raise ValueError(f"routing strategy 'region': map keys {seen[folded]!r} and {key!r} "
                             "are the same region (matching ignores case)")
        seen[folded] = key
        check_str_list("routing", "region", {f"map.{key}": codes}, f"map.{key}")
    check_str_list("routing", "region", params, "fallback")
    check_bool("routing", "region", params, "require_stock")


def region(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
    """The first eligible covering warehouse from the list mapped to the
    ship-to region, then to its country, then the ``fallback`` list.

    Lists are tried as one preference order, so a region whose warehouses are
    out of stock falls back to the country's before the fallback.
    """
    _validate_region(params)
    ctx = _Context(order, stock)
    table = {k.strip().casefold(): list(v) for k, v in params["map"].items()}
    ranked: list[str] = []
    matched: list[str] = []
    for place in (order.ship_to.region, order.ship_to.country):
        codes = table.get(place.strip().casefold()) if place.strip() else None
        if codes:
            matched.append(place.strip())
            ranked += [c for c in codes if c not in ranked]
    ranked += [c for c in params.get("fallback", ()) if c not in ranked]
    picked = _pick(ctx, ctx.known(ranked), params)
    if picked is None:
        return None
    w, covering = picked
    # Say which list the warehouse came from, so "why was it sent there?" has an answer.
    source = next((f"mapped to {place}" for place in matched if w.code in table[place.casefold()]),
                  "in the fallback list")
    return RoutePlan(w.code, f"first{ctx.cap_phrase()} warehouse {source} {ctx.stock_phrase(covering)}",
                     "region")


# --------------------------------------------------------------------------- nearest


def _validate_nearest(params: Mapping[str, Any]) -> None:
    check_keys("routing", "nearest", params, ("locations", "require_stock"), required=("locations",))
    table = params["locations"]
    if not isinstance(table, Mapping) or not table:
        raise ValueError("routing strategy 'nearest': parameter 'locations' must be a non-empty mapping "
                         f"of city or region name to [lat, lon], got {table!r}")
    seen: dict[str, str] = {}
    for key, point in table.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"routing strategy 'nearest': location name {key!r} must be a non-empty string")
        folded = key.strip().casefold()
        if folded in seen:
            raise ValueError(f"routing strategy 'nearest': locations {seen[folded]!r} and {key!r} "
                             "are the same place (matching ignores case)")
        seen[folded] = key
        ok = (isinstance(point, list | tuple) and len(point) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
              and -90 <= point[0] <= 90 and -180 <= point[1] <= 180)
        if not ok:
            raise ValueError(f"routing strategy 'nearest': location {key!r} must be [lat, lon] with "
                             f"-90 <= lat <= 90 and -180 <= lon <= 180, got {point!r}")
    check_bool("routing", "nearest", params, "require_stock")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def nearest(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
    """The eligible covering warehouse nearest (great circle) to the ship-to
    place, located through ``locations`` by city, then region; None when the
    address matches no location. Equal distances go to the lower priority."""
    _validate_nearest(params)
    table = {k.strip().casefold(): (float(v[0]), float(v[1])) for k, v in params["locations"].items()}
    place: str | None = None
    point: tuple[float, float] | None = None
    for name in (order.ship_to.city, order.ship_to.region):
        if name.strip() and name.strip().casefold() in table:
            place, point = name.strip(), table[name.strip().casefold()]
            break
    if point is None:
        return None
    ctx = _Context(order, stock)
    dist = {w.code: haversine_km(point[0], point[1], w.lat, w.lon) for w in stock.warehouses}
    # Rounded to the metre so two warehouses in the same spot tie on priority
    # instead of on floating-point noise.
    ranked = sorted(stock.warehouses, key=lambda w: (round(dist[w.code], 3), w.priority, w.code))
    picked = _pick(ctx, ranked, params)
    if picked is None:
        return None
    w, covering = picked
    return RoutePlan(w.code, f"nearest{ctx.cap_phrase()} warehouse {ctx.stock_phrase(covering)}, "
                             f"{dist[w.code]:.0f} km from {place}", "nearest")


# --------------------------------------------------------------------------- fewest_parcels


def _validate_fewest_parcels(params: Mapping[str, Any]) -> None:
    check_keys("routing", "fewest_parcels", params, ("require_stock",))
    check_bool("routing", "fewest_parcels", params, "require_stock")


def fewest_parcels(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
    """A warehouse covering the whole order (ties: priority, code); with
    ``require_stock: false`` and none covering, the one that can ship the most
    units, so the fewest are left to follow in another parcel."""
    _validate_fewest_parcels(params)
    ctx = _Context(order, stock)
    ranked = _by_priority([w for w in stock.warehouses if ctx.eligible(w)])
    for w in ranked:
        if ctx.covers(w):
            return RoutePlan(w.code, f"one parcel: first{ctx.cap_phrase()} warehouse in priority list "
                                     f"covering all {ctx.lines_phrase()}", "fewest_parcels")
    if params.get("require_stock", True) or not ranked:
        return None
    units = {w.code: ctx.units(w) for w in ranked}
    best = min(ranked, key=lambda w: (-units[w.code], w.priority, w.code))
    if units[best.code] == 0:
        # Nobody has any of it: "fewest parcels" has nothing to compare; let the next rule decide.
        return None
    total = ctx.total
    return RoutePlan(best.code, f"most units in stock ({units[best.code]} of {total}); "
                                "none covers the whole order", "fewest_parcels")


# --------------------------------------------------------------------------- fixed


def _validate_fixed(params: Mapping[str, Any]) -> None:
    check_keys("routing", "fixed", params, ("warehouse", "require_stock"), required=("warehouse",))
    check_str("routing", "fixed", params, "warehouse")
    check_bool("routing", "fixed", params, "require_stock")


def fixed(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
    """Always ``warehouse`` when it is eligible (and covers the order unless
    ``require_stock: false``), e.g. "cold-chain items ship from WH-SH"."""
    _validate_fixed(params)
    code: str = params["warehouse"]
    ctx = _Context(order, stock)
    found = ctx.known([code])
    if not found or not ctx.eligible(found[0]):
        return None
    if ctx.covers(found[0]):
        return RoutePlan(code, f"fixed by rule; covers all {ctx.lines_phrase()}", "fixed")
    if params.get("require_stock", True):
        return None
    return RoutePlan(code, "fixed by rule; stock not required", "fixed")


# --------------------------------------------------------------------------- registry


PARAMS: dict[str, Validator] = {
    "priority": _validate_priority,
    "region": _validate_region,
    "nearest": _validate_nearest,
    "fewest_parcels": _validate_fewest_parcels,
    "fixed": _validate_fixed,
}

STRATEGIES: dict[str, RouteFn] = {
    "priority": priority,
    "region": region,
    "nearest": nearest,
    "fewest_parcels": fewest_parcels,
    "fixed": fixed,
}


@hookimpl(trylast=True)
def oms_register_routing_strategies(register: Callable[..., None]) -> None:
    # The hook also offers ``config``; these strategies take all they need from
    # the rule's params, so they do not ask for it.
    for name, strategy in STRATEGIES.items():
        register(name, strategy, PARAMS[name])

"""oms-region-router: northern orders ship from Beijing; the shop's "RR-" SKUs are read as catalogue SKUs.

Written from docs/plugins.md only. Two hooks:

* ``oms_register_routing_strategies`` registers ``north_first``: an order shipped
  to a northern region goes to ``warehouse`` (default WH-BJ) when that warehouse
  can ship all of it (stock and equipment); otherwise it answers None and the
  next routing rule decides. Parameters, checked when the rules load:
  ``regions`` (a list of region names, default :data:`NORTH`) and ``warehouse``.
* ``oms_resolve_sku`` maps the shop's channel SKUs ("RR-TEA") to the catalogue's
  ("TEA-1"): :data:`SKUS`, plus and over it ``skus`` from
  ``plugin_settings.region_router`` in config.yaml; ``channels`` there limits
  the mapping to some channels. Any other SKU is not this plugin's (None).

``oms_resolve_sku`` receives no ``config``, so the settings are read when the OMS
starts, in the registration hook this plugin implements anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oms_engine import OrderView, RoutePlan, StockView, check_keys, check_str, hookimpl

__version__ = "0.1.0"

NAME = "region_router"
# Provinces (and municipalities) served from Beijing.
NORTH: tuple[str, ...] = ("Beijing", "Tianjin", "Hebei", "Shanxi", "Inner Mongolia", "Liaoning", "Jilin",
                          "Heilongjiang", "Shandong")
DEFAULT_WAREHOUSE = "WH-BJ"
# The shop's channel SKUs -> the catalogue's SKUs.
SKUS: dict[str, str] = {
    "RR-TEA": "TEA-1",
    "RR-MUG": "MUG-1",
    "RR-ICE": "ICE-1",
    "RR-SOFA": "SOFA-1",
    "RR-TV": "TV-1",
    "RR-PEN": "PEN-1",
}

# What the SKU mapper uses: set from config.yaml each time an OMS starts.
_mapping: dict[str, str] = dict(SKUS)
_channels: set[str] | None = None


# --------------------------------------------------------------------------- north_first


def validate(params: Mapping[str, Any]) -> None:
    """The rule's ``route:`` parameters; ValueError is reported with the rule file and line."""
    check_keys("routing", "north_first", params, ("regions", "warehouse"))
    check_str("routing", "north_first", params, "warehouse")
    if "regions" in params:
        regions = params["regions"]
        if (not isinstance(regions, list) or not regions
                or not all(isinstance(r, str) and r.strip() for r in regions)):
            raise ValueError("routing strategy 'north_first': parameter 'regions' must be a non-empty list of "
                             f"region names, got {regions!r}")


def north_first(order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
    validate(params)
    regions = {r.strip().casefold() for r in params.get("regions", NORTH)}
    region = order.ship_to.region.strip()
    if region.casefold() not in regions:
        return None
    code = params.get("warehouse", DEFAULT_WAREHOUSE)
    warehouse = next((w for w in stock.warehouses if w.code == code), None)
    if warehouse is None or not stock.for_order(order).can_ship(warehouse):
        return None  # not equipped for it (cold chain...) or short of stock: the next rule decides
    return RoutePlan(code, reason=f"{region} is served from {code}, which has every line", strategy="north_first")


# --------------------------------------------------------------------------- settings


def configure(settings: Mapping[str, Any]) -> None:
    """Read ``plugin_settings.region_router``; a mistake there stops the start with this message."""
    global _channels
    unknown = sorted(set(settings) - {"skus", "channels"})
    if unknown:
        raise ValueError(f"plugin_settings.{NAME}: unknown setting(s) {', '.join(unknown)}; allowed: skus, channels")
    skus = settings.get("skus", {})
    if not isinstance(skus, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                                for k, v in skus.items()):
        raise ValueError(f"plugin_settings.{NAME}.skus must map channel SKUs to catalogue SKUs, got {skus!r}")
    channels = settings.get("channels")
    if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)):
        raise ValueError(f"plugin_settings.{NAME}.channels must be a list of channel names, got {channels!r}")
    _mapping.clear()
    _mapping.update(SKUS)
    _mapping.update(skus)
    _channels = set(channels) if channels is not None else None


# --------------------------------------------------------------------------- hooks


@hookimpl
def oms_register_routing_strategies(register: Any, config: Any) -> None:
    # Registration hooks run once when the OMS starts, before any order arrives:
    # the one place this plugin sees config.yaml.
    configure(config.plugin_settings.get(NAME, {}))
    register("north_first", north_first, validate)


@hookimpl
def oms_resolve_sku(channel: str, sku: str) -> str | None:
    if _channels is not None and channel not in _channels:
        return None
    return _mapping.get(sku.strip())

"""Freight templates: the price of delivery to a region, by weight, free above an amount of goods.

A template has zones. A zone lists where it applies, each entry one of
``CN/Xinjiang`` (a region of a country), ``Xinjiang`` (a region by name),
``CN`` (a country) or ``*`` (anywhere else); the most specific entry that
matches the destination decides the zone, in that order, whatever the order of
the zones. A zone charges ``first_price`` for the first ``first_weight_g``
grams and ``extra_price`` for every further ``extra_weight_g`` grams or part of
them; with no first weight it charges ``first_price`` whatever the weight.
Goods worth ``free_above`` or more (after promotions, before gift cards and
points, which are means of payment) travel free: the zone's threshold, else
the template's. Amounts are minor units of the template's currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..money import format_minor


@dataclass(frozen=True)
class Zone:
    regions: tuple[str, ...]
    first_weight_g: int
    first_price: int
    extra_weight_g: int
    extra_price: int
    free_above: int | None


@dataclass(frozen=True)
class Template:
    code: str
    name: str
    currency: str
    zones: tuple[Zone, ...]
    free_above: int | None
    active: bool = True

    @classmethod
    def of(cls, code: str, name: str, currency: str, zones: list[Mapping[str, Any]], free_above: int | None,
           active: bool = True) -> Template:
        return cls(code, name, currency, tuple(
            Zone(tuple(z["regions"]), int(z.get("first_weight_g") or 0), int(z["first_price"]),
                 int(z.get("extra_weight_g") or 1000), int(z.get("extra_price") or 0),
                 None if z.get("free_above") is None else int(z["free_above"])) for z in zones), free_above, active)

    def zone_for(self, country: str, region: str) -> Zone | None:
        """The zone the destination falls in: the one with its most specific matching entry."""
        entries = self._entries()
        for key in (f"{country}/{region}".casefold(), region.casefold(), country.casefold(), "*"):
            if key in entries:
                return entries[key]
        return None

    def _entries(self) -> dict[str, Zone]:
        # Entry (case-folded) -> its zone, made once per template; entries are unique across zones (schemas.py).
        found: dict[str, Zone] | None = self.__dict__.get("_by_entry")
        if found is None:
            found = {e.casefold(): z for z in reversed(self.zones) for e in z.regions}
            object.__setattr__(self, "_by_entry", found)
        return found

    def price(self, country: str, region: str, weight_g: int, goods: int) -> Charge:
        """What delivering ``weight_g`` grams of goods worth ``goods`` to the region costs; a charge with
        ``problem`` set when the template does not deliver there."""
        where = "/".join(p for p in (country, region) if p) or "an address without country or region"
        zone = self.zone_for(country, region)
        if zone is None:
            return Charge(self.code, None, f"freight template {self.code} has no zone for {where}")
        free = zone.free_above if zone.free_above is not None else self.free_above
        if free is not None and goods >= free:
            return Charge(self.code, 0, f"free to {where}: goods {format_minor(goods, self.currency)} reach "
                                        f"{format_minor(free, self.currency)}")
        amount, how = zone.first_price, f"{format_minor(zone.first_price, self.currency)}"
        if zone.first_weight_g and weight_g > zone.first_weight_g:
            steps = -(-(weight_g - zone.first_weight_g) // zone.extra_weight_g)
            amount += steps * zone.extra_price
            how += f" + {steps} x {format_minor(zone.extra_price, self.currency)}"
        weight = f", {weight_g:,} g" if zone.first_weight_g else ""
        return Charge(self.code, amount, f"{how} to {where}{weight}")


@dataclass(frozen=True)
class Charge:
    template: str
    amount: int | None      # None: the template cannot price it (``reason`` says why)
    reason: str

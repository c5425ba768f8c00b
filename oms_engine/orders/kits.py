"""Kits: a product sold as one line and made of others (its bill of materials, ``products.components``).

A kit has no stock of its own. When it is ordered, the line keeps the kit's
components as they are that day (``order_lines.components``: later edits of
the bill do not change what was sold), and from then on the line's units are
its components': they are reserved, routed, split, sent to the warehouse,
shipped and taken back as components, ``quantity x component quantity``
each. The money stays on the kit line; where a value per component is
needed (the warehouse document's declared values, a return), the line's net
amount is apportioned over the components by their catalogue prices, to the
cent (:func:`component_values`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..money import apportion

# (line_no, sku, quantity): one stock need of an order line.
Need = tuple[int, str, int]
# The line attribute that says a line (or a kit's component) is kept in lots: routing takes its lots.
LOT_TRACKED = "lot_tracked"


def units(line: Any, quantity: int | None = None) -> list[tuple[str, int]]:
    """(sku, quantity) the line's ``quantity`` units (default: all) take from stock."""
    q = line.quantity if quantity is None else quantity
    components = line.components
    if not components:
        return [(line.sku, q)]
    return [(c["sku"], c["quantity"] * q) for c in components]


def requirements(lines: Iterable[Any]) -> list[Need]:
    """Every stock need of these lines, kits as their components."""
    return [(ln.line_no, sku, q) for ln in lines for sku, q in units(ln)]


def needs(lines: Iterable[Any]) -> dict[tuple[int, str], int]:
    """(line_no, sku) -> units needed."""
    out: dict[tuple[int, str], int] = {}
    for line_no, sku, q in requirements(lines):
        out[(line_no, sku)] = out.get((line_no, sku), 0) + q
    return out


def stock_skus(lines: Iterable[Any]) -> set[str]:
    """The SKUs these lines take from stock."""
    return {sku for ln in lines for sku, _ in units(ln)}


def snapshot(components: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A kit's bill of materials as the order line keeps it."""
    return [{"sku": str(c["sku"]), "quantity": int(c["quantity"])} for c in components]


def kits_held(line: Any, held: Mapping[str, int]) -> int:
    """Whole kits of ``line`` that ``held`` (sku -> units held for the line) makes up."""
    if not line.components:
        return held.get(line.sku, 0)
    return min(held.get(c["sku"], 0) // c["quantity"] for c in line.components)


def component_values(line: Any, prices: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """(sku, quantity, value) of the line's components: the line's net amount (goods less discount) shared by
    the components' catalogue prices x quantities, to the cent; a component without a price weighs 1."""
    if not line.components:
        return [(line.sku, line.quantity, line.goods - line.discount)]
    parts = units(line)
    weights = [max(prices.get(sku, 0), 1) * q for sku, q in parts]
    shares = apportion(line.goods - line.discount, weights)
    return [(sku, q, v) for (sku, q), v in zip(parts, shares, strict=True)]

"""Goods of a case recorded back by a person (``oms aftersales receive``): what is still to come on the return
document, as the report lines a warehouse would send, some of its units marked damaged.

Damaged units are received like the others (they count on the document's line, the case moves on) but go to
the damaged status, not back into sellable stock (stock/damaged.py, through the report's ``condition``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import CommandError
from ..storage.models import StockDocumentLine


class ReceiptError(CommandError):
    """The damaged units given do not fit what comes back (the caller's mistake: nothing was recorded)."""


def checked(damaged: Mapping[str, Any] | None) -> dict[str, int]:
    """SKU -> damaged units, each a whole number above 0; ReceiptError naming the first that is not."""
    out: dict[str, int] = {}
    for sku, qty in (damaged or {}).items():
        if not isinstance(sku, str) or not sku:
            raise ReceiptError(f"damaged units are given per SKU, got {sku!r}")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise ReceiptError(f"damaged {sku}: the quantity must be a whole number above 0, got {qty!r}")
        out[sku] = qty
    return out


def report_lines(document: str, lines: Iterable[StockDocumentLine], damaged: Mapping[str, int]) -> list[dict[str, Any]]:
    """The rest of each document line, its damaged units on lines of their own (``condition: damaged``);
    ReceiptError when more units of a SKU are said damaged than are still to come back."""
    left = dict(damaged)
    out: list[dict[str, Any]] = []
    rest: dict[str, int] = {}
    for ln in lines:
        todo = ln.quantity - ln.done
        if todo <= 0:
            continue
        rest[ln.sku] = rest.get(ln.sku, 0) + todo
        broken = min(todo, left.get(ln.sku, 0))
        if broken:
            left[ln.sku] -= broken
        if todo > broken:
            out.append({"sku": ln.sku, "quantity": todo - broken})
        if broken:
            out.append({"sku": ln.sku, "quantity": broken, "condition": "damaged"})
    for sku, over in sorted(left.items()):
        if over:
            raise ReceiptError(f"{damaged[sku]} {sku} damaged, but {document} has "
                               + (f"{rest[sku]} of it to receive" if sku in rest else "none of it to receive"))
    return out


def damaged_text(damaged: Mapping[str, int]) -> str:
    """``2 TEA-1, 1 MUG-1 damaged`` (empty when none)."""
    return ", ".join(f"{q} {sku}" for sku, q in sorted(damaged.items())) + " damaged" if damaged else ""

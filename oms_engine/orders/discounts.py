"""How an order's promotions (its coupon) are shared over its lines: the single rule intake uses.

What the channel allotted to a line (its ``promotions``) is that line's; the rest of the coupon, as far as the
goods can take it, is shared over what is left of each line's goods by largest remainder. The lines' discounts
always add up to the coupon, or to the goods when the coupon is worth more (the rest comes off the freight,
then the tax: invoices/issuing.py). Allotments that do not fit (more than the line's goods, more than the
coupon) are not the line's: the order is held for a person and the coupon is shared as if none were sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..money import apportion


def line_discounts(goods: Sequence[int], allotted: Sequence[int], coupon: int) -> list[int]:
    """Each line's discount, given each line's goods, what the channel allotted to it, and the coupon."""
    total = min(coupon, sum(goods))
    own = list(allotted)
    if any(a > g for a, g in zip(own, goods, strict=True)) or sum(own) > total:
        own = [0] * len(goods)
    rest = apportion(total - sum(own), [g - a for g, a in zip(goods, own, strict=True)])
    return [a + r for a, r in zip(own, rest, strict=True)]

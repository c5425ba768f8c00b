"""What a case is worth: what the customer actually paid for the units of each line it names.

A line's paid amount is its goods less the discounts apportioned to it when the
order came in. Units are worth it in equal shares, and a line returned in
several cases is paid back in total exactly what was paid for it: the first ``r``
units are worth ``floor(paid * r / quantity)``, so ``q`` more after ``r``
already claimed are worth ``floor(paid * (r + q) / quantity) - floor(paid * r /
quantity)``, and no cent is lost or paid twice however the units are split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def paid_for(line: Any, quantity: int, claimed: int = 0) -> int:
    """What the customer paid for ``quantity`` more units of ``line`` after ``claimed`` units claimed before."""
    paid = line.goods - line.discount
    total = line.quantity
    return paid * (claimed + quantity) // total - paid * claimed // total


def case_amount(lines: Sequence[Any], wanted: Mapping[int, int], claimed: Mapping[int, int]) -> int:
    """The worth of ``wanted`` (line_no -> units) of the order's ``lines``, given ``claimed`` by earlier cases."""
    by_no = {ln.line_no: ln for ln in lines}
    return sum(paid_for(by_no[n], q, claimed.get(n, 0)) for n, q in wanted.items())

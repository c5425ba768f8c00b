"""Whether an order is paid (its payments are in payments/ledger.py)."""

from __future__ import annotations

from typing import Any

from .methods import Method

COD = Method.COD.value


def is_paid(order: Any) -> bool:
    """Paid in full by payments with a provider's transaction serial number."""
    return bool(order.payment_txn) and order.paid_amount >= order.payable


def is_cod(order: Any) -> bool:
    """Paid on delivery: the carrier collects what is payable, the OMS records it when the parcel is delivered."""
    return bool(order.payment_method == COD)


def cleared(order: Any) -> bool:
    """May be fulfilled: paid in full, or to be paid at the door."""
    return is_paid(order) or is_cod(order)

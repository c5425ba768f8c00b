"""Whether an order is paid (its payments are in payments/ledger.py)."""

from __future__ import annotations

from typing import Any


def is_paid(order: Any) -> bool:
    """Paid in full by payments with a provider's transaction serial number."""
    return bool(order.payment_txn) and order.paid_amount >= order.payable

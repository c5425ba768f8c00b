"""Whether an order is paid, and recording a payment on it."""

from __future__ import annotations

from datetime import datetime

from ..storage.models import Order


def is_paid(order: Order) -> bool:
    """Paid in full by a payment with a transaction serial number."""
    return bool(order.payment_txn) and order.paid_amount >= order.payable


def record_payment(order: Order, amount: int, transaction_id: str, at: datetime) -> None:
    order.paid_amount, order.payment_txn, order.paid_at = amount, transaction_id, at

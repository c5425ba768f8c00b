"""Invoices and credit notes: what the customer was invoiced for an order, and credited back for its refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Invoice(Base):
    """An invoice (the order paid in full) or a credit note (money paid back for it), with its lines and tax and
    the e-invoice a tax platform takes (invoices/)."""

    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)           # <order>-INV01, <order>-CN01 ...
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))         # the order that was paid
    for_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)  # a credit's order
    kind: Mapped[str] = mapped_column(String(12))                          # invoice | credit_note
    amount: Mapped[int] = mapped_column(BigInteger)                        # tax included
    tax: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    refers_to: Mapped[str | None] = mapped_column(ForeignKey("invoices.number"), nullable=True)  # a credit's invoice
    refunds: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # a credit's refund serials
    reason: Mapped[str] = mapped_column(String(300), default="")
    document: Mapped[dict[str, Any]] = mapped_column(JSON)                 # the e-invoice
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Its submission to the tax platform (invoices/submission.py): unsubmitted | pending | accepted | refused.
    # Rows issued before submission existed read unsubmitted (migration 0020), and so do those issued with no
    # tax connector set.
    submission: Mapped[str] = mapped_column(String(12), server_default="unsubmitted")
    official_no: Mapped[str | None] = mapped_column(String(64), nullable=True)     # the platform's own number
    verification: Mapped[str | None] = mapped_column(String(300), nullable=True)   # its check code or url
    submission_note: Mapped[str] = mapped_column(String(300), server_default="")   # why it was refused
    submission_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # when it reached that state
    __table_args__ = (
        CheckConstraint("amount >= 0 AND tax >= 0", name="ck_invoice_amounts"),
        Index("ix_invoices_order", "order_id", "id"),
    )

"""After-sales: cases customers open on an order (refund only, return and refund, exchange) and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class AftersalesCase(Base):
    """One case: which lines and how many of each, what the customer asks for, where it stands (aftersales/)."""

    __tablename__ = "aftersales_cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)           # <order number>-C01 ...
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(16))                          # refund_only, return_refund, exchange
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")                  # the customer's words
    # [{"line_no": 1, "quantity": 2}]: the order's lines the case is about, each up to what is left of it.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    amount: Mapped[int] = mapped_column(BigInteger)                        # what the customer paid for them
    currency: Mapped[str] = mapped_column(String(3))
    decision: Mapped[str] = mapped_column(Text, default="")                # why approved, held or denied
    return_document: Mapped[str | None] = mapped_column(String(64), nullable=True)   # the RMA of a return
    # An exchange's replacement order: its number (created when the goods are asked back, held until they are).
    replacement: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Promotions on the goods the customer keeps, taken off the refund (rules/refunds.yaml, claw_back).
    clawed_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    appeals: Mapped[int] = mapped_column(default=0)
    opened_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_aftersales_order", "order_id", "id"),
                      # A replacement delivered or cancelled finds its case (aftersales/service.py).
                      Index("ix_aftersales_replacement", "replacement"))


class AftersalesHistory(Base):
    """A case's change of state: one row per transition, like an order's history."""

    __tablename__ = "aftersales_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("aftersales_cases.id"))
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str] = mapped_column(String(24))
    event: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(100))
    cause: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_aftersales_history_case", "case_id", "id"),)

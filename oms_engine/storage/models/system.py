"""The OMS about itself: order-number blocks, incidents, and facts about the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class NumberBlock(Base):
    """Counter that hands out blocks of order-number sequence values to processes."""

    __tablename__ = "number_blocks"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger)


class Incident(Base):
    """A plugin (or the core) failed on a piece of work; what failed, where, and what the OMS did about it."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True, index=True)
    stage: Mapped[str] = mapped_column(String(32))
    plugin: Mapped[str] = mapped_column(String(200))
    hook: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(200))   # what the OMS did: held the order, retried the task...
    at: Mapped[datetime] = mapped_column(DateTime)


class Meta(Base):
    """Facts about the database itself, e.g. that the demo made it."""

    __tablename__ = "oms_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

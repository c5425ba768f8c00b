"""What leaves and what comes back: the outbox, the inbox of callbacks, connector tasks and plugin state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class OutboxMessage(Base):
    """Side effects leave through here, in one transaction with the change that caused them."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    order_number: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(16))        # notification | connector
    target: Mapped[str] = mapped_column(String(64))      # medium or connector name
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | sent | dead | withdrawn
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    available_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    __table_args__ = (
        Index("ix_outbox_pending", "status", "available_at"),
        # "is an older message of this order still unsent?"
        Index("ix_outbox_order", "order_id", "status", "id"),
    )


class InboxMessage(Base):
    """Callbacks from WMS and carriers, stored as received, applied in arrival order."""

    __tablename__ = "inbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | applied | rejected
    outcome: Mapped[str] = mapped_column(Text, default="")
    # A callback over HTTP from a warehouse: which one sent it, and the id it gave the callback (a second
    # delivery of the same id is recorded and does nothing).
    warehouse: Mapped[str | None] = mapped_column(String(32), nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    __table_args__ = (Index("ix_inbox_pending", "status", "id"),
                      Index("ix_inbox_correlation", "source", "correlation_id"))


class ScheduledTask(Base):
    __tablename__ = "scheduled_tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    connector: Mapped[str] = mapped_column(String(64))
    # The plugin-state key the task works on, so a batch's state loads in one query.
    key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A task whose connector raised is retried later; the last error stays on record.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    __table_args__ = (Index("ix_tasks_due", "due_at"),)


class PluginState(Base):
    __tablename__ = "plugin_state"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)

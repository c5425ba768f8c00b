"""Intake: every payload received, verbatim, the webhook deliveries seen, where each channel account's next
pull starts, and what each was last told of its stock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class RawPayload(Base):
    """Every payload received, verbatim, before anything reads it."""

    __tablename__ = "raw_payloads"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # Shows the body is the one received. Not indexed: nothing looks a payload up by it, and a hash is a
    # key that lands anywhere, one per webhook delivery (migration 0006).
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(Text, default="")


class WebhookDelivery(Base):
    """A signed webhook delivery seen: its id is remembered for the replay window, so a replay is refused."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    __table_args__ = (UniqueConstraint("channel", "delivery_id", name="uq_webhook_delivery"),)


class ChannelCursor(Base):
    """Where the next pull of a channel account starts (channels/pulling.py), and how the last one went."""

    __tablename__ = "channel_cursors"
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The adapter's own token for "after what was fetched" (a page token, a timestamp); None: from the start.
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    pulled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    pages: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    # Why the last pull failed ("" after one that worked): the cursor stayed where it was.
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ChannelStock(Base):
    """What a channel account was last told it may sell of one of its SKUs (channels/stock_push.py): a push
    goes out only for the SKUs whose quantity changed since."""

    __tablename__ = "channel_stock"
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    queued_at: Mapped[datetime] = mapped_column(DateTime)


class StockPushCursor(Base):
    """How far a channel account's stock pushes have read the stock ledger, and when they last looked."""

    __tablename__ = "stock_push_cursors"
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The last stock movement read: the next sweep reads those after it (and a window before it again).
    movement_id: Mapped[int] = mapped_column(BigInteger, default=0)
    swept_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

"""Fulfilment: every message exchanged with a warehouse or carrier, byte for byte; the documents of goods in
and out (purchase orders, returns to vendors, customer returns); the carriers' tracking events; and the new
delivery addresses asked of the warehouses that hold an order's document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, BigId


class Exchange(Base):
    """One message on the wire: a document sent, the answer to it, or a callback received; its bytes as
    they went or came, with the correlation id that ties a document to its answers and callbacks."""

    __tablename__ = "exchanges"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    direction: Mapped[str] = mapped_column(String(8))          # out: sent; in: an answer or a callback
    kind: Mapped[str] = mapped_column(String(16))              # request, response, callback
    connector: Mapped[str] = mapped_column(String(64))
    warehouse: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_number: Mapped[str] = mapped_column(String(32), default="")
    topic: Mapped[str] = mapped_column(String(64), default="")
    correlation_id: Mapped[str] = mapped_column(String(128), default="")
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)   # the outbox message
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)         # an HTTP answer's status
    content_type: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        Index("ix_exchanges_order", "order_number", "id"),
        Index("ix_exchanges_correlation", "correlation_id"),
    )


class StockDocument(Base):
    """A document of goods in or out that a warehouse works: a purchase order (goods expected from a
    supplier), a return to a vendor, a customer return expected back."""

    __tablename__ = "stock_documents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)      # PO-..., RTV-..., RMA-...
    kind: Mapped[str] = mapped_column(String(24))                     # purchase_order, return_to_vendor, ...
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"))
    supplier: Mapped[str | None] = mapped_column(ForeignKey("suppliers.code"), nullable=True)
    order_number: Mapped[str | None] = mapped_column(String(32), nullable=True)   # a customer return's order
    status: Mapped[str] = mapped_column(String(16))       # open, sent, partial, done, cancelled
    expected_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    lines: Mapped[list[StockDocumentLine]] = relationship(back_populates="document",
                                                         order_by="StockDocumentLine.line_no",
                                                         cascade="all, delete-orphan")


class StockDocumentLine(Base):
    __tablename__ = "stock_document_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("stock_documents.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int] = mapped_column(Integer)          # expected (in) or to send (out)
    done: Mapped[int] = mapped_column(Integer, default=0)   # received or sent so far, as the warehouse said
    unit_cost: Mapped[int | None] = mapped_column(BigInteger, nullable=True)   # a purchase's price, minor units
    # A lot-tracked product's lot and expiry, as expected, or as the warehouse reported receiving it.
    lot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    document: Mapped[StockDocument] = relationship(back_populates="lines")
    __table_args__ = (
        UniqueConstraint("document_id", "line_no", name="uq_stock_document_line"),
        CheckConstraint("quantity > 0", name="ck_stock_document_quantity"),
        CheckConstraint("done >= 0", name="ck_stock_document_done"),
    )


class TrackingEvent(Base):
    """A carrier's (or a warehouse's customer-visible) event about a parcel, apart from the order's status:
    when and where, as the customer and the channel may see it (``customer_visible``, ``label``)."""

    __tablename__ = "tracking_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    source: Mapped[str] = mapped_column(String(64))          # the connector
    source_kind: Mapped[str] = mapped_column(String(8))      # wms, carrier
    status: Mapped[str] = mapped_column(String(64))          # the sender's own word
    label: Mapped[str] = mapped_column(String(200), default="")
    customer_visible: Mapped[bool] = mapped_column(Boolean, default=False)
    tracking_no: Mapped[str] = mapped_column(String(64), default="")
    place: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(DateTime)           # when it happened, as the sender says
    received_at: Mapped[datetime] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(200), default="")   # what the OMS did with it
    __table_args__ = (Index("ix_tracking_order", "order_id", "at"),)


class AddressRequest(Base):
    """A new delivery address asked of the warehouse that holds the order's document
    (fulfilment/address_requests.py): sent as ``wms.readdress``, answered by a callback of kind ``readdress``.
    The order keeps its address until the warehouse accepts."""

    __tablename__ = "address_requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    # The channel's update that asked for it: one request per order and update, however often it is applied.
    update_id: Mapped[int | None] = mapped_column(ForeignKey("order_updates.id"), nullable=True)
    warehouse: Mapped[str] = mapped_column(String(32))
    document: Mapped[str] = mapped_column(String(64))        # the document it is in (a merged parcel's)
    address: Mapped[dict[str, Any]] = mapped_column(JSON)    # the new ship_to
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | accepted | refused | superseded
    requested_at: Mapped[datetime] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")    # the warehouse's words, or why it was set aside
    __table_args__ = (
        Index("ix_address_requests_order", "order_id", "status"),
        UniqueConstraint("update_id", "order_id", name="uq_address_request_update"),
    )

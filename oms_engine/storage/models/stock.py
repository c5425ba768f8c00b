"""Stock: balances per warehouse and SKU, the ledger of every movement, the units held for order lines, and the
damaged goods kept apart from them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Stock(Base):
    """Balance per warehouse and SKU. available = on_hand - reserved, never negative."""

    __tablename__ = "stock"
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    # What the units on hand cost, at moving average (stock/movements.py), in minor units of the product's
    # currency: the sum of the ledger's value deltas.
    value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="ck_stock_reserved"),
        CheckConstraint("on_hand >= reserved", name="ck_stock_available"),
        CheckConstraint("value >= 0", name="ck_stock_value"),
        # Clustered by its key on SQLite: one B-tree descent per stock row read (migration 0005).
        {"sqlite_with_rowid": False},
    )


class StockMovement(Base):
    """Append-only: every change of on_hand, reserved or value, typed by its source document
    (stock/movements.py lists the types and what each does)."""

    __tablename__ = "stock_movements"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    warehouse: Mapped[str] = mapped_column(String(32))
    sku: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))   # a Movement: opening, reserve, release, sale_out, ...
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    order_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    document: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime)
    # Goods in and out move the stock's value too; reservations leave these at their defaults.
    value_delta: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    unit_cost: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor: Mapped[str] = mapped_column(String(100), default="", server_default="")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The lot it moved, for a lot-tracked product (stock_lots).
    lot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The change of damaged stock (damaged_stock): a damaged return, a scrap, a regrade. Only the server's
    # default, no Python one: a default SQLAlchemy computes would be one more value in every insert of the
    # hot path's movements, which never move it.
    damaged_delta: Mapped[int] = mapped_column(Integer, server_default="0")
    # Indexed by its key, and by time for the day's movements (append-mostly: new rows land at the end).
    # Not by (warehouse, sku): a ledger of every order's every line, keyed so, would take its inserts at
    # random places in an index of millions of entries (migration 0006).
    __table_args__ = (
        Index("ix_movements_at", "at"),
        # Opening balances, a handful per (warehouse, sku): a stock import asks for them, and no other
        # movement is in this index, so the hot path's inserts never touch it.
        Index("ix_movements_opening", "warehouse", "sku", sqlite_where=text("kind = 'opening'"),
              postgresql_where=text("kind = 'opening'")),
    )


class Reservation(Base):
    """Stock held for an order line at a warehouse."""

    __tablename__ = "reservations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    warehouse: Mapped[str] = mapped_column(String(32))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    # The lot the units are taken from, for a lot-tracked product once the order is routed (stock/lots.py).
    lot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    __table_args__ = (CheckConstraint("quantity > 0", name="ck_reservation_qty"),)


class DamagedStock(Base):
    """Goods back from customers damaged, per warehouse and SKU (stock/damaged.py): apart from the stock row's
    on hand, never available or reserved, without value and without lots; the sum of the ledger's damaged
    deltas."""

    __tablename__ = "damaged_stock"
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    __table_args__ = (CheckConstraint("quantity >= 0", name="ck_damaged_stock_quantity"),)


class StockLot(Base):
    """A lot of a lot-tracked product at a warehouse, with its expiry. The stock row of (warehouse, sku)
    holds the sum of its lots' on_hand; ``reserved`` here counts the units reservations took from the lot."""

    __tablename__ = "stock_lots"
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    lot: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="ck_stock_lot_reserved"),
        CheckConstraint("on_hand >= reserved", name="ck_stock_lot_available"),
    )


class StockClosing(Base):
    """A warehouse's stock at the close of a day (UTC), per SKU: quantities and value at average cost, for
    finance. Worked out from the balances and the ledger rows after that day (stock/closing.py)."""

    __tablename__ = "stock_closings"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = mapped_column(DateTime)

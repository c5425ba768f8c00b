"""Tables. Money columns are integer minor units; the currency is on the order.

Alembic migrations in ``oms_engine/storage/migrations`` create these; the
models are the source the migrations were written from, and a test
(tests/storage/test_migrations.py) fails when the two disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Product(Base):
    __tablename__ = "products"
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    merchant: Mapped[str] = mapped_column(String(64))
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (CheckConstraint("price >= 0", name="ck_product_price"),)


class Warehouse(Base):
    __tablename__ = "warehouses"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(64))
    city: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    lat: Mapped[float] = mapped_column(default=0.0)
    lon: Mapped[float] = mapped_column(default=0.0)
    capabilities: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Stock(Base):
    """Balance per warehouse and SKU. available = on_hand - reserved, never negative."""

    __tablename__ = "stock"
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="ck_stock_reserved"),
        CheckConstraint("on_hand >= reserved", name="ck_stock_available"),
        # Clustered by its key on SQLite: one B-tree descent per stock row read (migration 0005).
        {"sqlite_with_rowid": False},
    )


class StockMovement(Base):
    """Append-only: every change of on_hand or reserved, with its source document."""

    __tablename__ = "stock_movements"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    warehouse: Mapped[str] = mapped_column(String(32))
    sku: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))   # reserve, release, ship, receive, adjust, return
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    order_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    document: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime)
    # Indexed by its key alone: a ledger of every order's every line, keyed by (warehouse, sku), would
    # take its inserts at random places in an index of millions of entries (migration 0006).


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    level: Mapped[str] = mapped_column(String(32), default="regular")
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    blacklist_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class CustomerChange(Base):
    """Every change to a customer record: which field, from what to what, by whom and why."""

    __tablename__ = "customer_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str] = mapped_column(Text)
    new_value: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime)


class WebhookDelivery(Base):
    """A signed webhook delivery seen: its id is remembered for the replay window, so a replay is refused."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    __table_args__ = (UniqueConstraint("channel", "delivery_id", name="uq_webhook_delivery"),)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    shard: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    # Children carry NULL: the channel knows only the parent.
    external_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(24))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    ship_to: Mapped[dict[str, Any]] = mapped_column(JSON)
    goods: Mapped[int] = mapped_column(BigInteger, default=0)
    freight: Mapped[int] = mapped_column(BigInteger, default=0)
    tax: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon: Mapped[int] = mapped_column(BigInteger, default=0)
    gift_card: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    payable: Mapped[int] = mapped_column(BigInteger, default=0)
    declared_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paid_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_txn: Mapped[str | None] = mapped_column(String(128), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    refund_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    hold_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)  # intake | screening
    # The next pipeline step of a paid order: screen -> split -> route -> (none).
    stage: Mapped[str | None] = mapped_column(String(8), nullable=True)
    warehouse: Mapped[str | None] = mapped_column(String(32), nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tracking_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    placed_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # When the current state's timer fires: payment timeout, auto-confirm, close.
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payloads.id"), nullable=True)
    # The buyer's contact details as this order's payload gave them (name, email, phone): the
    # order's own snapshot. The customer record is the OMS's and changes only through an audited path.
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # sha256 of the canonical order as received, so a re-sent channel order whose content differs is told apart.
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", cascade="all, delete-orphan")
    customer: Mapped[Customer] = relationship()
    parent: Mapped[Order | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Order]] = relationship(back_populates="parent", order_by="Order.id")

    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_order_channel_external"),
        Index("ix_orders_status", "status", "stage"),
        # Timers look for (status in a few states, due_at <= now): one range per state.
        Index("ix_orders_due", "status", "due_at"),
        # Covers the customer statistics the blocking rules read (count, and those placed in the last day).
        Index("ix_orders_customer", "customer_id", "parent_id", "placed_at"),
        Index("ix_orders_parent", "parent_id"),
        CheckConstraint("goods >= 0 AND freight >= 0 AND payable >= 0", name="ck_order_amounts"),
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Looked up through uq_line_no, which leads with it.
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    channel_sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    goods: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    merchant: Mapped[str] = mapped_column(String(64), default="")
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    # The product as it was when ordered; later catalogue edits do not touch it.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mapped: Mapped[bool] = mapped_column(Boolean, default=True)
    order: Mapped[Order] = relationship(back_populates="lines")
    __table_args__ = (
        UniqueConstraint("order_id", "line_no", name="uq_line_no"),
        CheckConstraint("quantity > 0", name="ck_line_quantity"),
        CheckConstraint("discount >= 0 AND discount <= goods", name="ck_line_discount"),
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
    __table_args__ = (CheckConstraint("quantity > 0", name="ck_reservation_qty"),)


class History(Base):
    __tablename__ = "order_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str] = mapped_column(String(24))
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    cause: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime)


class DecisionRecord(Base):
    """A rules evaluation about one order: which ruleset version, what fired, what was done."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    point: Mapped[str] = mapped_column(String(32))
    ruleset: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    fired: Mapped[list[Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The projected facts the rules read, so the decision can be replayed later.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)


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
    __table_args__ = (Index("ix_inbox_pending", "status", "id"),)


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


class RuleVersion(Base):
    """The text of every ruleset version ever stored; a version is its content hash."""

    __tablename__ = "rule_versions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ruleset: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("ruleset", "version", name="uq_rule_version"),)


class RuleChange(Base):
    """One activation: which rulesets moved from which version to which, by whom, when."""

    __tablename__ = "rule_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    # {ruleset: [version before or null, version after or null]}
    entries: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A change undone by `oms rules rollback` names the change that undid it; the undoing change
    # names the one it reverts.
    rolled_back_by: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reverts: Mapped[int | None] = mapped_column(BigId, nullable=True)


class ActiveRule(Base):
    """The version of each ruleset every process decides with."""

    __tablename__ = "active_rules"
    ruleset: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("rule_versions.id"))
    change_id: Mapped[int] = mapped_column(ForeignKey("rule_changes.id"))


class Meta(Base):
    """Facts about the database itself, e.g. that the demo made it."""

    __tablename__ = "oms_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

"""Orders: the order and its lines, its history, and the decisions taken about it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, BigId

if TYPE_CHECKING:
    from .customers import Customer


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
    # The carrier's service chosen with it (orders/couriers.py).
    service: Mapped[str | None] = mapped_column(String(32), nullable=True)
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
    # A delivery date or time window the customer booked (UTC): it goes to the warehouse and the carrier,
    # and courier matching keeps to it.
    delivery_from: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    delivery_by: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # How the channel says it was paid ("cod": cash on delivery); a fact for the rules.
    payment_method: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # The merge group it ships in with other orders of its customer (orders/merging.py).
    merge_group_id: Mapped[int | None] = mapped_column(ForeignKey("merge_groups.id"), nullable=True)
    # The warehouse the order is being moved to while the first one stops picking it (orders/moves.py).
    move_to: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A warehouse that reported it cannot fill the order: its next routing sends it elsewhere (or holds it).
    avoid_warehouse: Mapped[str | None] = mapped_column(String(32), nullable=True)

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
        Index("ix_orders_merge_group", "merge_group_id"),
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
    # Cubic centimetres of one unit as ordered (a kit: its components'), for the parcel courier matching and
    # merging weigh; None: ordered before lines kept it, read from the catalogue (orders/shipments.py).
    volume_cm3: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The product as it was when ordered; later catalogue edits do not touch it.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mapped: Mapped[bool] = mapped_column(Boolean, default=True)
    # A kit's components as they were when ordered, [{"sku", "quantity"}] per kit: what is reserved, sent
    # and returned for the line (orders/kits.py). None: not a kit.
    components: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The promotions the channel says this line got, as it sent them: [{"code", "name", "amount"}] (minor
    # units); ``discount`` includes them. None: the channel named none.
    promotions: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    order: Mapped[Order] = relationship(back_populates="lines")
    __table_args__ = (
        UniqueConstraint("order_id", "line_no", name="uq_line_no"),
        CheckConstraint("quantity > 0", name="ck_line_quantity"),
        CheckConstraint("discount >= 0 AND discount <= goods", name="ck_line_discount"),
    )


class ChannelFields(Base):
    """What an order keeps of its channel's own words: written at intake only when the channel sent any of it,
    read where people look (order show, the API), and by the pipeline only while a rule reads the ``channel``
    facts (decisions/order_facts.py)."""

    __tablename__ = "order_channel_fields"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    order_type: Mapped[str] = mapped_column(String(32), default="")
    channel_status: Mapped[str] = mapped_column(String(64), default="")
    # The channel's fields with no place in the canonical order, as sent: {"tags": ..., "note_attributes": ...}
    extensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Per line number (as text): {"properties": [{"name", "value"}], "extensions": {...}}
    lines: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the channel says it paid the customer back, minor units (orders/updates.py).
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class OrderUpdate(Base):
    """A channel's changed word about an order it sent before (orders/updates.py): the order as the channel
    sends it now, and what the OMS made of each change (applied, refused with the reason, left to a person)."""

    __tablename__ = "order_updates"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payloads.id"), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    # The canonical order as the channel sends it now (CanonicalOrder.model_dump(mode="json")), and its hash.
    order: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")    # pending | done
    # [{"kind", "before", "after", "outcome"}]: one per change found.
    changes: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    applied_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    __table_args__ = (Index("ix_order_updates_status", "status", "id"),)


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


class OrderWait(Base):
    """What an order held at intake or routing waits for, when nothing but that keeps it: a channel SKU to be
    mapped (``sku``) or a catalogue SKU to come into stock (``stock``). ``ready``: it may be there now; the
    backorders stage looks at the order again (orders/backorders.py)."""

    __tablename__ = "order_waits"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    ready: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (
        Index("ix_order_waits_key", "kind", "key"),
        Index("ix_order_waits_ready", "ready", "order_id"),
    )


class MergeGroup(Base):
    """Paid orders of one customer to one address, routed to one warehouse, sent to it as one document and to
    the customer as one parcel (orders/merging.py). Each order keeps its own identity, lines and money."""

    __tablename__ = "merge_groups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The document number the warehouse and the carrier know the parcel by: its first order's number and
    # "-M" and the version, bumped when an order leaves a group already sent (a new document goes).
    number: Mapped[str] = mapped_column(String(40), unique=True)
    warehouse: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    address_key: Mapped[str] = mapped_column(String(64))     # sha256 of the normalised address
    status: Mapped[str] = mapped_column(String(16))          # open, closed, sent, dissolved
    version: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    # Until then orders may join; then its orders go on together.
    closes_at: Mapped[datetime] = mapped_column(DateTime)
    # What the merging rules allowed: limits of the whole group.
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    carrier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    service: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The parcel was registered with the carrier (once for the group).
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_merge_groups_open", "status", "customer_id"),)


class LateStep(Base):
    """An order that overstayed a step's limit (config ``late_steps``): alerted once per step."""

    __tablename__ = "late_steps"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(24), primary_key=True)     # the state it should have reached
    after: Mapped[str] = mapped_column(String(24))                      # counted from entering this state
    limit_minutes: Mapped[int] = mapped_column(Integer)
    warehouse: Mapped[str | None] = mapped_column(String(32), nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    raised_at: Mapped[datetime] = mapped_column(DateTime)
    # When the order reached the step after all (None: not yet).
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

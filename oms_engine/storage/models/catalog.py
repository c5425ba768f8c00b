"""Master data: products, warehouses, carriers and their services, suppliers, channel SKU mappings, freight
templates, and the
history of every change to them (oms_engine/masterdata/).

Each master record is deactivated, never deleted (orders and the ledger refer
to it), and carries a ``version`` bumped by every change: a warehouse's WMS is
sent an item or supplier again only when the version it has is older
(:class:`MasterSync`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId

_EMPTY_OBJECT = text("'{}'")
_EMPTY_LIST = text("'[]'")


class Product(Base):
    __tablename__ = "products"
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    merchant: Mapped[str] = mapped_column(String(64))
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    barcode: Mapped[str | None] = mapped_column(String(64), nullable=True)
    length_mm: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    width_mm: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    height_mm: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    supplier: Mapped[str | None] = mapped_column(String(32), nullable=True)   # the usual supplier's code
    # A kit's bill of materials, [{"sku": ..., "quantity": ...}]: sold as one line, reserved, shipped and
    # returned as these components (orders/kits.py). Empty: not a kit.
    components: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=_EMPTY_LIST)
    # Kept in lots with an expiry (stock_lots): reservations take the earliest-expiring lot that meets the
    # channel's minimum remaining shelf life (stock/lots.py).
    lot_tracked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
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
    # Street address and contact: district, line1, postcode, phone...
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=_EMPTY_OBJECT)
    # The regions (provinces, states) it ships to; empty: anywhere.
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=_EMPTY_LIST)
    # The carriers that collect from it (codes); empty: every active carrier.
    carriers: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=_EMPTY_LIST)
    # The WMS connector its documents go through (None: config.yaml's wms_connector), and that
    # connector's settings for this warehouse (endpoint, the environment variable holding its secret...).
    wms_connector: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wms_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=_EMPTY_OBJECT)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Carrier(Base):
    __tablename__ = "carriers"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    connector: Mapped[str | None] = mapped_column(String(64), nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class FreightTemplate(Base):
    """What the OMS charges for delivery when a channel sends no freight, and checks a channel's figure
    against (oms_engine/freight/): zones of regions, each a price for the first weight and for every
    further step of weight, free above an amount of goods. Rules (rules/freight.yaml) choose the template."""

    __tablename__ = "freight_templates"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    # [{regions, first_weight_g, first_price, extra_weight_g, extra_price, free_above}], amounts in minor units
    zones: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    free_above: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CarrierService(Base):
    """A carrier's service (standard, express, cold chain...) and what it takes: attributes such as
    ``cold_chain``, ``cod``, ``max_weight_g``, ``regions``."""

    __tablename__ = "carrier_services"
    carrier: Mapped[str] = mapped_column(ForeignKey("carriers.code"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Supplier(Base):
    __tablename__ = "suppliers"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SkuMapping(Base):
    """A channel's SKU and the catalogue SKU it sells."""

    __tablename__ = "sku_mappings"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class MasterChange(Base):
    """One change to a master record: what, from what to what, by whom, from which file row or request."""

    __tablename__ = "master_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(16))      # product, warehouse, carrier, service, ...
    key: Mapped[str] = mapped_column(String(200))        # the record's key, parts joined by '/'
    action: Mapped[str] = mapped_column(String(16))      # create, update, deactivate, reactivate
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)   # {field: [before, after]}
    version: Mapped[int] = mapped_column(Integer)        # the record's version after the change
    actor: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_master_changes_key", "entity", "key", "id"),)


class MasterSync(Base):
    """Which version of an item or supplier each warehouse's WMS was sent (queued in the outbox)."""

    __tablename__ = "master_sync"
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)    # item, supplier
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)

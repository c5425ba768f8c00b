"""Tables. Money columns are integer minor units; the currency is on the order.

Alembic migrations in ``oms_engine/storage/migrations`` create these; the
models are the source the migrations were written from, and a test
(tests/storage/test_migrations.py) fails when the two disagree.

One module per capability (catalog, stock, customers, orders, payments, invoices, aftersales, intake, messaging,
fulfilment, rules, system); every table is importable from here.
"""

from __future__ import annotations

from .aftersales import AftersalesCase, AftersalesHistory
from .api import ApiToken, AuditEntry
from .base import Base, BigId
from .catalog import (
    Carrier,
    CarrierService,
    FreightTemplate,
    MasterChange,
    MasterSync,
    Product,
    SkuMapping,
    Supplier,
    Warehouse,
)
from .customers import Customer, CustomerChange
from .fulfilment import AddressRequest, Exchange, StockDocument, StockDocumentLine, TrackingEvent
from .idempotency import IdempotentRequest
from .intake import ChannelCursor, ChannelStock, RawPayload, StockPushCursor, WebhookDelivery
from .invoices import Invoice
from .messaging import InboxMessage, OutboxMessage, PluginState, ScheduledTask
from .orders import (
    ChannelFields,
    DecisionRecord,
    History,
    LateStep,
    MergeGroup,
    Order,
    OrderLine,
    OrderUpdate,
    OrderWait,
)
from .payments import Payment, PaymentEvent, WalletAccount, WalletMovement
from .rules import ActiveRule, RuleChange, RuleVersion
from .stock import DamagedStock, Reservation, Stock, StockClosing, StockLot, StockMovement
from .system import Incident, Meta, NumberBlock

__all__ = [
    "ActiveRule",
    "AddressRequest",
    "AftersalesCase",
    "AftersalesHistory",
    "ApiToken",
    "AuditEntry",
    "Base",
    "BigId",
    "Carrier",
    "CarrierService",
    "ChannelCursor",
    "ChannelFields",
    "ChannelStock",
    "Customer",
    "CustomerChange",
    "DamagedStock",
    "DecisionRecord",
    "Exchange",
    "FreightTemplate",
    "History",
    "IdempotentRequest",
    "InboxMessage",
    "Incident",
    "Invoice",
    "LateStep",
    "MasterChange",
    "MasterSync",
    "MergeGroup",
    "Meta",
    "NumberBlock",
    "Order",
    "OrderLine",
    "OrderUpdate",
    "OrderWait",
    "OutboxMessage",
    "Payment",
    "PaymentEvent",
    "PluginState",
    "Product",
    "RawPayload",
    "Reservation",
    "RuleChange",
    "RuleVersion",
    "ScheduledTask",
    "SkuMapping",
    "Stock",
    "StockClosing",
    "StockDocument",
    "StockDocumentLine",
    "StockLot",
    "StockMovement",
    "StockPushCursor",
    "Supplier",
    "TrackingEvent",
    "WalletAccount",
    "WalletMovement",
    "Warehouse",
    "WebhookDelivery",
]

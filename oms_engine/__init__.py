"""oms-engine: an order management system for retail e-commerce, built as a rule-engine plugin framework.

This module is the public API for plugin authors: everything a plugin may
import, with a stability promise (docs/plugins.md, "Stability"). Anything
not exported here is internal and may change in any release.

    from oms_engine import hookimpl, OrderView, StockView, RoutePlan
"""

from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import OmsError
from .money import MoneyError, apportion, exponent, format_minor, to_minor
from .orders.canonical import (
    CanonicalAddress,
    CanonicalCustomer,
    CanonicalLine,
    CanonicalOrder,
    CanonicalPayment,
    LinePromotion,
    LineProperty,
    ParsedPayload,
)
from .orders.extensions import NOT_KEPT, fit_extensions
from .plugin.contracts import (
    CallbackEvent,
    ChannelAdapter,
    ChannelReport,
    Connector,
    EInvoiceFormat,
    FactProvider,
    MessageRefused,
    Notification,
    OutboundMessage,
    ParamsValidator,
    PluginContext,
    PulledPage,
    Puller,
    Reporter,
    RoutingStrategy,
    RuleAction,
    Sender,
    SplitStrategy,
    Template,
)
from .plugin.faults import PluginFault
from .plugin.hookspecs import hookimpl
from .plugin.manager import PluginError
from .plugin.params import (
    Validator,
    check_bool,
    check_keys,
    check_positive_int,
    check_str,
    check_str_list,
    no_params,
)
from .plugin.views import (
    CAPABILITY_ATTRIBUTES,
    Address,
    LineView,
    OrderStock,
    OrderView,
    Quote,
    RoutePlan,
    ServiceView,
    Shipment,
    SplitGroup,
    SplitPlan,
    StockView,
    WarehouseView,
    units_by_sku,
)
from .plugin.wire import SettingsError, callback_body, secret_from
from .stock.cover import plan_by_stock
from .strict_json import JsonRejected
from .strict_json import loads as read_json

if TYPE_CHECKING:
    from .engine import OMS
    from .plugin.registry import RegistryError

__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    # Imported on first use: the engine pulls in the whole core, which plugins importing
    # this module for a view or hookimpl should not pay for (nor risk an import cycle with).
    if name == "OMS":
        from .engine import OMS
        return OMS
    if name == "RegistryError":
        from .plugin.registry import RegistryError
        return RegistryError
    raise AttributeError(f"module 'oms_engine' has no attribute {name!r}")


__all__ = [
    "CAPABILITY_ATTRIBUTES",
    "NOT_KEPT",
    "OMS",
    "Address",
    "CallbackEvent",
    "CanonicalAddress",
    "CanonicalCustomer",
    "CanonicalLine",
    "CanonicalOrder",
    "CanonicalPayment",
    "ChannelAdapter",
    "ChannelReport",
    "Config",
    "Connector",
    "EInvoiceFormat",
    "FactProvider",
    "JsonRejected",
    "LinePromotion",
    "LineProperty",
    "LineView",
    "MessageRefused",
    "MoneyError",
    "Notification",
    "OmsError",
    "OrderStock",
    "OrderView",
    "OutboundMessage",
    "ParamsValidator",
    "ParsedPayload",
    "PluginContext",
    "PluginError",
    "PluginFault",
    "PulledPage",
    "Puller",
    "Quote",
    "RegistryError",
    "Reporter",
    "RoutePlan",
    "RoutingStrategy",
    "RuleAction",
    "Sender",
    "ServiceView",
    "SettingsError",
    "Shipment",
    "SplitGroup",
    "SplitPlan",
    "SplitStrategy",
    "StockView",
    "Template",
    "Validator",
    "WarehouseView",
    "__version__",
    "apportion",
    "callback_body",
    "check_bool",
    "check_keys",
    "check_positive_int",
    "check_str",
    "check_str_list",
    "exponent",
    "fit_extensions",
    "format_minor",
    "hookimpl",
    "no_params",
    "plan_by_stock",
    "read_json",
    "secret_from",
    "to_minor",
    "units_by_sku",
]

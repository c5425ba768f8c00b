"""Every hook of the project "oms", in one place, with the markers.

Registry hooks (``oms_register_*``) are collect-all: every plugin's
implementation runs, and each hands its components to the ``register``
callback it is given, so the core owns names, validation and duplicates.
``firstresult`` hooks pick one answer: the first implementation that returns
something other than None wins, and the core has a fallback when none does.
Built-in plugins are registered ``trylast``, so a third-party plugin's
implementation runs before theirs and overrides a component of the same name.

An implementation may declare any subset of a hook's parameters, by name: a
plugin that needs no settings leaves ``config`` out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ..config import Config
    from .contracts import (
        RegisterChannel,
        RegisterConnector,
        RegisterEInvoiceFormat,
        RegisterFactProvider,
        RegisterRoutingStrategy,
        RegisterRuleAction,
        RegisterSender,
        RegisterSplitStrategy,
        RegisterTemplate,
    )

PROJECT = "oms"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def oms_register_channels(register: RegisterChannel, config: Config) -> None:
    """Register channel adapters (:class:`~oms_engine.ChannelAdapter`). Collect-all.

    :param register: ``register(adapter)``; the adapter's ``name`` is what
        ``oms ingest --channel NAME`` and ``/api/webhooks/NAME`` use.
    :param config: the loaded configuration; ``config.plugin_settings[name]``
        holds a plugin's own settings.
    """


@hookspec
def oms_register_split_strategies(register: RegisterSplitStrategy, config: Config) -> None:
    """Register split strategies. Collect-all.

    A strategy divides an order into groups of lines (child orders). Rules in
    ``rules/split.yaml`` pick one with ``split: {strategy: NAME, ...params}``.

    :param register: ``register(name, strategy, validate=None)``;
        ``strategy(order, stock, params) -> SplitPlan``; ``validate(params)``
        raises ValueError for bad rule parameters, reported with file and line.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_routing_strategies(register: RegisterRoutingStrategy, config: Config) -> None:
    """Register routing strategies. Collect-all.

    A strategy chooses a warehouse for an order or answers None ("this rule
    cannot decide"). Rules in ``rules/routing.yaml`` try them in priority order
    with ``route: {strategy: NAME, ...params}``.

    :param register: ``register(name, strategy, validate=None)``;
        ``strategy(order, stock, params) -> RoutePlan | None``.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_fact_providers(register: RegisterFactProvider, config: Config) -> None:
    """Register :class:`~oms_engine.FactProvider` objects. Collect-all.

    Their declared fields become available to every ruleset's ``when:``.

    :param register: ``register(provider)``.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_connectors(register: RegisterConnector, config: Config) -> None:
    """Register WMS, carrier, payment and tax platform connectors (:class:`~oms_engine.Connector`). Collect-all.

    ``wms_connector``, ``carrier_connector``, ``payment_connector`` and ``tax_connector`` in config.yaml name
    the ones in use.

    :param register: ``register(connector)``.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_senders(register: RegisterSender, config: Config) -> None:
    """Register notification senders (:class:`~oms_engine.Sender`), one per medium in use. Collect-all.

    For a medium, the first sender registered wins; built-ins register last.

    :param register: ``register(sender)``.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_templates(register: RegisterTemplate, config: Config) -> None:
    """Register message templates (:class:`~oms_engine.Template`). Collect-all.

    Notification rules name them with ``notify: {template: NAME}``. The first
    registration of a name wins, so a plugin's template replaces a built-in one.

    :param register: ``register(template)``.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_einvoice_formats(register: RegisterEInvoiceFormat, config: Config) -> None:
    """Register e-invoice formats (:class:`~oms_engine.EInvoiceFormat`). Collect-all.

    ``einvoice_format`` in config.yaml names the one invoices are rendered in unless asked for another.

    :param register: ``register(format)``.
    :param config: the loaded configuration.
    """


@hookspec
def oms_register_rule_actions(register: RegisterRuleAction, config: Config) -> None:
    """Add actions that YAML ``then:`` lists may use. Collect-all.

    :param register: ``register(point, name, handler, validate=None, description="")``.
        ``point`` is the decision point ("blocking", "split", "routing",
        "notifications"); ``handler(order, params)`` runs after the decision
        that fired it is stored, in the same transaction; ``validate(params)``
        raises ValueError for bad parameters, reported with file and line.
    :param config: the loaded configuration.
    """


@hookspec(firstresult=True)
def oms_resolve_sku(channel: str, sku: str, config: Config) -> str | None:
    """Map a channel's SKU to the catalogue's SKU. First result wins.

    When no plugin answers (every implementation returns None), the core uses
    the SKU as it is; an SKU that is then not in the catalogue holds the order
    with the reason, and releasing it asks again.

    :param channel: the channel adapter's name, e.g. "json".
    :param sku: the SKU as the channel sent it.
    :param config: the loaded configuration (``config.plugin_settings[name]``: the plugin's settings).
    """


@hookspec
def oms_after_transition(order_number: str, from_state: str, to_state: str, event: str,
                         actor: str, cause: str) -> None:
    """Observe a transition after it is written, in its transaction. Collect-all.

    An observer that raises does not undo the transition: the error is
    recorded as an incident on the order and the pipeline goes on.

    :param order_number: the order's number (a child's is "PARENT-n").
    :param from_state: the state before, e.g. "paid".
    :param to_state: the state after.
    :param event: the event that moved it, e.g. "route".
    :param actor: who or what caused it: "rules:routing", "api:support:ab12cd", "wms:sim_wms"...
    :param cause: why, in words.
    """

"""Every hook of the project "oms", in one place.

Every registry hook also receives ``config`` (the loaded
:class:`~oms_engine.config.Config`) so a plugin can read its settings and
resolve paths without global state.

Registry hooks (``oms_register_*``) are collect-all: each plugin calls the
``register`` callback it is given, and the core owns names, validation and
duplicates. ``firstresult`` hooks pick one answer; the core has a fallback
when no plugin answers. Built-in plugins are registered ``trylast`` so a
third-party plugin can override them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "oms"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def oms_register_channels(register: Callable[..., None], config: Any) -> None:
    """Register channel adapters (:class:`~oms_engine.contracts.ChannelAdapter`).

    Collect-all. ``register(adapter)``; the adapter's ``name`` is what
    ``oms ingest --channel NAME`` and webhooks use.
    """


@hookspec
def oms_register_split_strategies(register: Callable[..., None], config: Any) -> None:
    """Register split strategies: ``register(name, strategy, validate=None)``.

    ``validate(params)`` raises ValueError for bad rule parameters; the rule
    loader reports it with file and line.

    Collect-all. A strategy divides an order into groups of lines (child
    orders). Rules in ``rules/split.yaml`` pick one with ``split: {strategy: NAME}``.
    """


@hookspec
def oms_register_routing_strategies(register: Callable[..., None], config: Any) -> None:
    """Register routing strategies: ``register(name, strategy, validate=None)``.

    Collect-all. A strategy chooses a warehouse for an order or answers None.
    Rules in ``rules/routing.yaml`` try them in priority order with
    ``route: {strategy: NAME, ...params}``.
    """


@hookspec
def oms_register_fact_providers(register: Callable[..., None], config: Any) -> None:
    """Register :class:`~oms_engine.contracts.FactProvider` objects.

    Collect-all. Their fields become available to every ruleset's ``when:``.
    """


@hookspec
def oms_register_connectors(register: Callable[..., None], config: Any) -> None:
    """Register WMS and carrier connectors (:class:`~oms_engine.contracts.Connector`).

    Collect-all. config.yaml names the connector used for each kind.
    """


@hookspec
def oms_register_senders(register: Callable[..., None], config: Any) -> None:
    """Register notification senders (:class:`~oms_engine.contracts.Sender`), one per medium in use.

    Collect-all. A later registration for the same medium replaces an earlier
    one only when the earlier came from a ``trylast`` (built-in) plugin.
    """


@hookspec
def oms_register_templates(register: Callable[..., None], config: Any) -> None:
    """Register message templates (:class:`~oms_engine.contracts.Template`).

    Collect-all. Notification rules name them with ``notify: {template: NAME}``.
    """


@hookspec(firstresult=True)
def oms_resolve_sku(channel: str, sku: str) -> str | None:
    """Map a channel's SKU to the catalogue's SKU.

    First result wins. When no plugin answers, the core uses the SKU as it is;
    an SKU that is then not in the catalogue holds the order with the reason.
    """


@hookspec
def oms_after_transition(order_number: str, from_state: str, to_state: str, event: str,
                         actor: str, cause: str) -> None:
    """Observe a transition after it is written (same transaction).

    Collect-all. Must not raise for business reasons: a raised exception rolls
    back the batch it belongs to.
    """


@hookspec
def oms_register_rule_actions(register: Callable[..., None], config: Any) -> None:
    """Add actions that YAML ``then:`` lists may use.

    Collect-all. ``register(point, name, handler, validate=None, description="")``:
    ``point`` is the decision point ("blocking", "split", "routing",
    "notifications"); ``handler(order_view, params)`` runs after the decision
    is stored; ``validate(params)`` raises ValueError for bad parameters, which
    the rule loader reports with the file and line.
    """

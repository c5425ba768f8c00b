"""Which adapter reads a channel account's payloads, and what the account lends it.

An account is a shop on a channel (config ``channel_accounts``); its name is the
``channel`` its orders carry, so two Shopify shops keep their orders (unique by
channel and external id), SKU mappings and webhook secrets apart. Every adapter
is also an account of its own name (``json``, ``shopify``), with no credentials:
that is how a deployment with one shop per channel works without configuring any.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import ChannelAccount, Config
from ..errors import OmsError
from ..plugin.contracts import ChannelAdapter
from ..plugin.registry import PluginRegistry, RegistryError

WEBHOOK_SECRET_PREFIX = "OMS_WEBHOOK_SECRET_"


class AccountError(OmsError):
    pass


@dataclass(frozen=True)
class Account:
    """What an adapter is lent of an account when it pulls: where the channel's API is and how to sign in."""

    name: str
    adapter: str
    url: str = ""
    token: str = ""
    page_size: int = 50
    timeout: float = 10.0
    settings: Mapping[str, Any] = field(default_factory=dict)
    pull_every_seconds: float = 0.0


def secret_env(name: str, account: ChannelAccount | None = None) -> str:
    """The environment variable holding the webhook secret of account ``name``."""
    if account is not None and account.secret_env:
        return account.secret_env
    return WEBHOOK_SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


class Accounts:
    def __init__(self, config: Config, plugins: PluginRegistry) -> None:
        self.config, self.plugins = config, plugins
        for name, acc in config.channel_accounts.items():
            if acc.adapter not in plugins.channels:
                raise AccountError(f"channel account '{name}': no channel adapter '{acc.adapter}' (known: "
                                   f"{', '.join(plugins.channels.names()) or 'none'})")
            if name in plugins.channels and name != acc.adapter:
                raise AccountError(f"channel account '{name}' reads {acc.adapter} payloads, but '{name}' is the name "
                                   "of another channel adapter: name the account otherwise")

    def names(self) -> list[str]:
        """Every account: the configured ones, and each adapter's own."""
        return sorted({*self.config.channel_accounts, *self.plugins.channels.names()})

    def adapter_name(self, name: str) -> str:
        acc = self.config.channel_accounts.get(name)
        if acc is not None:
            return acc.adapter
        if name in self.plugins.channels:
            return name
        raise RegistryError(f"unknown channel '{name}' (known: {', '.join(self.names())})")

    def adapter(self, name: str) -> ChannelAdapter:
        return self.plugins.channels.get(self.adapter_name(name))

    def webhook_secret(self, name: str) -> str:
        return os.environ.get(secret_env(name, self.config.channel_accounts.get(name)), "")

    def account(self, name: str) -> Account:
        """Account ``name`` as its adapter is lent it; AccountError when its credential is not set."""
        adapter = self.adapter_name(name)
        acc = self.config.channel_accounts.get(name)
        if acc is None:
            return Account(name, adapter)
        token = ""
        if acc.token_env:
            token = os.environ.get(acc.token_env, "")
            if not token:
                raise AccountError(f"channel account '{name}': its API credential is read from the environment "
                                   f"variable {acc.token_env}, which is not set")
        return Account(name, adapter, acc.url.rstrip("/"), token, acc.page_size, acc.timeout, dict(acc.settings),
                       acc.pull_every_seconds)

    def pulled(self) -> list[Account]:
        """The accounts the worker pulls on a schedule."""
        return [self.account(n) for n, acc in sorted(self.config.channel_accounts.items())
                if acc.pull_every_seconds > 0]

"""config.yaml: database, plugins, timeouts, connectors, where API tokens come from.

Precedence: built-in defaults < config.yaml < environment (``OMS_DATABASE_URL``)
< command-line flags. Relative paths are resolved against the config file's
directory so that the project runs from any working directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import OmsError
from .rules.yaml_source import YamlProblem, load_plain


class ConfigError(OmsError):
    pass


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_minutes: int = Field(30, gt=0)
    confirm_days: int = Field(15, gt=0)
    after_sales_days: int = Field(10, ge=0)
    # How long a binned order can be restored before it is cancelled for good (refunded, its channel told).
    recycle_bin_hours: int = Field(168, gt=0)
    outbox_retry_seconds: int = Field(60, gt=0)


class LateStepLimit(BaseModel):
    """Reach ``step`` within ``hours`` (or ``minutes``) of entering ``after`` (orders/late_steps.py)."""

    model_config = ConfigDict(extra="forbid")
    after: str
    step: str
    hours: float | None = Field(None, gt=0)
    minutes: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_duration(self) -> LateStepLimit:
        if (self.hours is None) == (self.minutes is None):
            raise ValueError(f"after {self.after}, step {self.step}: give either hours or minutes")
        if self.limit_minutes < 1:
            raise ValueError(f"after {self.after}, step {self.step}: the limit must be at least a minute")
        return self

    @property
    def limit_minutes(self) -> int:
        # Whole minutes: the late_steps table stores the limit an order was alerted against as an integer.
        return round(self.minutes if self.minutes is not None else (self.hours or 0) * 60)


class QuietHours(BaseModel):
    """When customers are not disturbed (docs/rules.md, "Quiet hours"): a message of these media queued between
    ``start`` and ``end`` (local time of ``timezone``) waits until ``end``."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field("21:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field("08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    timezone: str = "Asia/Shanghai"
    media: list[str] = ["sms"]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None
        return name


class Operations(BaseModel):
    """Where alerts for operations (a late step) go: through the outbox, like a customer notification."""

    model_config = ConfigDict(extra="forbid")
    medium: str = "email"
    recipient: str = ""
    template: str = "late_step"


class Events(BaseModel):
    """The event stream for downstream systems (docs/events.md): every order transition, stock movement and money
    event, published through the outbox by the connector of kind ``events`` named here ("" : none is written)."""

    model_config = ConfigDict(extra="forbid")
    connector: str = ""
    # This deployment's name in every event and its id, so a consumer of several OMSs tells their events apart;
    # never a ':', which separates the parts of an id.
    source: str = Field("oms", pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$")


class ChannelAccount(BaseModel):
    """A shop on a channel (docs/channels.md): the adapter that reads its payloads, where its API is, its
    credentials (named by environment variable, never written here) and how often the worker pulls it. The
    account's name is the channel its orders carry, so two shops on one channel keep their orders, SKU
    mappings and webhook secrets apart."""

    model_config = ConfigDict(extra="forbid")
    adapter: str = Field(min_length=1)
    # The channel's API base address, for pulling (https://shop-eu.myshopify.com).
    url: str = ""
    # The environment variable holding the API credential (an access token).
    token_env: str = ""
    # The environment variable holding the webhook signing secret; "" : OMS_WEBHOOK_SECRET_<ACCOUNT>.
    secret_env: str = ""
    # Seconds between the worker's pulls of this account; 0: the worker does not pull it.
    pull_every_seconds: float = Field(0, ge=0)
    page_size: int = Field(50, gt=0, le=250)
    timeout: float = Field(10, gt=0, le=600)
    # What only its adapter reads (an API version, marketplace ids).
    settings: dict[str, Any] = {}
    # Tell the channel of its orders' shipments, tracking, cancellations and refunds (channels/reports.py):
    # when the account has a url and its adapter can. false: the shop is kept up to date some other way.
    report_status: bool = True
    # The channel took the customer's money (Shopify Payments, Amazon): refunds are made there, through its API,
    # not by the payment connector. false: the OMS's payment provider took it, and pays it back.
    refund_at_channel: bool = True
    # Push what the channel may sell of each SKU (channels/stock_push.py): "mapped", the SKUs of its SKU
    # mappings; "all", every active product under its own SKU; "" (the default): no stock is pushed.
    push_stock: Literal["", "mapped", "all"] = ""
    # Seconds between the worker's looks at the stock ledger for this account's changes (each push carries
    # every change since the last one).
    push_stock_every_seconds: float = Field(60, gt=0)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database_url: str = "sqlite:///var/oms.db"
    rules_dir: str = "rules"
    templates_dir: str = "templates"
    outbox_dir: str = "var/outbox"
    plugins: list[str] = []
    # Settings per plugin, by plugin name: read by the plugin itself.
    plugin_settings: dict[str, dict[str, Any]] = {}
    # Which sender delivers each medium, by sender name ({email: smtp}); a medium not named here goes to the
    # first sender registered for it (docs/senders.md). Checked against the registered senders at start.
    senders: dict[str, str] = {}
    # Hours customers are not disturbed in (SMS by default); none: messages go at any hour.
    quiet_hours: QuietHours | None = None
    wms_connector: str = "sim_wms"
    carrier_connector: str = "sim_carrier"
    # Where refunds go (payments/refunds.py); "" keeps them owed, to be paid back by hand.
    payment_connector: str = "sim_payment"
    # Where invoices and credit notes are submitted, as e-invoices (invoices/submission.py); "" submits none.
    tax_connector: str = "sim_tax"
    # The e-invoice format invoices are rendered in for the tax platform unless another is asked for.
    einvoice_format: str = "oms-einvoice/1"
    batch_size: int = Field(500, gt=0, le=10_000)
    shard_count: int = Field(64, gt=0, le=1024)
    # A secret that keys the order-number permutation; change it per deployment.
    number_secret: str = "oms-engine"
    api_tokens_env: str = "OMS_API_TOKENS"
    # The environment variable holding the key of the customers' tracking links (orders/tracking_page.py); unset,
    # a random key is made once and kept in the database.
    tracking_secret_env: str = "OMS_TRACKING_SECRET"
    # Where customers reach `oms serve` (https://shop.example/oms), for the tracking links the OMS hands out;
    # "" gives links relative to the server.
    public_url: str = ""
    timeouts: Timeouts = Timeouts()
    # Limits per step of fulfilment: an order that overstays one is alerted once (orders/late_steps.py).
    late_steps: list[LateStepLimit] = []
    operations: Operations = Field(default_factory=Operations, validate_default=True)
    # Days of shelf life a lot-tracked product must have left when it is sold, per channel ("default": any
    # other channel): routing takes the earliest-expiring lot that has them (stock/lots.py).
    min_shelf_life_days: dict[str, Annotated[int, Field(ge=0, le=3650)]] = {}
    # Shops on channels, by the name their orders carry (channels/accounts.py); an adapter with no account of
    # its own is an account of its own name.
    channel_accounts: dict[str, ChannelAccount] = {}
    # Events for downstream systems through a broker or a webhook; none unless a connector is named.
    events: Events = Events()
    # The channels' extension fields the rules may read, as channel.extensions.<key> (decisions/order_facts.py).
    channel_facts: list[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")]] = []
    base_dir: str = "."

    @field_validator("late_steps")
    @classmethod
    def _late_steps_fit(cls, limits: list[LateStepLimit]) -> list[LateStepLimit]:
        # Imported here: the state machine, which that module reads, imports this one.
        from .orders.late_steps import LateLimits
        LateLimits.parse(limits)
        return limits

    @field_validator("channel_accounts")
    @classmethod
    def _account_names(cls, accounts: dict[str, ChannelAccount]) -> dict[str, ChannelAccount]:
        for name in accounts:
            # The name is stored as each order's channel (32 characters) and read in URLs and variable names.
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
                raise ValueError(f"channel account {name!r}: a name is 1 to 32 of a-z, 0-9, '_' and '-', "
                                 "starting with a letter or digit")
        return accounts

    @field_validator("senders")
    @classmethod
    def _sender_names(cls, senders: dict[str, str]) -> dict[str, str]:
        for medium, name in senders.items():
            # The medium is matched against each notification's target (an outbox column of 64 characters).
            if not medium or medium != medium.strip() or len(medium) > 64:
                raise ValueError(f"medium {medium!r}: give the medium as its templates name it (sms, email...)")
            if not name.strip():
                raise ValueError(f"medium {medium!r}: name the sender that delivers it (e.g. smtp)")
        return senders

    @field_validator("operations")
    @classmethod
    def _someone_to_alert(cls, operations: Operations, info: ValidationInfo) -> Operations:
        if info.data.get("late_steps") and not operations.recipient.strip():
            raise ValueError("late_steps are alerted to operations: set operations.recipient (an e-mail address)")
        return operations

    def with_plugin_settings(self, **per_plugin: dict[str, Any]) -> Config:
        """A copy with these settings laid over each named plugin's own."""
        merged = {**self.plugin_settings}
        for name, settings in per_plugin.items():
            merged[name] = {**merged.get(name, {}), **settings}
        return self.model_copy(update={"plugin_settings": merged})

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def resolved_database_url(self) -> str:
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix):]).resolve())
        return url


def load_config(path: str | os.PathLike[str] | None = None, *, database_url: str | None = None,
                **overrides: Any) -> Config:
    """Read config.yaml (if present), then apply the environment and overrides."""
    cfg_path = Path(path) if path else Path(os.environ.get("OMS_CONFIG", "config.yaml"))
    data: dict[str, Any] = {}
    if cfg_path.exists():
        try:
            # Plain data only: anchors and aliases (a few hundred bytes can expand to gigabytes),
            # duplicate keys and tags are refused with the line.
            loaded = load_plain(cfg_path.read_text(encoding="utf-8"), filename=str(cfg_path))
        except YamlProblem as exc:
            raise ConfigError(str(exc)) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{cfg_path}: the top level must be a mapping")
        data = loaded or {}
        data.setdefault("base_dir", str(cfg_path.resolve().parent))
    elif path:
        raise ConfigError(f"config file {cfg_path} not found")
    env_url = os.environ.get("OMS_DATABASE_URL")
    if env_url:
        data["database_url"] = env_url
    if database_url:
        data["database_url"] = database_url
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Config(**data)
    except ValidationError as exc:
        lines = [f"{cfg_path}: invalid configuration"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None

"""Notification senders over HTTP: an SMS gateway (``sms_http``), an app-message gateway (``app_http``) and an
outbound webhook (``webhook_http``). The wire is in docs/senders.md.

Each notification is one ``POST`` of JSON to the url in the sender's settings, signed as the OMS signs its other
outbound calls (plugins/connectors/wms_http.py, :func:`post_signed`: ``X-OMS-Timestamp`` and ``X-OMS-Signature``,
``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` with the secret in the environment variable
``secret_env`` names), and carrying ``Idempotency-Key: <key_prefix>-msg-<outbox id>`` (also the body's ``id``):
the same on every attempt of one message, so a gateway that honours it delivers a message once however often a
failed or interrupted attempt makes the outbox send it again.

What the gateway answers decides what the outbox does with the message:

- 2xx: delivered (``app_http``: unless its ``errcode`` says otherwise), and so is a 409 whose body says
  ``{"status": "duplicate"}`` (it delivered this key before);
- 401 (the signature refused: a secret out of step), 408, 425, 429, any other 409, 3xx (redirects are not
  followed), 5xx, no complete answer within ``timeout``: raised, the outbox tries again later;
- any other 4xx: refused for good, :class:`MessageRefused` with the gateway's reason: dead at once. So is a
  recipient that cannot be one (an SMS to something that is no phone number), before any request.

One client (one kept-alive connection) serves a batch; ``flush()`` closes it at the batch's end.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from oms_engine import MessageRefused, Notification, SettingsError, check_keys, hookimpl, read_json, secret_from
from oms_plugins.connectors.wms_http import (
    Answer,
    Owner,
    Settings,
    WireError,
    http_client,
    no_record,
    post_signed,
    reason_of,
)

CONTENT_TYPE = "application/json"
DEFAULT_TIMEOUT = 10.0
SETTINGS = ("url", "secret_env", "timeout", "key_prefix")
# 4xx answers that say "not now" rather than "never": a timeout, too early, too many, a conflict with another
# attempt of the same key still in progress; and 401, a signature the gateway does not take: the OMS's
# configuration (a secret rotated on one side only), not the message, so the message waits for it to be fixed.
RETRIED = frozenset({401, 408, 409, 425, 429})


class GatewayError(WireError):
    """A message the gateway did not take this time: the outbox tries it again."""


@dataclass(frozen=True)
class GatewaySettings:
    url: str
    secret_env: str
    timeout: float
    key_prefix: str
    extra: Mapping[str, Any]      # what only one sender reads (app_http's template_ids)


class HttpSender:
    """What the three senders share: settings, the signed POST, judging the answer. A subclass brings its body."""

    name = ""
    medium = ""
    owner = Owner("gateway", "plugin_settings", "the gateway", "https://gateway.example.com/api")
    extra_settings: tuple[str, ...] = ()

    def __init__(self, settings: Mapping[str, Any] | None, *, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        # settings None: not configured and not chosen; a message sent through it fails (and is retried)
        # saying so. clock: wall-clock seconds, for signing. transport: httpx's, for tests.
        self.settings = self.read_settings(settings) if settings is not None else None
        self.clock, self.transport = clock, transport
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    # -- the body (subclasses) ---------------------------------------------------------------------------------
    def body(self, n: Notification, cfg: GatewaySettings) -> dict[str, Any]:
        """The JSON object to send; MessageRefused for a recipient this gateway cannot reach."""
        raise NotImplementedError

    def check_delivered(self, answer: Mapping[str, Any] | None, got: Answer, what: str) -> None:
        """A 2xx answer: raise if its body says the message was not delivered after all."""

    # -- the contract ----------------------------------------------------------------------------------------
    def send(self, notification: Notification) -> None:
        cfg = self.settings
        section = f"plugin_settings.{self.name}"
        if cfg is None:
            raise SettingsError(f"{section} is missing: the sender '{self.name}' needs url and secret_env "
                                "(docs/senders.md)")
        key = f"{cfg.key_prefix}-msg-{notification.id}"
        body = _dump({"id": key, **self.body(notification, cfg)})
        try:
            secret = secret_from({"secret_env": cfg.secret_env})
        except SettingsError as exc:
            raise SettingsError(f"{section}: {exc}") from None
        wire = Settings(cfg.url, cfg.url, secret, cfg.timeout, cfg.key_prefix, self.owner)
        what = f"{self.name}: message {notification.id} (key {key}) to {cfg.url}"
        with self._lock:
            if self._client is None:
                self._client = http_client(self.name, wire, self.transport)
            try:
                got = post_signed(self._client, wire, cfg.url, body, content_type=CONTENT_TYPE,
                                  correlation=str(notification.id), key=key, note="", what=what, clock=self.clock,
                                  record=no_record, error=GatewayError)
            except GatewayError:
                self._close()     # a connection that timed out mid-answer is not one to send the next on
                raise
        self.judge(got, what)

    def flush(self) -> None:
        """End the batch: every message is already sent; close the connection."""
        with self._lock:
            self._close()

    def judge(self, got: Answer, what: str) -> None:
        answer = _object_or_none(got.body)
        if 200 <= got.status < 300:
            self.check_delivered(answer, got, what)
            return
        if got.status == 409 and answer is not None and answer.get("status") == "duplicate":
            return
        reason = reason_of(answer) or (f"body starts {got.body[:200]!r}" if got.body.strip() else "no body")
        if 400 <= got.status < 500 and got.status not in RETRIED:
            raise MessageRefused(f"{what}: {self.owner.system} refused it ({got.label}): {reason}")
        raise GatewayError(f"{what}: {self.owner.system} answered {got.label}: {reason}")

    # -- settings ----------------------------------------------------------------------------------------------
    @classmethod
    def read_settings(cls, raw: Any) -> GatewaySettings:
        """``plugin_settings.<name>``, checked; SettingsError saying what is wrong. The secret is read from its
        environment variable when a message is sent."""
        where = f"plugin_settings.{cls.name}"
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where} must be a mapping, got {type(raw).__name__}")
        try:
            check_keys(cls.owner.kind, cls.name, raw, (*SETTINGS, *cls.extra_settings), ("url", "secret_env"),
                       thing="sender")
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        url = raw["url"]
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url.strip(), re.IGNORECASE):
            raise SettingsError(f"{where}: 'url' must be an http:// or https:// address (e.g. {cls.owner.example}), "
                                f"got {url!r}")
        secret_env = raw["secret_env"]
        if not isinstance(secret_env, str) or not secret_env.strip():
            raise SettingsError(f"{where}: 'secret_env' must name the environment variable holding the signing "
                                f"secret, got {secret_env!r}")
        timeout = raw.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise SettingsError(f"{where}: 'timeout' must be a number of seconds above 0 (at most 600), "
                                f"got {timeout!r}")
        prefix = raw.get("key_prefix", "oms")
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", prefix):
            raise SettingsError(f"{where}: 'key_prefix' must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', "
                                f"got {prefix!r}")
        extra = {k: raw[k] for k in cls.extra_settings if k in raw}
        cls.check_extra(where, extra)
        return GatewaySettings(url.strip(), secret_env.strip(), float(timeout), prefix, extra)

    @classmethod
    def check_extra(cls, where: str, extra: Mapping[str, Any]) -> None:
        """Raise SettingsError for a sender's own settings it cannot use."""

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


class SmsGateway(HttpSender):
    """``{"id", "to", "text"}``: the rendered body as the text, to the phone number of the order's contact."""

    name = "sms_http"
    medium = "sms"
    owner = Owner("SMS gateway", "plugin_settings.sms_http", "the SMS gateway", "https://sms.example.com/api/send")

    def body(self, n: Notification, cfg: GatewaySettings) -> dict[str, Any]:
        to = phone_number(n.recipient)
        if to is None:
            raise MessageRefused(f"{self.name}: message {n.id}: the recipient {n.recipient!r} is not a phone number")
        return {"to": to, "text": n.body}


class AppGateway(HttpSender):
    """A template message in the style of WeChat's (``touser``, ``template_id``, ``data``) to the customer's id
    in the app, the notification's recipient. ``template_ids`` maps the OMS's template names to the app's
    template ids (a name not in it is sent as it is).

    The app's answer is WeChat's too: a 2xx whose ``errcode`` is not 0 was not delivered. -1 (busy) and the
    rate limits (45009, 45011, 45047) are tried again; any other code (43004: the customer does not follow the
    account; 40003: no such user) is refused for good.
    """

    name = "app_http"
    medium = "app"
    owner = Owner("app-message gateway", "plugin_settings.app_http", "the app-message gateway",
                  "https://app.example.com/api/template-messages")
    extra_settings = ("template_ids",)
    busy = frozenset({-1, 45009, 45011, 45047})

    def body(self, n: Notification, cfg: GatewaySettings) -> dict[str, Any]:
        to = n.recipient.strip() if isinstance(n.recipient, str) else ""
        if not re.fullmatch(r"[\x21-\x7e]{1,128}", to):
            raise MessageRefused(f"{self.name}: message {n.id}: the recipient {n.recipient!r} is not an app user id")
        template_id = cfg.extra.get("template_ids", {}).get(n.template, n.template)
        return {"touser": to, "template_id": template_id,
                "data": {"title": {"value": n.subject}, "order": {"value": n.order_number or ""},
                         "content": {"value": n.body}}}

    def check_delivered(self, answer: Mapping[str, Any] | None, got: Answer, what: str) -> None:
        code = (answer or {}).get("errcode", 0)
        if code in (0, None):
            return
        said = f"errcode {code}: {str((answer or {}).get('errmsg') or 'no errmsg')[:300]}"
        if code in self.busy:
            raise GatewayError(f"{what}: {self.owner.system} answered {got.label} with {said}")
        raise MessageRefused(f"{what}: {self.owner.system} refused it ({got.label}, {said})")

    @classmethod
    def check_extra(cls, where: str, extra: Mapping[str, Any]) -> None:
        ids = extra.get("template_ids", {})
        if not isinstance(ids, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                   for k, v in ids.items()):
            raise SettingsError(f"{where}: 'template_ids' maps template names to the app's template ids "
                                f"(text to text), got {ids!r}")


class WebhookSender(HttpSender):
    """The notification itself, as the OMS has it: ``{"id", "type": "notification", "order_number", "medium",
    "recipient", "template", "subject", "body"}``, for a system of the shop's own to deliver or act on."""

    name = "webhook_http"
    medium = "webhook"
    owner = Owner("webhook", "plugin_settings.webhook_http", "the webhook's receiver",
                  "https://hooks.example.com/oms/notifications")

    def body(self, n: Notification, cfg: GatewaySettings) -> dict[str, Any]:
        return {"type": "notification", "order_number": n.order_number, "medium": n.medium,
                "recipient": n.recipient, "template": n.template, "subject": n.subject, "body": n.body}


def phone_number(value: Any) -> str | None:
    """``value`` as a phone number (an optional ``+`` and 6 to 15 digits; blanks, dashes, dots and brackets
    between them dropped), or None when it is not one."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"[\s().-]", "", value)
    return text if re.fullmatch(r"\+?[0-9]{6,15}", text) else None


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _object_or_none(body: bytes) -> dict[str, Any] | None:
    try:
        value = read_json(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


SENDERS: tuple[type[HttpSender], ...] = (SmsGateway, AppGateway, WebhookSender)


@hookimpl(trylast=True)
def oms_register_senders(register: Any, config: Any) -> None:
    for cls in SENDERS:
        raw = config.plugin_settings.get(cls.name)
        if raw is None and config.senders.get(cls.medium) == cls.name:
            raise SettingsError(f"plugin_settings.{cls.name} is missing: config senders chooses '{cls.name}' for "
                                f"{cls.medium}, and it needs url and secret_env (docs/senders.md)")
        # Checked at start when given: a typo stops the start, not every message later.
        register(cls(raw))

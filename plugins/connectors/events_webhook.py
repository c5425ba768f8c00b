"""Events posted to a webhook of the shop's own (docs/events.md, "Webhook"): the connector ``events_webhook``, of kind
``events``.

Each event is one ``POST`` of the event as JSON (oms_engine/events/schema.py) to ``plugin_settings.events_webhook.url``,
signed as the OMS signs its other outbound calls (wms_http.py, :func:`post_signed`: ``X-OMS-Timestamp`` and
``X-OMS-Signature``, ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` with the secret in the
environment variable ``secret_env`` names), with ``Idempotency-Key`` the event's id (the same on every attempt) and
``X-Correlation-Id`` its sequence. A 2xx answer, or a 409 whose body says ``{"status": "duplicate"}``, is delivered;
anything else, or no complete answer within ``timeout``, is raised and the outbox tries the event again later: an
event is never dropped because its receiver refused it once, so the order of an order's events holds.

One client (one kept-alive connection) serves every event; it is closed and opened again after a failure.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from oms_engine import (
    CallbackEvent,
    OutboundMessage,
    PluginContext,
    SettingsError,
    check_keys,
    hookimpl,
    read_json,
    secret_from,
)
from oms_engine.events import KIND, encode, envelope

from .wms_http import Owner, Settings, WireError, http_client, no_record, post_signed, reason_of

NAME = "events_webhook"
CONTENT_TYPE = "application/json"
DEFAULT_TIMEOUT = 10.0
SETTINGS = ("url", "secret_env", "timeout")
RECEIVER = Owner("events webhook", f"plugin_settings.{NAME}", "the webhook's receiver",
                 "https://hooks.example.com/oms/events")


class WebhookError(WireError):
    """An event the receiver did not take this time: the outbox tries it again."""


class EventsWebhook:
    name = NAME
    kind = KIND

    def __init__(self, settings: Mapping[str, Any] | None, *, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        # settings None: not configured; an event sent through it fails (and is retried) saying so. clock: wall-clock
        # seconds, for signing. transport: httpx's, for tests.
        self.settings = _read(settings) if settings is not None else None
        self.clock, self.transport = clock, transport
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        section = f"plugin_settings.{NAME}"
        if self.settings is None:
            raise SettingsError(f"{section} is missing: the connector '{NAME}' needs url and secret_env "
                                "(docs/events.md)")
        url, secret_env, timeout = self.settings
        try:
            secret = secret_from({"secret_env": secret_env})
        except SettingsError as exc:
            raise SettingsError(f"{section}: {exc}") from None
        event = envelope(message.id, message.payload)
        wire = Settings(url, url, secret, timeout, "oms", RECEIVER)
        what = f"{NAME}: event {event['id']} to {url}"
        with self._lock:
            if self._client is None:
                self._client = http_client(NAME, wire, self.transport)
            try:
                got = post_signed(self._client, wire, url, encode(event), content_type=CONTENT_TYPE,
                                  correlation=str(message.id), key=event["id"], note="", what=what, clock=self.clock,
                                  record=no_record, error=WebhookError)
            except WebhookError:
                self._close()     # a connection that failed mid-answer is not one to send the next on
                raise
        if 200 <= got.status < 300:
            return
        answer = _object_or_none(got.body)
        if got.status == 409 and answer is not None and answer.get("status") == "duplicate":
            return
        reason = reason_of(answer) or (f"body starts {got.body[:200]!r}" if got.body.strip() else "no body")
        raise WebhookError(f"{what}: the receiver answered {got.label}: {reason}")

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        raise ValueError(f"{NAME} takes no callbacks")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{NAME} schedules no tasks")

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _read(raw: Any) -> tuple[str, str, float]:
    """(url, secret_env, timeout) from ``plugin_settings.events_webhook``; SettingsError saying what is wrong."""
    where = f"plugin_settings.{NAME}"
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where} must be a mapping, got {type(raw).__name__}")
    try:
        check_keys("events", NAME, raw, SETTINGS, ("url", "secret_env"), thing="connector")
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    url, secret_env = raw["url"], raw["secret_env"]
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url.strip(), re.IGNORECASE):
        raise SettingsError(f"{where}: 'url' must be an http:// or https:// address (e.g. {RECEIVER.example}), "
                            f"got {url!r}")
    if not isinstance(secret_env, str) or not secret_env.strip():
        raise SettingsError(f"{where}: 'secret_env' must name the environment variable holding the signing secret, "
                            f"got {secret_env!r}")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise SettingsError(f"{where}: 'timeout' must be a number of seconds above 0 (at most 600), got {timeout!r}")
    return url.strip(), secret_env.strip(), float(timeout)


def _object_or_none(body: bytes) -> dict[str, Any] | None:
    try:
        value = read_json(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    raw = config.plugin_settings.get(NAME)
    if raw is None and config.events.connector == NAME:
        raise SettingsError(f"plugin_settings.{NAME} is missing: config events chooses '{NAME}', and it needs url "
                            "and secret_env (docs/events.md)")
    register(EventsWebhook(raw))

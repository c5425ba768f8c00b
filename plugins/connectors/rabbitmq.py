"""Events published to RabbitMQ (docs/events.md, "RabbitMQ"): the connector ``rabbitmq``, of kind ``events``.

Each event is one message on a durable topic exchange (``plugin_settings.rabbitmq.exchange``, declared on
connecting unless ``declare`` is false), with the event's type as its routing key, persistent
(delivery mode 2), ``message_id`` the event's id, ``content_type`` application/json, ``type`` the event's
type, ``app_id`` the OMS's source, and headers ``schema``, ``key`` and ``sequence``. The body is the event
(oms_engine/events/schema.py).

A message is sent once the broker confirms it (publisher confirms): ``send`` returns only then, and the
outbox records it as sent only after ``send`` returned. A nack, a message returned unroutable (``mandatory``:
no queue is bound for its routing key) or a connection that fails before the confirm raises
:class:`BrokerError`, and the outbox tries the message again later, with backoff: what a broker does not
confirm is never recorded as sent. A publish confirmed and then not recorded (a publisher killed in between)
is published again with the same ``message_id``: consumers de-duplicate on it.

One connection (and one channel in confirm mode) is kept across messages, per process: opened on the first
message, opened again when it has dropped (a message that fails on a connection kept from before is tried
once more at once on a new one, so a connection the broker closed while the OMS was idle costs no retry).
After a failed attempt to connect, the messages of the next ``reconnect_delay`` seconds fail at once without
trying, so a batch of hundreds does not wait ``timeout`` for each while the broker is away.

Settings (``plugin_settings.rabbitmq``): ``url`` (default ``amqp://guest:guest@127.0.0.1:5672/%2F``) or
``url_env``, the environment variable holding a url with credentials; ``exchange`` (``oms.events``);
``timeout`` (seconds, 10: connecting, a blocked connection, the socket); ``heartbeat`` (seconds, 30: a broker
that stops answering is noticed within about twice that); ``declare`` (true); ``reconnect_delay`` (1).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError, UnroutableError

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, SettingsError, check_keys, hookimpl
from oms_engine.events import KIND, encode, envelope

NAME = "rabbitmq"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
SETTINGS = ("url", "url_env", "exchange", "timeout", "heartbeat", "declare", "reconnect_delay")
CONTENT_TYPE = "application/json"
PERSISTENT = 2


class BrokerError(RuntimeError):
    """A message the broker did not confirm: the outbox tries it again."""


@dataclass(frozen=True)
class Settings:
    url: str
    url_env: str
    exchange: str
    timeout: float
    heartbeat: int
    declare: bool
    reconnect_delay: float

    def resolved_url(self) -> str:
        if not self.url_env:
            return self.url
        url = os.environ.get(self.url_env, "")
        if not url:
            raise SettingsError(f"plugin_settings.{NAME}: the environment variable {self.url_env} (url_env) is not set")
        return url

    @property
    def where(self) -> str:
        """The broker, for messages: its url without credentials."""
        url = self.url if not self.url_env else f"${self.url_env}"
        return url.split("@", 1)[1] if "@" in url else url


def read_settings(raw: Mapping[str, Any] | None) -> Settings:
    """``plugin_settings.rabbitmq``, checked; SettingsError saying what is wrong."""
    where = f"plugin_settings.{NAME}"
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where} must be a mapping, got {type(raw).__name__}")
    try:
        check_keys("events", NAME, raw, SETTINGS, thing="connector")
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    url, url_env = raw.get("url", DEFAULT_URL), raw.get("url_env", "")
    if not isinstance(url, str) or not url.startswith(("amqp://", "amqps://")):
        raise SettingsError(f"{where}: 'url' must be an amqp:// or amqps:// address, got {url!r}")
    if not isinstance(url_env, str):
        raise SettingsError(f"{where}: 'url_env' must name an environment variable, got {url_env!r}")
    exchange = raw.get("exchange", "oms.events")
    if not isinstance(exchange, str) or not exchange or len(exchange) > 255 or exchange.startswith("amq."):
        # "": the default exchange routes by queue name, not by type; amq.* belongs to the broker.
        raise SettingsError(f"{where}: 'exchange' must be the name of a topic exchange of the OMS's own, got "
                            f"{exchange!r}")
    numbers = {}
    for key, default, low, high in (("timeout", 10.0, 0.1, 600), ("heartbeat", 30, 1, 3600),
                                    ("reconnect_delay", 1.0, 0, 600)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise SettingsError(f"{where}: '{key}' must be a number of seconds from {low} to {high}, got {value!r}")
        numbers[key] = value
    declare = raw.get("declare", True)
    if not isinstance(declare, bool):
        raise SettingsError(f"{where}: 'declare' must be true or false, got {declare!r}")
    return Settings(url, url_env, exchange, float(numbers["timeout"]), int(numbers["heartbeat"]), declare,
                    float(numbers["reconnect_delay"]))


class RabbitMqEvents:
    name = NAME
    kind = KIND

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = read_settings(settings)
        self._lock = threading.Lock()     # a blocking connection is not to be shared between threads at once
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._pid = 0                     # the process that opened the connection
        self._failed_at = -1e9            # monotonic time of the last failed attempt to connect
        self._failure = ""
        self.connections = 0              # opened so far (one per process while the broker stays up)

    # -- the contract ----------------------------------------------------------------------------------------
    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        event = envelope(message.id, message.payload)
        body = encode(event)
        props = pika.BasicProperties(
            content_type=CONTENT_TYPE, content_encoding="utf-8", delivery_mode=PERSISTENT,
            message_id=event["id"], type=event["type"], app_id=event["source"], timestamp=int(time.time()),
            headers={"schema": event["schema"], "key": event["key"], "sequence": event["sequence"]})
        with self._lock:
            kept = self._channel is not None and self._pid == os.getpid()
            try:
                self._publish(event, body, props)
                return
            except _Dropped as dropped:
                if not kept:
                    raise BrokerError(str(dropped)) from None
            # The connection kept from before had gone (the broker closed it while the OMS was idle, or restarted):
            # once more, at once, on a new one. Published twice at worst, under one message id.
            try:
                self._publish(event, body, props)
            except _Dropped as dropped:
                raise BrokerError(str(dropped)) from None

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        raise ValueError(f"{NAME} takes no callbacks: a broker does not answer events")

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{NAME} schedules no tasks")

    def close(self) -> None:
        """Close the connection (a later message opens another)."""
        with self._lock:
            self._drop(close=True)

    # -- the wire --------------------------------------------------------------------------------------------
    def _publish(self, event: Mapping[str, Any], body: bytes, props: pika.BasicProperties) -> None:
        what = f"{NAME}: event {event['id']} to exchange {self.settings.exchange!r} at {self.settings.where}"
        channel = self._open(what)
        try:
            channel.basic_publish(self.settings.exchange, event["type"], body, props, mandatory=True)
        except UnroutableError:
            raise BrokerError(f"{what}: returned unroutable (no queue is bound for routing key {event['type']!r}); "
                              "kept and tried again") from None
        except NackError:
            raise BrokerError(f"{what}: the broker refused it (nack); kept and tried again") from None
        except (AMQPError, OSError) as exc:
            self._drop(close=True)
            raise _Dropped(f"{what}: not confirmed: {_say(exc)}") from None

    def _open(self, what: str) -> BlockingChannel:
        """The kept channel, or a new connection and channel (exchange declared, confirms on)."""
        if self._channel is not None and self._pid == os.getpid() and self._channel.is_open \
                and self._connection is not None and self._connection.is_open:
            try:
                self._connection.process_data_events(0)    # heartbeats due, and a close the broker sent since
            except (AMQPError, OSError):
                self._drop(close=True)
            else:
                if self._channel is not None and self._channel.is_open:
                    return self._channel
        self._drop(close=self._pid == os.getpid())   # a connection inherited through fork is the parent's
        since = time.monotonic() - self._failed_at
        if since < self.settings.reconnect_delay:
            raise BrokerError(f"{what}: not tried: the broker could not be reached {since:.1f} s ago "
                              f"({self._failure})")
        s = self.settings
        try:
            params = pika.URLParameters(s.resolved_url())
            params.socket_timeout = params.stack_timeout = params.blocked_connection_timeout = s.timeout
            params.heartbeat, params.connection_attempts, params.retry_delay = s.heartbeat, 1, 0
            params.client_properties = {"connection_name": f"oms-engine events (pid {os.getpid()})"}
            connection = pika.BlockingConnection(params)
        except (AMQPError, OSError, ValueError) as exc:
            self._failed_at, self._failure = time.monotonic(), _say(exc)
            raise BrokerError(f"{what}: cannot connect: {self._failure}") from None
        try:
            channel = connection.channel()
            if s.declare:
                channel.exchange_declare(s.exchange, exchange_type="topic", durable=True)
            channel.confirm_delivery()
        except (AMQPError, OSError) as exc:
            _quietly_close(connection)
            raise BrokerError(f"{what}: the broker refused the channel: {_say(exc)}") from None
        self._connection, self._channel, self._pid = connection, channel, os.getpid()
        self.connections += 1
        return channel

    def _drop(self, *, close: bool) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and close:
            _quietly_close(connection)


class _Dropped(Exception):
    """The connection failed before the broker confirmed: the message may or may not have reached it."""


def _quietly_close(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except (AMQPError, OSError):
        pass     # already gone: nothing to close


def _say(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:500]


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    # Checked at start: a typo in its settings stops the start, not every event later.
    register(RabbitMqEvents(config.plugin_settings.get(NAME)))

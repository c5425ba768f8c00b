"""The shapes plugins implement and the context the core hands them.

These are :class:`typing.Protocol` classes: a plugin needs no base class, only
the attributes and methods listed. The core checks names, shapes and
duplicates when a plugin registers one (see :mod:`oms_engine.plugin.registry`).
Stable within a major version, like the views (docs/plugins.md, "Stability").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..orders.canonical import ParsedPayload
from .views import OrderView, RoutePlan, SplitPlan, StockView

JSON = Any


class PluginContext(Protocol):
    """What the core lends a connector or adapter while it works."""

    def now(self) -> datetime: ...

    def state_get(self, namespace: str, key: str) -> JSON | None:
        """A plugin's own small durable state (cursors, remote document status)."""

    def state_put(self, namespace: str, key: str, value: JSON) -> None: ...

    def schedule(self, connector: str, at: datetime, payload: JSON, key: str | None = None) -> None:
        """Call ``connector.on_task(payload, ctx)`` at ``at`` (or later).

        ``key``: the ``state_get(connector, key)`` entry the task will read, so
        the core can load the state of a whole batch of due tasks at once.
        """

    def receive_callback(self, source: str, payload: JSON) -> None:
        """Hand a status callback to the core, exactly as the callback API would."""

    def record_exchange(self, *, direction: str, kind: str, body: bytes, content_type: str = "",
                        correlation_id: str = "", status: int | None = None, note: str = "") -> None:
        """Keep one message exchanged with the outside system, byte for byte: a document sent
        (``direction="out", kind="request"``) or the answer to it (``"in", "response"``, with its HTTP
        ``status``). ``oms order show`` lists them with the order's messages. Kept even when the call then
        raises, so a failed attempt is on record; the connector, the message, its order and its warehouse
        are the core's to fill in."""


@runtime_checkable
class ChannelAdapter(Protocol):
    name: str

    def parse(self, body: bytes) -> list[ParsedPayload]:
        """Turn one payload (one order or a list) into canonical orders.

        Never raises for bad input: each order that cannot be read becomes a
        ParsedPayload with ``error`` set, so the rest of the batch goes on.
        """

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """True when the webhook's signature is valid.

        The signature must cover the delivery id and the signing time as well as
        the body, so neither can be changed without the secret: the core refuses
        a delivery whose time is off by more than the tolerance, or whose id it
        has seen in the replay window. The core reads them from the headers
        ``X-OMS-Delivery`` and ``X-OMS-Timestamp`` (Unix seconds), unless the
        adapter has a method ``delivery(headers) -> (id, unix_seconds) | None``
        that reads its marketplace's own headers (None: absent; ValueError:
        malformed).
        """


@dataclass(frozen=True)
class PulledPage:
    """One page of a channel's orders, as an adapter's ``pull`` fetched it.

    ``payloads``: the bodies as the channel answered them, each kept as a raw payload and read by the
    adapter's own ``parse`` (so an order pulled and the same order pushed by webhook are one order);
    ``cursor``: where the next pull starts (None: where this one started: nothing new); ``more``: another
    page is ready now (the puller asks again at once instead of waiting for its schedule).
    """

    payloads: tuple[bytes, ...]
    cursor: str | None
    more: bool = False


class Puller(Protocol):
    """A channel adapter that can also fetch orders from its channel's API (the ``pull`` method is optional).

    ``pull(account, cursor, http)``: the page of orders after ``cursor`` (None: the first pull; the adapter
    starts where its settings say, e.g. ``since``). ``account`` lends the API's address, the credential
    and the page size (channels/accounts.py: Account); ``http`` is an httpx.Client with the account's
    timeout. Raises to say the channel could not be reached or answered nonsense: the cursor then stays
    where it was and the pull is tried again later.
    """

    def pull(self, account: Any, cursor: str | None, http: Any) -> PulledPage: ...


@dataclass(frozen=True)
class ChannelReport:
    """What the OMS tells a channel about one of its orders (channels/reports.py), through the outbox.

    ``topic``: ``channel.shipment`` (``carrier``, ``tracking_no``, ``shipped_at``, ``lines``: each
    ``{"sku", "quantity", "line_id"}`` in the channel's words: its SKU and its own line id when it sent one),
    ``channel.tracking`` (``status``: in_transit, out_for_delivery, delivered or refused, ``label``: the status
    map's words for it, ``tracking_no``), ``channel.cancel`` (``reason``, ``whole``: the order, else only
    ``lines``), ``channel.refund`` (``refund``: its serial, ``amount`` in minor units, ``currency``,
    ``reason``). ``external_id``: the channel's id of the order; ``order_number``: the OMS's (a split's child
    for its own shipment). ``id``: the outbox message's, unique: the same report can come again (a worker
    killed after sending it), so the adapter makes it harmless to send twice, by asking the channel first.
    """

    id: int
    order_number: str
    external_id: str
    topic: str
    payload: Mapping[str, JSON]


class Reporter(Protocol):
    """A channel adapter that can tell its channel about orders (the ``report`` method is optional).

    ``report(account, message, http)`` makes the channel's API calls for one :class:`ChannelReport`, with the
    account's address and credential (channels/accounts.py: Account) and an httpx.Client. It answers the
    channel's reference for what it made (a fulfillment's or refund's id) or None. Raises to have it tried again
    later (the channel down, slow, answering 5xx); raises :class:`MessageRefused` when the channel refused it
    for good (an order it no longer has), so that it is not.
    """

    def report(self, account: Any, message: ChannelReport, http: Any) -> str | None: ...


class SplitStrategy(Protocol):
    def __call__(self, order: OrderView, stock: StockView, params: Mapping[str, Any]) -> SplitPlan:
        """Groups of lines (child orders to be); every unit of every line exactly once."""


class ParamsValidator(Protocol):
    def __call__(self, params: Mapping[str, Any]) -> None:
        """Raise ValueError for rule parameters the strategy cannot use."""


class RoutingStrategy(Protocol):
    def __call__(self, order: OrderView, stock: StockView, params: Mapping[str, Any]) -> RoutePlan | None:
        """A warehouse for the whole order, or None to let the next rule decide."""


@dataclass(frozen=True)
class OutboundMessage:
    """A document leaving the OMS through the outbox (to a WMS, a carrier...)."""

    id: int
    order_number: str
    topic: str                  # e.g. "wms.create", "wms.cancel", "carrier.register"
    payload: Mapping[str, JSON]
    # For a warehouse's document: its code, and the connector's settings for that warehouse from master
    # data (endpoint, the environment variable holding its secret...), read when the message is sent.
    warehouse: str | None = None
    settings: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackEvent:
    """What a connector read out of a callback.

    ``kind`` says what it is about:

    - ``"order"``: a status of an order (``order_number``), mapped to an order event by the status map;
      ``data`` may carry ``tracking_no``, ``carrier``, ``note``, ``place``;
    - ``"receipt"``: goods a warehouse received against a document (a purchase order or a customer
      return): ``data = {"document": "PO-1", "lines": [{"sku": ..., "quantity": ...}]}``, the quantities
      actually received;
    - ``"shipped_out"``: goods a warehouse sent out against a document (a return to a vendor), the same
      shape;
    - ``"ack"``: a document was taken (``data = {"document": ..., "accepted": bool, "reason": ...}``);
    - ``"refund"``: a payment provider's answer about a refund (``status`` ``refunded`` or ``refused``;
      ``data = {"refund": serial, "provider_ref": ..., "reason": ...}``; payments/refunds.py).
    - ``"einvoice"``: a tax platform's answer about an invoice or credit note (``status`` ``accepted`` or
      ``refused``; ``data = {"invoice": number, "official_no": ..., "verification": ..., "reason": ...}``;
      invoices/submission.py).
    - ``"readdress"``: a warehouse's answer to a new delivery address asked of it (topic ``wms.readdress``):
      ``status`` ``accepted`` or ``refused`` (``duplicate`` and ``unknown`` count as refused), ``data =
      {"request": id, "reason": ...}`` with the request id the message carried; ``order_number`` the order
      (fulfilment/address_requests.py). Accepted, the order's ship_to becomes the new address; refused, it
      stays, with an incident for a person; a second answer to the same request changes nothing.

    ``id``: the sender's id of the callback, if it gives one: a second delivery of the same id is
    recorded and changes nothing.
    """

    order_number: str
    status: str                 # the external system's own status word
    data: Mapping[str, JSON] = field(default_factory=dict)
    at: datetime | None = None
    kind: str = "order"
    id: str = ""


class MessageRefused(Exception):
    """Raised by ``Connector.send`` when the receiver refused the message for good (a tax platform that rejects
    an e-invoice's content): sending the same message again cannot succeed, so the outbox does not retry it.
    It is dead at once (``oms outbox dead``, with this error) and an incident is recorded on its order; what the
    connector handed the core before raising (a callback saying why, its state) is kept, where any other error
    discards it. ``oms outbox retry ID`` sends it again once the cause is sorted out."""


@runtime_checkable
class Connector(Protocol):
    name: str
    kind: str                   # "wms", "carrier", "payment" or "tax"

    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        """Deliver the message; raise to have the outbox retry it later, or raise :class:`MessageRefused`
        when the receiver refused it for good (the message is dead at once).

        Must be idempotent on ``message.id`` (the remote system's idempotency key), or on the
        connector's own state kept with ``ctx.state_put``, which is written in the same
        transaction as the record that the message was sent: a worker that dies after a send
        and before that commit leaves the message to be sent again by another worker.
        """

    def parse_callback(self, payload: JSON) -> Sequence[CallbackEvent]:
        """Read a callback body; raise ValueError for a malformed one."""

    def on_task(self, payload: JSON, ctx: PluginContext) -> None:
        """A task this connector scheduled through ``ctx.schedule`` is due."""

    # Optional, for a connector whose system calls back over HTTP (``POST /api/wms/WAREHOUSE/callbacks``):
    #   verify_callback(headers, body, settings) -> bool: the signature on the raw body, checked with the
    #       warehouse's settings (its secret) before anything is stored;
    #   callback_id(headers, body) -> str: the sender's id of the delivery, if any.
    # And ``wants_master_data = True`` for a WMS that must be sent items and suppliers (``master.item``,
    # ``master.supplier``) before the first document that names them.
    #
    # Optional, for a carrier that quotes (courier matching, orders/couriers.py):
    #   quote(shipment: Shipment, service: ServiceView, settings) -> Quote: its price and estimated
    #       delivery for the shipment on that service, or a refusal with the reason (out of area, over
    #       weight...). ``settings``: the carrier's from master data. Raising counts as a refusal (the
    #       next choice is tried) and is recorded with the decision. A carrier without ``quote`` takes
    #       every shipment its service's attributes allow, at no stated price or date.


@dataclass(frozen=True)
class Notification:
    id: int
    order_number: str
    medium: str                 # "sms", "email", ...
    recipient: str
    template: str
    subject: str
    body: str


@runtime_checkable
class Sender(Protocol):
    name: str
    medium: str

    def send(self, notification: Notification) -> None:
        """Deliver it; raise to have the outbox retry it.

        Must be idempotent on ``notification.id``, across processes and restarts: a
        worker that dies after a send but before recording it as sent leaves the
        message to be sent again by another worker, so the receiver (the gateway's
        idempotency key, or the sender checking what it has already delivered) must
        refuse an id it has seen, not only remember it in memory.

        A sender may also define ``flush()``: the outbox calls it once per batch,
        before the batch is recorded as sent; it must make the batch durable (one
        fsync, one API call) and may raise to have the whole batch retried.
        """


@runtime_checkable
class EInvoiceFormat(Protocol):
    name: str

    def render(self, invoice: Mapping[str, Any]) -> Mapping[str, Any] | str:
        """The e-invoice a tax platform takes, for one invoice or credit note as the OMS keeps it: ``number``,
        ``kind`` (``invoice`` or ``credit_note``), ``order``, ``issued_at`` (ISO 8601, UTC), ``currency``,
        ``buyer`` (``ref``, ``name``, ``country``), ``items`` (``line_no``, ``sku``, ``name``, ``quantity``,
        ``amount`` and ``tax`` in minor units), ``amount``, ``tax``, ``refers_to`` (a credit note: the invoice it
        reverses). A JSON-able mapping, or text (XML...). Raise to refuse an invoice it cannot express."""


@dataclass(frozen=True)
class FactProvider:
    """Extra facts for YAML ``when:`` conditions.

    ``fields`` declares each dotted path it adds and its type, so rules naming
    them are validated. ``provide(views, core)`` is called once per batch of
    orders (never once per order) with the orders' views and their core facts
    by order number, and returns the extra facts per order number.
    """

    name: str
    fields: Mapping[str, type]
    provide: Callable[[Sequence[OrderView], Mapping[str, Mapping[str, Any]]], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Template:
    name: str
    medium: str
    body: str                   # Jinja2 source, rendered in a sandbox
    subject: str = ""
    # The language it is written in ("zh", "en-GB"); "" : the template of that name for any language. A
    # notification goes out in the buyer's language where a template of the name has it (messaging/notifications.py).
    language: str = ""
    # Where it came from (a file), for errors that name file and line.
    origin: str = ""

    @property
    def key(self) -> str:
        """Its name in the registry: ``shipped``, or ``shipped@zh`` for a language's."""
        return f"{self.name}@{self.language}" if self.language else self.name


class RuleAction(Protocol):
    def __call__(self, order: OrderView, params: Mapping[str, Any]) -> None:
        """Carry out a plugin's YAML action after the decision that named it is stored."""


# The ``register`` callbacks the registry hooks receive.
class RegisterChannel(Protocol):
    def __call__(self, adapter: ChannelAdapter) -> None: ...


class RegisterSplitStrategy(Protocol):
    def __call__(self, name: str, strategy: SplitStrategy, validate: ParamsValidator | None = None) -> None: ...


class RegisterRoutingStrategy(Protocol):
    def __call__(self, name: str, strategy: RoutingStrategy, validate: ParamsValidator | None = None) -> None: ...


class RegisterFactProvider(Protocol):
    def __call__(self, provider: FactProvider) -> None: ...


class RegisterConnector(Protocol):
    def __call__(self, connector: Connector) -> None: ...


class RegisterSender(Protocol):
    def __call__(self, sender: Sender) -> None: ...


class RegisterTemplate(Protocol):
    def __call__(self, template: Template) -> None: ...


class RegisterEInvoiceFormat(Protocol):
    def __call__(self, format: EInvoiceFormat) -> None: ...


class RegisterRuleAction(Protocol):
    def __call__(self, point: str, name: str, handler: RuleAction, validate: ParamsValidator | None = None,
                 description: str = "") -> None: ...

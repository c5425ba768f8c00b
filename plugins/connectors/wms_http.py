"""What the WMS connectors over HTTP share (wms_json.py, wms_xml.py): settings, signing, the documents they
send, the answers they accept, the callbacks they read. The wire formats are in docs/connectors.md.

Each document is one ``POST {url}/documents``, signed with the warehouse's secret, carrying an
``Idempotency-Key`` (the same for every attempt of one outbox message, so a WMS that took an attempt the
OMS then saw fail does not take it twice) and the message id as ``X-Correlation-Id``. The master records
a document carries (``master``: items and suppliers) go first, each as a document of its own, keyed by
their version. Every request and every answer (or the failure to get one) is recorded with
``ctx.record_exchange`` as it went over the wire. A 2xx answer saying ``accepted`` or ``duplicate`` (or a
409 saying ``duplicate``) is success; anything else raises :class:`WmsError`, and the outbox tries again.

The carrier connector over HTTP (carrier_http.py) shares the wire with them: the settings (:func:`read_settings`
for its :class:`Owner`), the signed and recorded POST (:func:`post_signed`), the check of a signed callback
(:func:`signed_ok`) and the readers of callback fields (:func:`text_field`, :func:`time_field`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from oms_engine import CallbackEvent, OutboundMessage, PluginContext, SettingsError, callback_body, secret_from

# Headers of a document the OMS sends, and of a callback the WMS sends (both: HMAC-SHA256, hex, over
# "<timestamp>." followed by the body's bytes, with the warehouse's secret).
IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-Id"
OMS_TIMESTAMP, OMS_SIGNATURE = "X-OMS-Timestamp", "X-OMS-Signature"
WMS_TIMESTAMP, WMS_SIGNATURE = "X-WMS-Timestamp", "X-WMS-Signature"
MAX_SKEW_SECONDS = 300          # a callback signed further from now than this is refused
DEFAULT_TIMEOUT = 10.0          # seconds, per request (connect, write, read each)
MAX_ANSWER_BYTES = 1 << 20      # an answer longer than this is refused, not read into memory
MAX_CALLBACK_BYTES = 1 << 20
PATH = "/documents"

# Topic -> the document's type on the wire.
TYPES = {"wms.create": "sales_order", "wms.cancel": "cancel", "wms.intercept": "intercept",
         "wms.readdress": "readdress", "wms.purchase_order": "purchase_order",
         "wms.return_to_vendor": "return_to_vendor", "wms.customer_return": "customer_return", "master.item": "item",
         "master.supplier": "supplier"}
# A readdress callback is the warehouse's answer to a readdress document: accepted or refused, naming its request.
CALLBACK_TYPES = ("order_status", "receipt", "shipped_out", "ack", "readdress")
MAX_REASON = 1000               # a warehouse's reason longer than this is cut, not refused
SUCCESS = ("accepted", "duplicate")


class WireError(RuntimeError):
    """A call over HTTP that did not get the answer it needed: a message the outbox tries again, a quote that
    counts as a refusal."""


class WmsError(WireError):
    """A document the WMS did not take (or whose answer could not be read): the outbox tries again."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``<timestamp>.`` and the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                                hashlib.sha256).hexdigest()


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever its case."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value)
    return ""


def signed_ok(headers: Mapping[str, str], body: bytes, secret: str, *, now: float,
              timestamp_header: str = WMS_TIMESTAMP, signature_header: str = WMS_SIGNATURE) -> bool:
    """True when the signature covers this body and this timestamp, and the timestamp is within
    MAX_SKEW_SECONDS of ``now`` (either way)."""
    ts = header(headers, timestamp_header).strip()
    given = header(headers, signature_header).strip()
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12 or not given:
        return False
    if abs(now - int(ts)) > MAX_SKEW_SECONDS:
        return False
    expected = signature(secret, ts, body)
    # Bytes on both sides: a header that is not ASCII must compare unequal, not raise.
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


@dataclass(frozen=True)
class Owner:
    """Whose connector settings they are, for the messages that say what is wrong with them or on the wire."""

    kind: str                   # "warehouse", "carrier"
    section: str                # the master-data field holding them
    system: str                 # who answers at their url: "the WMS"
    example: str                # a url, for the message saying one is missing


WAREHOUSE = Owner("warehouse", "wms_settings", "the WMS", "https://wms.example.com/api")


@dataclass(frozen=True)
class Settings:
    url: str
    endpoint: str
    secret: str
    timeout: float
    key_prefix: str
    owner: Owner = WAREHOUSE


def read_settings(name: str, message_settings: Mapping[str, Any], code: str | None, owner: Owner = WAREHOUSE,
                  path: str = PATH) -> Settings:
    """The settings of the warehouse (or other ``owner``) ``code`` for this connector; SettingsError saying what
    is missing. ``endpoint`` is the url followed by ``path``."""
    where = f"connector '{name}' for {owner.kind} {code or '?'}"
    section = owner.section
    url = message_settings.get("url")
    if not isinstance(url, str) or not url.strip():
        raise SettingsError(f"{where}: the {owner.kind}'s {section} need 'url', {owner.system}'s base address "
                            f"(e.g. {owner.example})")
    url = url.strip().rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        raise SettingsError(f"{where}: {section} 'url' must be an http:// or https:// address, got {url!r}")
    try:
        secret = secret_from(message_settings)
    except SettingsError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    timeout = message_settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, str):    # from a CSV file or the command line
        with contextlib.suppress(ValueError):
            timeout = float(timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise SettingsError(f"{where}: {section} 'timeout' must be a number of seconds above 0 (at most 600), "
                            f"got {timeout!r}")
    prefix = message_settings.get("key_prefix", "oms")
    if not isinstance(prefix, str) or not prefix:
        raise SettingsError(f"{where}: {section} 'key_prefix' must be a non-empty string")
    return Settings(url, url + path, secret, float(timeout), prefix, owner)


def http_client(name: str, cfg: Settings, transport: httpx.BaseTransport | None) -> httpx.Client:
    """A client for one call's requests: the settings' timeout, no redirects followed (a document or a quote
    goes where the settings say, or fails)."""
    return httpx.Client(timeout=httpx.Timeout(cfg.timeout), follow_redirects=False, transport=transport,
                        headers={"User-Agent": f"oms-engine/{name}"})


# PluginContext.record_exchange, or no_record where the core lends no context (a carrier's quote).
Recorder = Callable[..., None]


def no_record(**exchange: Any) -> None:
    """Keeps nothing: for a call made where the core gives no context to record it with."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes                 # as it came, at most MAX_ANSWER_BYTES
    content_type: str

    @property
    def label(self) -> str:
        """The status with its phrase: "503 Service Unavailable"."""
        return f"{self.status} {_phrase(self.status)}".strip()


def post_signed(client: httpx.Client, cfg: Settings, url: str, body: bytes, *, content_type: str,
                correlation: str, key: str | None, note: str, what: str, clock: Callable[[], float],
                record: Recorder, error: type[WireError]) -> Answer:
    """One ``POST url`` of ``body``, signed with the owner's secret and carrying the idempotency ``key`` (if
    any), with the request and its answer (or why none came) recorded as they went over the wire.

    Raises ``error``, saying ``what`` failed, when no complete answer came within the timeout or one came
    over MAX_ANSWER_BYTES; an answer of any status is returned for the caller to judge.
    """
    ts = str(int(clock()))
    # identity: the answer's bytes as they came are the bytes recorded (and no compressed bomb to unpack).
    headers = {"Content-Type": content_type, "Accept": content_type, "Accept-Encoding": "identity",
               CORRELATION_HEADER: correlation, OMS_TIMESTAMP: ts, OMS_SIGNATURE: signature(cfg.secret, ts, body)}
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    record(direction="out", kind="request", body=body, content_type=content_type, correlation_id=correlation,
           note=note)
    try:
        with client.stream("POST", url, content=body, headers=headers) as resp:
            raw, cut = _read_capped(resp, MAX_ANSWER_BYTES, time.monotonic() + cfg.timeout)
    except _TooSlow as slow:
        why = f"answer not complete {cfg.timeout:g} s after its headers: {len(slow.partial)} bytes came"
        record(direction="in", kind="response", body=slow.partial, correlation_id=correlation, status=slow.status,
               note=why)
        raise error(f"{what}: {why}") from None
    except httpx.TimeoutException as exc:
        why = f"no answer: timed out after {cfg.timeout:g} s ({type(exc).__name__})"
        record(direction="in", kind="response", body=b"", correlation_id=correlation, note=why)
        raise error(f"{what}: {why}") from None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        why = f"no answer: {type(exc).__name__}: {exc}"
        record(direction="in", kind="response", body=b"", correlation_id=correlation, note=why[:1000])
        raise error(f"{what}: {why}") from None
    answer = Answer(resp.status_code, raw, resp.headers.get("content-type", ""))
    record(direction="in", kind="response", body=raw, content_type=answer.content_type, correlation_id=correlation,
           status=answer.status, note=f"answer cut at {MAX_ANSWER_BYTES} bytes" if cut else "")
    if cut:
        raise error(f"{what}: {cfg.owner.system} answered {answer.label} with more than {MAX_ANSWER_BYTES} bytes: "
                    "refused")
    return answer


@dataclass(frozen=True)
class Request:
    type: str                   # the document's type on the wire
    key: str                    # its idempotency key (also its "id" in the body)
    data: Mapping[str, Any]
    about: str                  # for notes and errors: "item TEA-1 v2", "sales_order 100001"


def plan(message: OutboundMessage, prefix: str) -> list[Request]:
    """The requests one outbox message makes: the master records it carries (items, then suppliers), then
    the document itself. Master records are keyed by warehouse, key and version, so the same record at the
    same version, carried by two documents or sent on its own, is one document for the WMS; everything
    else is keyed by the message id."""
    doc_type = TYPES.get(message.topic)
    if doc_type is None:
        raise ValueError(f"a WMS connector does not send topic '{message.topic}' (it sends {', '.join(TYPES)})")
    payload = dict(message.payload)
    warehouse = str(payload.get("warehouse") or message.warehouse or "")
    carried = payload.pop("master", None) or {}
    if not isinstance(carried, Mapping):
        raise ValueError(f"message {message.id}: 'master' must be an object of items and suppliers")
    out: list[Request] = []
    for record in carried.get("items") or ():
        out.append(_master("item", record, "sku", warehouse, prefix))
    for record in carried.get("suppliers") or ():
        out.append(_master("supplier", record, "code", warehouse, prefix))
    if doc_type in ("item", "supplier"):
        out.append(_master(doc_type, payload, "sku" if doc_type == "item" else "code", warehouse, prefix))
    else:
        ref = payload.get("document") or payload.get("order_number") or message.order_number
        out.append(Request(doc_type, f"{prefix}-msg-{message.id}", payload, f"{doc_type} {ref}"))
    return out


def _master(kind: str, record: Any, key_field: str, warehouse: str, prefix: str) -> Request:
    if not isinstance(record, Mapping) or not record.get(key_field):
        raise ValueError(f"a master {kind} record needs '{key_field}': {record!r}")
    key, version = str(record[key_field]), record.get("version", 0)
    ident = "-".join(quote(str(part), safe="._-") for part in (prefix, kind, warehouse, key, f"v{version}"))
    return Request(kind, ident, dict(record), f"{kind} {key} v{version}")


class HttpWms:
    """The shared half of a WMS connector over HTTP; a subclass brings its wire format."""

    kind = "wms"
    wants_master_data = True
    name = ""
    content_type = ""

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        # clock: wall-clock seconds, for signing and for checking a callback's timestamp (the remote end
        # keeps real time, whatever clock the OMS runs on). transport: httpx's, for tests.
        self.clock, self.transport = clock, transport

    # -- the format (subclasses) ------------------------------------------------------------------------
    def encode(self, doc_type: str, key: str, data: Mapping[str, Any]) -> bytes:
        raise NotImplementedError

    def decode_answer(self, body: bytes) -> dict[str, Any]:
        """The answer's fields (status, id, reason, reference...); ValueError when it cannot be read."""
        raise NotImplementedError

    def decode_callback(self, body: bytes) -> tuple[dict[str, Any], bool]:
        """(the callback as {"type", "id", "data"}, whether its scalars came as text); ValueError when it
        cannot be read."""
        raise NotImplementedError

    # -- sending ------------------------------------------------------------------------------------------
    def send(self, message: OutboundMessage, ctx: PluginContext) -> None:
        cfg = read_settings(self.name, message.settings, message.warehouse)
        requests = plan(message, cfg.key_prefix)
        with http_client(self.name, cfg, self.transport) as client:
            for req in requests:
                self._post(client, cfg, message, req, ctx)

    def _post(self, client: httpx.Client, cfg: Settings, message: OutboundMessage, req: Request,
              ctx: PluginContext) -> dict[str, Any]:
        what = f"{self.name}: {req.about} (key {req.key}) to {cfg.endpoint}"
        got = post_signed(client, cfg, cfg.endpoint, self.encode(req.type, req.key, req.data),
                          content_type=self.content_type, correlation=str(message.id), key=req.key,
                          note=f"POST {cfg.endpoint} {req.about} key {req.key}", what=what, clock=self.clock,
                          record=ctx.record_exchange, error=WmsError)
        status, raw, label = got.status, got.body, got.label
        try:
            answer: dict[str, Any] | None = self.decode_answer(raw)
            problem = ""
        except ValueError as exc:
            answer, problem = None, str(exc)
        said = str(answer.get("status") or "") if answer is not None else ""
        reason = reason_of(answer)
        if 200 <= status < 300:
            if answer is None:
                raise WmsError(f"{what}: the WMS answered {label} with a malformed body: {problem}")
            if said not in SUCCESS:
                raise WmsError(f"{what}: the WMS answered {label} but its answer says "
                               f"{said or 'no status'!r}" + (f": {reason}" if reason else ""))
            answered_for = answer.get("id")
            if answered_for not in (None, "", req.key):
                raise WmsError(f"{what}: the WMS answered about document {answered_for!r}, not {req.key!r}")
            return answer
        if status == HTTPStatus.CONFLICT and said == "duplicate":
            return answer  # type: ignore[return-value]  # it has this document already
        if reason:
            detail = f": {reason}"
        elif answer is None and raw:
            detail = f" ({problem}; body starts {raw[:200]!r})"
        else:
            detail = ""
        raise WmsError(f"{what}: the WMS answered {label}{detail}")

    # -- callbacks ------------------------------------------------------------------------------------
    def verify_callback(self, headers: Mapping[str, str], body: bytes, settings: Mapping[str, Any]) -> bool:
        """The WMS's signature (X-WMS-Signature over X-WMS-Timestamp and the body, with the warehouse's
        secret), and a timestamp within five minutes of now."""
        return signed_ok(headers, body, secret_from(settings), now=self.clock())

    def callback_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The WMS's id of the callback: its ``id`` (signed, being in the body)."""
        envelope, _ = self.decode_callback(body)
        return str(envelope.get("id") or "")

    def parse_callback(self, payload: Any) -> Sequence[CallbackEvent]:
        if not isinstance(payload, Mapping):
            raise ValueError(f"{self.name}: a callback is stored as an object with its body, "
                             f"got {type(payload).__name__}")
        envelope, text_scalars = self.decode_callback(callback_body(payload))
        return events_from(envelope, text_scalars=text_scalars)

    def on_task(self, payload: Any, ctx: PluginContext) -> None:
        raise ValueError(f"{self.name} schedules no tasks")   # it never calls ctx.schedule


class _TooSlow(Exception):
    def __init__(self, partial: bytes, status: int) -> None:
        super().__init__("too slow")
        self.partial, self.status = partial, status


def _read_capped(resp: httpx.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """The answer's body, at most ``limit`` bytes (and whether there was more), read by ``deadline``: a WMS
    that trickles its answer out a byte at a time (each byte within the read timeout) does not hold the
    outbox for long."""
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
        if time.monotonic() > deadline:
            raise _TooSlow(b"".join(chunks), resp.status_code)
    return b"".join(chunks), False


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def reason_of(answer: Mapping[str, Any] | None) -> str:
    """The reason an answer gives (``reason``, ``error`` or ``message``), at most 500 characters."""
    if not answer:
        return ""
    reason = answer.get("reason") or answer.get("error") or answer.get("message")
    return str(reason)[:500] if reason not in (None, "") else ""


# -- callbacks: the same fields in either format ------------------------------------------------------------
def events_from(envelope: Mapping[str, Any], *, text_scalars: bool = False) -> list[CallbackEvent]:
    """The events of one callback ({"type", "id", "data"}); ValueError saying what is wrong.

    ``text_scalars``: the callback came in a format whose values are text (XML without type attributes),
    so a quantity "4" and a flag "true" are read as a number and a boolean.
    """
    kind = envelope.get("type")
    cid = envelope.get("id")
    if cid is not None and (not isinstance(cid, str | int) or isinstance(cid, bool)):
        raise ValueError(f"callback 'id' must be a string, got {cid!r}")
    cid = str(cid or "")
    if kind not in CALLBACK_TYPES:
        raise ValueError(f"callback type {kind!r} is not one of {', '.join(CALLBACK_TYPES)}")
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        raise ValueError(f"{kind} callback {cid}: 'data' must be an object, got {type(data).__name__}")
    where = f"{kind} callback {cid}".rstrip()
    at = time_field(data.get("at"), where)
    if kind == "order_status":
        number = text_field(data, "order_number", where, required=True)
        status = text_field(data, "status", where, required=True)
        extra = {k: text_field(data, k, where) for k in ("tracking_no", "carrier", "place", "note")}
        return [CallbackEvent(order_number=number, status=status, data={k: v for k, v in extra.items() if v},
                              at=at, kind="order", id=cid)]
    if kind in ("receipt", "shipped_out"):
        document = text_field(data, "document", where, required=True)
        lines = data.get("lines")
        if not isinstance(lines, list) or not lines:
            raise ValueError(f"{where}: 'lines' must be a non-empty list of {{sku, quantity}}")
        read = []
        for n, line in enumerate(lines, start=1):
            if not isinstance(line, Mapping):
                raise ValueError(f"{where}: line {n} must be an object with sku and quantity, got {line!r}")
            item = {"sku": text_field(line, "sku", f"{where} line {n}", required=True),
                    "quantity": _quantity(line.get("quantity"), f"{where} line {n}", text_scalars)}
            # Optional: the lot and expiry of lot-tracked goods, and the condition of goods a customer sent
            # back ("good" or "damaged"): the OMS checks what they say (fulfilment/stock_documents.py).
            for key in ("lot", "expires_on", "condition"):
                value = text_field(line, key, f"{where} line {n}")
                if value:
                    item[key] = value
            read.append(item)
        out: dict[str, Any] = {"document": document, "lines": read}
        number = text_field(data, "order_number", where)
        return [CallbackEvent(order_number=number, status="RECEIVED" if kind == "receipt" else "SHIPPED_OUT",
                              data=out, at=at, kind=kind, id=cid)]
    if kind == "readdress":
        request = text_field(data, "request", where, required=True)
        if not request.isascii() or not request.isdigit():
            raise ValueError(f"{where}: 'request' must be the address request's id (a whole number), got {request!r}")
        status = text_field(data, "status", where, required=True)
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ValueError(f"{where}: 'reason' must be text, got {reason!r}")
        return [CallbackEvent(order_number=text_field(data, "order_number", where), status=status,
                              data={"request": int(request), "reason": (reason or "").strip()[:MAX_REASON]},
                              at=at, kind="readdress", id=cid)]
    # ack
    document = text_field(data, "document", where)
    number = text_field(data, "order_number", where)
    if not document and not number:
        raise ValueError(f"{where}: an ack names the 'document' or the 'order_number' it is about")
    accepted = _flag(data.get("accepted"), f"{where}: 'accepted'", text_scalars)
    reason = text_field(data, "reason", where)
    return [CallbackEvent(order_number=number, status="ACCEPTED" if accepted else "REFUSED",
                          data={"document": document, "accepted": accepted, "reason": reason}, at=at, kind="ack",
                          id=cid)]


def text_field(data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    """A short text field of a callback ("" when absent); ValueError naming ``where`` when it is not text."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{where}: '{key}' is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{where}: '{key}' must be text, got {value!r}")
    text = str(value).strip()
    if required and not text:
        raise ValueError(f"{where}: '{key}' is empty")
    if len(text) > 200:
        raise ValueError(f"{where}: '{key}' is longer than 200 characters")
    return text


def _quantity(value: Any, where: str, text_scalars: bool) -> int:
    if text_scalars and isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: 'quantity' must be a positive whole number, got {value!r}")
    return value


def _flag(value: Any, where: str, text_scalars: bool) -> bool:
    if text_scalars and isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


def time_field(value: Any, where: str) -> datetime | None:
    """An ISO 8601 time; one without an offset is UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: 'at' must be an ISO 8601 time, got {value!r}")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{where}: 'at' is not an ISO 8601 time: {value!r}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

"""A warehouse's WMS for the tests: a small HTTP server on loopback that speaks the wms_json and wms_xml wire
formats (docs/connectors.md) as a real WMS would.

It checks the OMS's signature on every document, stores each document once per idempotency key (a repeat
gets the answer the first one got), and keeps every request it received, bytes and headers, for the test
to compare with what the OMS recorded. It can be told to answer slowly, to fail the next N documents with
a 5xx, to answer with a malformed body, to refuse (4xx with a reason), or to answer with any bytes (an XML
bomb). It calls the OMS back over real HTTP (``POST /api/wms/<warehouse>/callbacks``), signed with the
warehouse's secret, in its format: order statuses, receipts, goods sent out, acks, its answer to a new
delivery address (``readdress``: accepted or refused, as to an interception); or anything a test wants to send
(a bad signature, a stale timestamp, a duplicate callback id, an XML bomb). A readdress document missing what
a WMS needs to act on it (the order, its document, the address, the request's id) is refused (422).

It is written apart from the connectors (its own encoder and reader), so a mistake in their format is not
mirrored here::

    with WmsStandIn("xml", secret="s3cret") as wms:
        ...  # wms.url in the warehouse's wms_settings
        wms.fail(2)
        wms.order_status(number, "SHIPPED", tracking_no="SF1", oms_url=api_url)
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET

from .loopback import LoopbackServer, Received, Sent, sign, signed_by

CONTENT_TYPES = {"json": "application/json", "xml": "application/xml"}
_LISTS = {"lines": "line", "items": "item", "suppliers": "supplier"}


# -- the XML dialect, written independently of plugins/connectors/wms_xml.py -----------------------------
def xml_encode(root: str, ident: str, data: Mapping[str, Any]) -> bytes:
    def put(elem: ET.Element, value: Any, name: str) -> None:
        if value is None:
            elem.set("nil", "true")
        elif isinstance(value, bool):
            elem.set("type", "boolean")
            elem.text = str(value).lower()
        elif isinstance(value, int):
            elem.set("type", "integer")
            elem.text = str(value)
        elif isinstance(value, float):
            elem.set("type", "decimal")
            elem.text = repr(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                put(ET.SubElement(elem, k), v, k)
        elif isinstance(value, list):
            elem.set("type", "array")
            for v in value:
                put(ET.SubElement(elem, _LISTS.get(name, "value")), v, name)
        else:
            elem.text = str(value)

    top = ET.Element(root, {"id": ident})
    put(top, dict(data), root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="utf-8", xml_declaration=False)


def xml_decode(elem: ET.Element) -> Any:
    """What an element of the dialect holds: typed values, lists, objects (keys of <entry key=...>)."""
    if elem.get("nil") == "true":
        return None
    kind, kids = elem.get("type"), list(elem)
    if kind == "array":
        return [xml_decode(k) for k in kids]
    if kids or kind == "object":
        return {(k.get("key") if k.tag == "entry" else k.tag): xml_decode(k) for k in kids}
    text = elem.text or ""
    return {"integer": int, "decimal": float, "boolean": lambda t: t == "true"}.get(kind or "", str)(text)


def decode(fmt: str, body: bytes) -> dict[str, Any]:
    """A document or answer as {"type", "id", "data"} (JSON: as sent; XML: the root's tag and id)."""
    if fmt == "json":
        value = json.loads(body)
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return value
    root = SafeET.fromstring(body, forbid_dtd=True)
    return {"type": root.tag, "id": root.get("id"), "data": xml_decode(root)}


# -- what it keeps ----------------------------------------------------------------------------------------
@dataclass
class Stored:
    key: str
    type: str
    data: Any
    reference: str
    status: int
    answer: bytes
    content_type: str


@dataclass
class _Scripted:
    status: int
    body: bytes | None = None       # None: the stand-in's own answer with the reason
    reason: str = ""
    content_type: str | None = None
    outcome: str = "failed"


class WmsStandIn(LoopbackServer):
    name = "wms-standin"

    def __init__(self, fmt: str = "json", *, secret: str, warehouse: str = "WH-SH", oms_url: str | None = None,
                 check_freshness: bool = True) -> None:
        if fmt not in CONTENT_TYPES:
            raise ValueError(f"format must be json or xml, not {fmt!r}")
        super().__init__(secret=secret, oms_url=oms_url)
        self.fmt, self.warehouse = fmt, warehouse
        self.content_type = CONTENT_TYPES[fmt]
        self.check_freshness = check_freshness
        self.delay = 0.0                                # seconds to wait before answering a document
        self.documents: dict[str, Stored] = {}          # by idempotency key, in the order created
        self._script: list[_Scripted] = []
        self._callbacks = 0

    # -- how it answers next ------------------------------------------------------------------------------
    def fail(self, times: int = 1, *, status: int = 503, reason: str = "the warehouse system is busy") -> None:
        """The next ``times`` documents are answered ``status`` and not stored."""
        with self._lock:
            self._script += [_Scripted(status, reason=reason) for _ in range(times)]

    def refuse(self, times: int = 1, *, status: int = 422, reason: str = "refused") -> None:
        with self._lock:
            self._script += [_Scripted(status, reason=reason, outcome="refused") for _ in range(times)]

    def malformed(self, times: int = 1, *, body: bytes = b'{"status": "acc', status: int = 200) -> None:
        """The next documents get a 2xx whose body cannot be read (and are not stored)."""
        with self._lock:
            self._script += [_Scripted(status, body=body, outcome="malformed") for _ in range(times)]

    def answer_with(self, body: bytes, *, status: int = 200, content_type: str | None = None, times: int = 1) -> None:
        """The next documents get exactly these bytes (an XML bomb, an external entity...)."""
        with self._lock:
            self._script += [_Scripted(status, body=body, content_type=content_type, outcome="raw")
                             for _ in range(times)]

    # -- what it got ---------------------------------------------------------------------------------
    def docs(self, doc_type: str | None = None) -> list[Stored]:
        with self._lock:
            return [d for d in self.documents.values() if doc_type is None or d.type == doc_type]

    def requests(self, doc_type: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.method == "POST" and (doc_type is None or r.type == doc_type)]

    # -- the server side --------------------------------------------------------------------------------
    def _answer_body(self, key: str, status: str, **fields: str) -> bytes:
        if self.fmt == "json":
            return json.dumps({"id": key, "status": status, **fields}).encode()
        root = ET.Element("answer", {"id": key})
        ET.SubElement(root, "status").text = status
        for name, value in fields.items():
            ET.SubElement(root, name).text = value
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8",
                                                                        xml_declaration=False)

    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        key = rec.headers.get("idempotency-key", "")
        rec.key = key
        if rec.method != "POST" or urlsplit(rec.path).path != "/documents":
            rec.outcome = "unknown path"
            return 404, self._answer_body(key, "refused", reason=f"no {rec.method} {rec.path}"), self.content_type, 0
        rec.signed = signed_by(self.secret, rec.headers, rec.body, check_freshness=self.check_freshness)
        if not rec.signed:
            rec.outcome = "unsigned"
            return 401, self._answer_body(key, "refused", reason="bad signature"), self.content_type, 0
        try:
            doc = decode(self.fmt, rec.body)
            rec.type, rec.data = str(doc.get("type") or ""), doc.get("data")
        except Exception as exc:
            rec.outcome = "unreadable"
            return 400, self._answer_body(key, "refused", reason=f"unreadable document: {exc}"), self.content_type, 0
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
        if scripted is not None:
            rec.outcome = scripted.outcome
            body = scripted.body if scripted.body is not None else self._answer_body(
                key, "refused" if scripted.outcome == "refused" else "error", reason=scripted.reason)
            return scripted.status, body, scripted.content_type or self.content_type, 0
        if not key or doc.get("id") != key:
            rec.outcome = "refused"
            return 400, self._answer_body(key, "refused", reason="the Idempotency-Key is not the document's id"), \
                self.content_type, 0
        missing = _readdress_missing(rec.data) if rec.type == "readdress" else ""
        if missing:
            rec.outcome = "refused"
            return 422, self._answer_body(key, "refused", reason=missing), self.content_type, 0
        with self._lock:
            stored = self.documents.get(key)
            if stored is None:
                reference = f"WMS-{len(self.documents) + 1:06d}"
                answer = self._answer_body(key, "accepted", reference=reference)
                self.documents[key] = Stored(key, rec.type, rec.data, reference, 200, answer, self.content_type)
                rec.outcome = "created"
                return 200, answer, self.content_type, self.delay
        rec.outcome = "duplicate"
        return stored.status, stored.answer, stored.content_type, self.delay

    # -- calling the OMS back -------------------------------------------------------------------------
    def next_callback_id(self) -> str:
        with self._lock:
            self._callbacks += 1
            return f"CB-{self.port}-{self._callbacks}"

    def encode_callback(self, cb_type: str, data: Mapping[str, Any], cb_id: str) -> bytes:
        if self.fmt == "json":
            return json.dumps({"type": cb_type, "id": cb_id, "data": dict(data)}).encode()
        return xml_encode(cb_type, cb_id, data)

    def post_callback(self, body: bytes, *, oms_url: str | None = None, secret: str | None = None,
                      timestamp: int | None = None, headers: Mapping[str, str] | None = None,
                      signed: bool = True) -> Sent:
        """Send these bytes to the OMS as a callback from this warehouse, signed (unless told otherwise)."""
        return self._call_back(f"/api/wms/{self.warehouse}/callbacks", body, content_type=self.content_type,
                               signed_as="X-WMS", oms_url=oms_url, secret=secret, timestamp=timestamp,
                               headers=headers, signed=signed)

    def callback(self, cb_type: str, data: Mapping[str, Any], *, cb_id: str | None = None, **kw: Any) -> Sent:
        return self.post_callback(self.encode_callback(cb_type, data, cb_id or self.next_callback_id()), **kw)

    def order_status(self, number: str, status: str, *, tracking_no: str | None = None, carrier: str | None = None,
                     place: str | None = None, at: str | None = None, **kw: Any) -> Sent:
        data: dict[str, Any] = {"order_number": number, "status": status,
                                "at": at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        for name, value in (("tracking_no", tracking_no), ("carrier", carrier), ("place", place)):
            if value is not None:
                data[name] = value
        return self.callback("order_status", data, **kw)

    def ship(self, number: str, *, tracking_no: str = "SF1000001", **kw: Any) -> list[Sent]:
        """ACCEPTED, PICKING, PACKED, then SHIPPED with a tracking number."""
        out = [self.order_status(number, st, **kw) for st in ("ACCEPTED", "PICKING", "PACKED")]
        out.append(self.order_status(number, "SHIPPED", tracking_no=tracking_no, carrier="SF", place="Shanghai DC",
                                     **kw))
        return out

    def receipt(self, document: str, lines: Mapping[str, int], **kw: Any) -> Sent:
        return self.callback("receipt", {"document": document, "at": "2026-11-02T10:00:00Z",
                                         "lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}, **kw)

    def shipped_out(self, document: str, lines: Mapping[str, int], **kw: Any) -> Sent:
        return self.callback("shipped_out", {"document": document,
                                             "lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}, **kw)

    def ack(self, document: str, *, accepted: bool = True, reason: str = "", **kw: Any) -> Sent:
        return self.callback("ack", {"document": document, "accepted": accepted, "reason": reason}, **kw)

    def readdress_asked(self) -> list[Stored]:
        """The new addresses the OMS asked for, oldest first (each once, however often it was sent)."""
        return self.docs("readdress")

    def answer_readdress(self, asked: Stored, *, accepted: bool = True, reason: str = "",
                         status: str | None = None, **kw: Any) -> Sent:
        """The warehouse's answer to a readdress document it was sent: accepted, or refused with a reason
        (``status``: another word, e.g. "duplicate")."""
        data = {"order_number": asked.data["order_number"], "request": asked.data["request"],
                "status": status or ("accepted" if accepted else "refused"), "reason": reason}
        return self.callback("readdress", data, **kw)


def _readdress_missing(data: Any) -> str:
    """What a readdress document lacks for a warehouse to act on it ("" : nothing)."""
    if not isinstance(data, dict):
        return "a readdress document is an object"
    for name in ("order_number", "document", "warehouse"):
        if not isinstance(data.get(name), str) or not data[name]:
            return f"a readdress document names its {name}"
    if not isinstance(data.get("ship_to"), dict) or not data["ship_to"].get("line1"):
        return "a readdress document carries the new address (ship_to, with line1)"
    if isinstance(data.get("request"), bool) or not isinstance(data.get("request"), int):
        return "a readdress document carries the request's id (a whole number) to answer with"
    return ""


# Hostile XML: a billion laughs (entities expanding to gigabytes) and an external entity (a file, a URL).
def xml_bomb(root: str = "answer") -> bytes:
    lines = ['<?xml version="1.0"?>', f"<!DOCTYPE {root} [", '<!ENTITY lol "lol">']
    lines += [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    lines += ["]>", f'<{root} id="bomb"><status>&lol9;</status><order_number>&lol9;</order_number></{root}>']
    return "\n".join(lines).encode()


def external_entity(url: str, root: str = "answer") -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "{url}">]>\n'
            f'<{root} id="xxe"><status>&xxe;</status><order_number>&xxe;</order_number></{root}>').encode()


@contextmanager
def wms_standin(fmt: str = "json", **kw: Any) -> Iterator[WmsStandIn]:
    standin = WmsStandIn(fmt, **kw).start()
    try:
        yield standin
    finally:
        standin.close()


__all__ = ["Received", "Sent", "Stored", "WmsStandIn", "decode", "external_entity", "sign", "wms_standin",
           "xml_bomb", "xml_decode", "xml_encode"]

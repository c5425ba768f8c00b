"""The WMS connectors over HTTP (wms_json, wms_xml) against a stand-in WMS (tests/support/wms_standin.py)
and the OMS's own admin API on loopback: documents out, signed; answers and callbacks in, over real HTTP;
every byte on record."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from oms_engine import CallbackEvent, OutboundMessage, SettingsError
from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, LineIn
from oms_engine.masterdata.files import Row
from oms_engine.plugin.testing import OrderBuilder, ingest_one, show_order, status
from oms_engine.storage.models import Exchange, InboxMessage, OutboxMessage, TrackingEvent
from oms_engine.web.app import create_app
from oms_plugins.connectors.wms_http import CALLBACK_TYPES, TYPES, WmsError, read_settings, signature
from oms_plugins.connectors.wms_json import JsonWms
from oms_plugins.connectors.wms_xml import XmlWms
from tests.support import ROOT
from tests.support.web import TOKENS, ApiServer
from tests.support.wms_standin import WmsStandIn, decode, external_entity, sign, xml_bomb

SECRET = "wms-secret-for-shanghai"
SECRET_ENV = "OMS_WMS_SECRET_SH"
FORMATS = ["json", "xml"]
CONNECTORS = {"json": JsonWms, "xml": XmlWms}


@dataclass
class World:
    """An OMS whose WH-SH is run by a stand-in WMS speaking ``fmt``, and the OMS's API on loopback."""

    oms: OMS
    api: ApiServer
    wms: WmsStandIn
    fmt: str

    @property
    def connector(self) -> str:
        return f"wms_{self.fmt}"

    def connect(self, **settings: Any) -> None:
        """WH-SH's documents go to the stand-in through this world's connector."""
        wms_settings = {"url": self.wms.url, "secret_env": SECRET_ENV, "timeout": 2, **settings}
        self.oms.masterdata.apply("warehouses", [Row("t", {"code": "WH-SH", "wms_connector": self.connector,
                                                           "wms_settings": wms_settings})],
                                  actor="t", source="t", merge=True)

    def order(self, external_id: str, *lines: tuple[str, int]) -> str:
        builder = OrderBuilder(external_id)
        for sku, qty in lines or (("TEA-1", 2),):
            builder.line(sku, qty)
        number = ingest_one(self.oms, builder.build()).number
        assert number is not None
        return number

    def run(self) -> None:
        self.oms.pipeline.run_until_idle()

    def next_attempt(self) -> None:
        """Move the simulated clock to the next retry (or other timer), and run."""
        due = self.oms.pipeline.next_due()
        assert due is not None, "nothing is due"
        self.oms.clock.advance_to(due)  # type: ignore[attr-defined]
        self.run()

    def message(self, number: str, topic: str = "wms.create") -> SimpleNamespace:
        with self.oms.db.read() as s:
            m = s.scalars(select(OutboxMessage).where(OutboxMessage.order_number == number,
                                                      OutboxMessage.topic == topic)).one()
            return SimpleNamespace(id=m.id, status=m.status, attempts=m.attempts, last_error=m.last_error)

    def exchanges(self, kind: str | None = None) -> list[SimpleNamespace]:
        with self.oms.db.read() as s:
            stmt = select(Exchange).order_by(Exchange.id)
            if kind:
                stmt = stmt.where(Exchange.kind == kind)
            return [SimpleNamespace(direction=x.direction, kind=x.kind, status=x.status, body=bytes(x.body),
                                    correlation_id=x.correlation_id, message_id=x.message_id, topic=x.topic,
                                    connector=x.connector, warehouse=x.warehouse, note=x.note,
                                    content_type=x.content_type, order_number=x.order_number)
                    for x in s.scalars(stmt)]

    def inbox(self) -> list[SimpleNamespace]:
        """The WMS's callbacks (the simulated tax platform's answers about the orders' invoices left out)."""
        with self.oms.db.read() as s:
            return [SimpleNamespace(id=m.id, status=m.status, outcome=m.outcome, correlation_id=m.correlation_id)
                    for m in s.scalars(select(InboxMessage).where(InboxMessage.source == self.connector)
                                       .order_by(InboxMessage.id))]

    def on_hand(self, sku: str, warehouse: str = "WH-SH") -> int:
        [row] = self.oms.stock.balances(warehouse=warehouse, sku=sku)
        return int(row["on_hand"])


@contextmanager
def world(oms: OMS, fmt: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    api = ApiServer(create_app(oms, tokens=TOKENS))
    try:
        with WmsStandIn(fmt, secret=SECRET, oms_url=f"http://127.0.0.1:{api.port}") as wms:
            w = World(oms, api, wms, fmt)
            w.connect()
            yield w
    finally:
        api.close()


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def w(sqlite_oms: OMS, fmt: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with world(sqlite_oms, fmt, monkeypatch) as made:
        yield made


@pytest.fixture
def w_any(oms: OMS, fmt: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The world on SQLite and on PostgreSQL."""
    with world(oms, fmt, monkeypatch) as made:
        yield made


# -- an order's life -------------------------------------------------------------------------------------
def test_an_order_is_sent_signed_recorded_byte_for_byte_and_shipped_by_callbacks(w_any: World) -> None:
    w = w_any
    number = w.order("E2E-1", ("TEA-1", 2))
    w.run()
    assert status(w.oms, number) == "dispatched"
    msg = w.message(number)
    assert msg.status == "sent"

    # The item went first, then the order, each signed, keyed and correlated with the message.
    got = w.wms.requests()
    assert [(r.type, r.outcome) for r in got] == [("item", "created"), ("sales_order", "created")]
    item, order = got
    assert item.data["sku"] == "TEA-1" and item.data["version"] == 1
    assert order.data["order_number"] == number and order.data["warehouse"] == "WH-SH"
    assert [(ln["sku"], ln["quantity"]) for ln in order.data["lines"]] == [("TEA-1", 2)]
    assert "master" not in order.data
    for r in got:
        assert r.signed and r.headers["content-type"] == f"application/{w.fmt}"
        assert r.headers["x-correlation-id"] == str(msg.id)
        assert r.headers["x-oms-signature"] == sign(SECRET, r.headers["x-oms-timestamp"], r.body)
    assert order.key == f"oms-msg-{msg.id}"
    assert item.key == "oms-item-WH-SH-TEA-1-v1"

    # What the OMS recorded is what went over the wire, both ways, byte for byte.
    sent = [x for x in w.exchanges() if x.kind in ("request", "response")]
    assert [(x.direction, x.kind, x.status) for x in sent] == [("out", "request", None), ("in", "response", 200)] * 2
    assert [x.body for x in sent if x.kind == "request"] == [r.body for r in got]
    assert [x.body for x in sent if x.kind == "response"] == [r.answer for r in got]
    assert {(x.connector, x.warehouse, x.order_number, x.topic, x.message_id, x.correlation_id) for x in sent} == {
        (w.connector, "WH-SH", number, "wms.create", msg.id, str(msg.id))}
    assert show_order(w.oms, number)["exchanges"][1]["body"] == got[0].answer.decode()

    # The WMS reports each step over HTTP; the OMS takes them in and the order ships.
    replies = w.wms.ship(number, tracking_no="SF7700001")
    assert [r.status for r in replies] == [202] * 4
    w.run()
    assert status(w.oms, number) == "shipped"
    info = show_order(w.oms, number)
    assert (info["tracking_no"], info["carrier"]) == ("SF7700001", "SF")
    assert [m.status for m in w.inbox()] == ["applied"] * 4
    callbacks = w.exchanges("callback")
    assert [x.body for x in callbacks] == [s.body for s in w.wms.sent]
    assert [x.correlation_id for x in callbacks] == [r.json["callback_id"] for r in replies]
    with w.oms.db.read() as s:
        [shipped] = s.scalars(select(TrackingEvent).where(TrackingEvent.status == "SHIPPED")).all()
        assert (shipped.place, shipped.tracking_no) == ("Shanghai DC", "SF7700001")


def test_oms_order_show_lists_the_callbacks_of_the_order(w: World) -> None:
    number = w.order("SHOW-1")
    w.run()
    w.wms.ship(number)
    w.run()
    assert status(w.oms, number) == "shipped"
    listed = [x["body"].encode() for x in show_order(w.oms, number)["exchanges"] if x["kind"] == "callback"]
    assert listed == [s.body for s in w.wms.sent]


def test_items_go_before_the_first_document_naming_them_and_again_only_when_they_change(w: World) -> None:
    first = w.order("M-1", ("TEA-1", 1))
    w.run()
    second = w.order("M-2", ("TEA-1", 1), ("MUG-1", 1))
    w.run()
    assert show_order(w.oms, second)["warehouse"] == "WH-SH"
    assert [(r.type, r.key) for r in w.wms.requests()] == [
        ("item", "oms-item-WH-SH-TEA-1-v1"), ("sales_order", f"oms-msg-{w.message(first).id}"),
        ("item", "oms-item-WH-SH-MUG-1-v1"), ("sales_order", f"oms-msg-{w.message(second).id}")]

    # The product changes: the WMS is sent the new version on its own, once.
    w.oms.masterdata.apply("products", [Row("t", {"sku": "TEA-1", "name": "Tea, first flush"})], actor="t",
                           source="t", merge=True)
    w.run()
    w.run()
    third = w.order("M-3", ("TEA-1", 1))
    w.run()
    tail = [(r.type, r.key) for r in w.wms.requests()][4:]
    assert tail == [("item", "oms-item-WH-SH-TEA-1-v2"), ("sales_order", f"oms-msg-{w.message(third).id}")]
    assert w.wms.docs("item")[-1].data["name"] == "Tea, first flush"
    assert {status(w.oms, n) for n in (first, second, third)} == {"dispatched"}


# -- goods in and out --------------------------------------------------------------------------------------
def test_a_purchase_order_is_received_with_the_quantities_the_wms_counted(w: World) -> None:
    w.oms.masterdata.apply("suppliers", [Row("t", {"code": "SUP-1", "name": "Tea Gardens Ltd"})], actor="t",
                           source="t")
    po = w.oms.documents.create(DocKind.PURCHASE_ORDER, "WH-SH", [LineIn("TEA-1", 5, "10.00")], actor="t",
                                supplier="SUP-1")["number"]
    w.run()
    assert [(r.type, r.outcome) for r in w.wms.requests()] == [
        ("item", "created"), ("supplier", "created"), ("purchase_order", "created")]
    [doc] = w.wms.docs("purchase_order")
    assert doc.data["document"] == po and doc.data["supplier"] == "SUP-1"
    assert [(ln["sku"], ln["quantity"]) for ln in doc.data["lines"]] == [("TEA-1", 5)]
    assert w.wms.docs("supplier")[0].data["code"] == "SUP-1"

    before = w.on_hand("TEA-1")
    assert w.wms.ack(po).status == 202
    assert w.wms.receipt(po, {"TEA-1": 4}).status == 202
    w.run()
    assert [(m.status, m.outcome) for m in w.inbox()] == [
        ("applied", f"{po} accepted by the warehouse"), ("applied", f"{po} received 4 TEA-1 at 10.00 -> partial")]
    assert w.on_hand("TEA-1") == before + 4
    assert w.oms.documents.get(po)["lines"][0]["done"] == 4
    [movement] = w.oms.stock.ledger(warehouse="WH-SH", sku="TEA-1", kind="purchase_receipt")
    assert (movement["document"], movement["on_hand_delta"], movement["unit_cost"]) == (po, 4, 1000)

    # Goods sent back to the supplier: posted when the WMS says they left.
    rtv = w.oms.documents.create(DocKind.RETURN_TO_VENDOR, "WH-SH", [LineIn("TEA-1", 3)], actor="t",
                                 supplier="SUP-1")["number"]
    w.run()
    assert [r.type for r in w.wms.requests()][3:] == ["return_to_vendor"]   # item and supplier known by now
    w.wms.shipped_out(rtv, {"TEA-1": 3})
    w.run()
    assert w.inbox()[-1].status == "applied"
    assert w.on_hand("TEA-1") == before + 1
    assert w.oms.documents.get(rtv)["status"] == "done"
    assert w.oms.stock.verify().ok


def test_a_refusing_ack_marks_the_document_refused(w: World) -> None:
    w.oms.masterdata.apply("suppliers", [Row("t", {"code": "SUP-2", "name": "Mugs & Co"})], actor="t", source="t")
    po = w.oms.documents.create(DocKind.PURCHASE_ORDER, "WH-SH", [LineIn("MUG-1", 2)], actor="t",
                                supplier="SUP-2")["number"]
    w.run()
    w.wms.ack(po, accepted=False, reason="supplier not approved at this site")
    w.run()
    assert w.inbox()[-1].outcome == f"{po} refused by the warehouse: supplier not approved at this site"
    assert w.oms.documents.get(po)["status"] == "refused"


# -- failures, retries, dead letters ---------------------------------------------------------------------
def test_a_5xx_is_retried_and_then_the_document_goes(w: World) -> None:
    w.wms.fail(1, status=503, reason="maintenance window until 10:00")
    number = w.order("R-1")
    w.run()
    msg = w.message(number)
    assert (msg.status, msg.attempts) == ("pending", 1)
    assert "503 Service Unavailable: maintenance window until 10:00" in msg.last_error
    assert status(w.oms, number) == "routed"
    failed = w.exchanges()
    assert [(x.kind, x.status) for x in failed] == [("request", None), ("response", 503)]
    assert failed[1].body == w.wms.received[0].answer

    w.next_attempt()
    assert w.message(number).status == "sent"
    assert status(w.oms, number) == "dispatched"
    assert [(r.type, r.outcome) for r in w.wms.requests()] == [
        ("item", "failed"), ("item", "created"), ("sales_order", "created")]


def test_a_refusal_is_retried_and_says_why(w: World) -> None:
    w.wms.refuse(1, status=422, reason="ship_to.postcode 200120 is outside our delivery area")
    number = w.order("R-2")
    w.run()
    error = w.message(number).last_error
    assert "422 Unprocessable" in error and "ship_to.postcode 200120 is outside our delivery area" in error
    w.next_attempt()
    assert status(w.oms, number) == "dispatched"


def test_a_malformed_answer_fails_and_is_retried(w: World) -> None:
    w.wms.malformed(1, body=b'{"status": "acc' if w.fmt == "json" else b"<answer><status>accepted</answer>")
    number = w.order("R-3")
    w.run()
    msg = w.message(number)
    assert msg.status == "pending" and "200 OK with a malformed body" in msg.last_error
    assert ("not JSON" if w.fmt == "json" else "not well-formed XML") in msg.last_error
    assert w.exchanges()[1].body == w.wms.received[0].answer
    w.next_attempt()
    assert status(w.oms, number) == "dispatched"


def test_a_wms_slower_than_the_timeout_fails_and_the_retry_creates_no_second_document(w: World) -> None:
    w.connect(timeout=0.2)
    w.wms.delay = 1.0
    number = w.order("S-1")
    started = time.monotonic()
    w.run()
    assert time.monotonic() - started < 1.0
    msg = w.message(number)
    assert msg.status == "pending" and "timed out after 0.2 s" in msg.last_error
    answer = w.exchanges()[1]
    assert (answer.direction, answer.kind, answer.status, answer.body) == ("in", "response", None, b"")
    assert "no answer: timed out" in answer.note

    w.wms.delay = 0
    w.next_attempt()
    assert status(w.oms, number) == "dispatched"
    # The item the WMS took while the OMS gave up waiting was answered again, not stored twice.
    assert [(r.type, r.outcome) for r in w.wms.requests()] == [
        ("item", "created"), ("item", "duplicate"), ("sales_order", "created")]
    assert len(w.wms.docs()) == 2


def test_dead_after_eight_failures_and_a_requeue_creates_no_second_document(w: World) -> None:
    first = w.order("D-1")
    w.run()
    assert status(w.oms, first) == "dispatched"
    w.connect(timeout=0.15)
    w.wms.delay = 1.0     # the WMS takes the document at once but answers too late, every time
    number = w.order("D-2")
    w.run()
    for _ in range(20):
        if w.message(number).status == "dead":
            break
        w.next_attempt()
    msg = w.message(number)
    assert (msg.status, msg.attempts) == ("dead", 8)
    assert "timed out" in msg.last_error
    key = f"oms-msg-{msg.id}"
    assert [r.outcome for r in w.wms.requests() if r.key == key] == ["created"] + ["duplicate"] * 7
    assert [d["id"] for d in w.oms.dead_letters.list()] == [msg.id]

    w.wms.delay = 0
    w.oms.dead_letters.requeue(msg.id, actor="ops")
    w.run()
    assert w.message(number).status == "sent"
    assert status(w.oms, number) == "dispatched"
    assert [d.key for d in w.wms.docs("sales_order")] == [f"oms-msg-{w.message(first).id}", key]
    [last] = [r for r in w.wms.requests() if r.key == key][-1:]
    assert last.outcome == "duplicate" and last.status == 200


def test_a_wms_that_is_not_listening_is_retried(w: World) -> None:
    w.connect(url="http://127.0.0.1:9")
    number = w.order("C-1")
    w.run()
    msg = w.message(number)
    assert msg.status == "pending" and "ConnectError" in msg.last_error
    assert "no answer: ConnectError" in w.exchanges()[-1].note


def test_missing_settings_are_named(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w.oms.masterdata.apply("warehouses", [Row("t", {"code": "WH-SH", "wms_settings": {"secret_env": SECRET_ENV}})],
                           actor="t", source="t", merge=True)
    number = w.order("N-1")
    w.run()
    assert "wms_settings need 'url'" in w.message(number).last_error
    connector = CONNECTORS[w.fmt]()
    message = OutboundMessage(1, "1", "wms.cancel", {"order_number": "1", "warehouse": "WH-SH"}, "WH-SH",
                              {"url": w.wms.url})
    with pytest.raises(SettingsError, match="need 'secret_env'"):
        connector.send(message, None)  # type: ignore[arg-type]
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(SettingsError, match=f"{SECRET_ENV} .* is not set"):
        connector.send(OutboundMessage(1, "1", "wms.cancel", {}, "WH-SH", {"url": w.wms.url,
                                                                            "secret_env": SECRET_ENV}), None)  # type: ignore[arg-type]
    assert w.wms.requests() == []


@pytest.mark.parametrize(("settings", "problem"), [
    ({"url": "ftp://wms.example.com"}, "must be an http:// or https:// address"),
    ({"url": "https://wms.example.com", "timeout": 0}, "'timeout' must be a number of seconds above 0"),
    ({"url": "https://wms.example.com", "timeout": "soon"}, "'timeout' must be a number of seconds above 0"),
    ({"url": "https://wms.example.com", "timeout": True}, "'timeout' must be a number of seconds above 0"),
])
def test_wrong_settings_are_named(settings: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with pytest.raises(SettingsError, match=re.escape(problem)):
        read_settings("wms_json", {"secret_env": SECRET_ENV, **settings}, "WH-SH")
    # A number of seconds may come as text (a CSV file, the command line).
    cfg = read_settings("wms_json", {"url": "https://wms.example.com/api/", "secret_env": SECRET_ENV,
                                     "timeout": "2.5"}, "WH-SH")
    assert (cfg.endpoint, cfg.timeout, cfg.secret) == ("https://wms.example.com/api/documents", 2.5, SECRET)


@pytest.mark.parametrize("hostile", ["bomb", "external_entity"])
def test_xml_bomb_or_external_entity_in_an_answer_is_refused(sqlite_oms: OMS, monkeypatch: pytest.MonkeyPatch,
                                                              hostile: str) -> None:
    with world(sqlite_oms, "xml", monkeypatch) as w:
        body = xml_bomb() if hostile == "bomb" else external_entity(f"{w.wms.url}/xxe")
        w.wms.answer_with(body, content_type="application/xml")
        number = w.order("X-1")
        started = time.monotonic()
        w.run()
        assert time.monotonic() - started < 2
        error = w.message(number).last_error
        assert "malformed body: the answer is refused: it has a document type declaration" in error
        assert w.exchanges()[1].body == body
        assert [r.method for r in w.wms.received] == ["POST"]   # the external entity was never fetched
        w.next_attempt()
        assert status(w.oms, number) == "dispatched"


# -- callbacks --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hostile", ["bomb", "external_entity"])
def test_xml_bomb_or_external_entity_in_a_callback_is_refused(w: World, hostile: str) -> None:
    number = w.order("X-2")
    w.run()
    root = "order_status"
    body = xml_bomb(root) if hostile == "bomb" else external_entity(f"{w.wms.url}/xxe", root)
    reply = w.wms.post_callback(body)
    assert reply.status == 202      # signed by the warehouse: kept as it came, then refused when read
    w.run()
    [row] = w.inbox()
    assert row.status == "rejected"
    expected = "not JSON" if w.fmt == "json" else "it has a document type declaration (<!DOCTYPE order_status>)"
    assert expected in row.outcome
    assert status(w.oms, number) == "dispatched"
    assert [r.method for r in w.wms.received] == ["POST", "POST"]   # nothing fetched
    assert w.exchanges("callback")[0].body == body


def _tamper(w: World, how: str) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    body = w.wms.encode_callback("order_status", {"order_number": "1", "status": "ACCEPTED"}, "CB-T")
    ts = str(int(time.time()))
    good = {"X-WMS-Timestamp": ts, "X-WMS-Signature": sign(SECRET, ts, body)}
    if how == "wrong secret":
        return body, {}, {"secret": "not-the-secret"}
    if how == "stale":
        return body, {}, {"timestamp": int(time.time()) - 301}
    if how == "from the future":
        # A minute past the 300 s allowed: the callback may reach the server seconds after it was signed.
        return body, {}, {"timestamp": int(time.time()) + 360}
    if how == "unsigned":
        return body, {}, {"signed": False}
    if how == "body changed":
        return body.replace(b"ACCEPTED", b"SHIPPED"), good, {"signed": False}
    if how == "timestamp changed":
        return body, {**good, "X-WMS-Timestamp": str(int(ts) + 1)}, {"signed": False}
    assert how == "signature not ascii"
    return body, {**good, "X-WMS-Signature": "sha256=\u00e9"}, {"signed": False}


@pytest.mark.parametrize("how", ["wrong secret", "stale", "from the future", "unsigned", "body changed",
                                 "timestamp changed", "signature not ascii"])
def test_a_badly_signed_callback_gets_401_and_nothing_is_stored(w: World, how: str) -> None:
    body, headers, options = _tamper(w, how)
    reply = w.wms.post_callback(body, headers=headers, **options)
    assert reply.status == 401, reply.answer
    assert w.inbox() == [] and w.exchanges("callback") == []


def test_duplicate_out_of_order_and_unknown_statuses_are_recorded_as_such(w: World) -> None:
    number = w.order("CB-1")
    w.run()
    first = w.wms.order_status(number, "ACCEPTED", cb_id="CB-ACC-1")
    again = w.wms.order_status(number, "ACCEPTED", cb_id="CB-ACC-1")
    assert (first.status, again.status) == (202, 202)
    assert first.json["callback_id"] == again.json["callback_id"] == "CB-ACC-1"
    w.wms.order_status(number, "PICKING")
    w.wms.order_status(number, "PACKED")
    w.wms.order_status(number, "PICKING")          # late: the order is packed already
    w.wms.order_status(number, "TELEPORTED")       # not in the status map
    w.run()
    rows = w.inbox()
    assert [r.status for r in rows] == ["applied", "duplicate", "applied", "applied", "ignored", "rejected"]
    assert rows[1].outcome == f"duplicate of callback {rows[0].id} (id CB-ACC-1): nothing done"
    assert "out of order" in rows[4].outcome
    assert "'TELEPORTED'" in rows[5].outcome and "not in the status map" in rows[5].outcome
    assert status(w.oms, number) == "packed"


# -- the connectors on their own -----------------------------------------------------------------------
def _payload(body: bytes) -> dict[str, Any]:
    return {"body": body.decode(), "encoding": "utf-8", "content_type": "", "warehouse": "WH-SH"}


def _callback(fmt: str, cb_type: str, data: dict[str, Any], cb_id: str = "CB-9") -> bytes:
    return WmsStandIn(fmt, secret=SECRET).encode_callback(cb_type, data, cb_id)


@pytest.mark.parametrize("connector_fmt", FORMATS)
def test_callbacks_read_into_events(connector_fmt: str) -> None:
    c = CONNECTORS[connector_fmt]()
    at = "2026-11-02T10:15:00+08:00"
    [ev] = c.parse_callback(_payload(_callback(connector_fmt, "order_status", {
        "order_number": "100", "status": "SHIPPED", "tracking_no": "SF1", "carrier": "SF", "place": "Pudong",
        "at": at})))
    assert ev == CallbackEvent(order_number="100", status="SHIPPED", kind="order", id="CB-9",
                               data={"tracking_no": "SF1", "carrier": "SF", "place": "Pudong"},
                               at=ev.at)
    assert ev.at is not None and ev.at.isoformat() == at
    [ev] = c.parse_callback(_payload(_callback(connector_fmt, "receipt", {
        "document": "PO-000001", "lines": [{"sku": "TEA-1", "quantity": 4}]})))
    assert (ev.kind, ev.data) == ("receipt", {"document": "PO-000001", "lines": [{"sku": "TEA-1", "quantity": 4}]})
    # A customer return's damaged units, and a lot-tracked product's lot, come through as the WMS says them.
    [ev] = c.parse_callback(_payload(_callback(connector_fmt, "receipt", {
        "document": "RMA-000003", "lines": [{"sku": "TEA-1", "quantity": 1, "condition": "damaged"},
                                            {"sku": "MILK-1", "quantity": 2, "lot": "L7",
                                             "expires_on": "2027-01-31"}]})))
    assert ev.data["lines"] == [{"sku": "TEA-1", "quantity": 1, "condition": "damaged"},
                                {"sku": "MILK-1", "quantity": 2, "lot": "L7", "expires_on": "2027-01-31"}]
    [ev] = c.parse_callback(_payload(_callback(connector_fmt, "ack", {"document": "RTV-000002", "accepted": False,
                                                                      "reason": "no"})))
    assert (ev.kind, ev.status, ev.data) == ("ack", "REFUSED", {"document": "RTV-000002", "accepted": False,
                                                                "reason": "no"})
    assert c.callback_id({}, _callback(connector_fmt, "ack", {"document": "X", "accepted": True}, "CB-77")) == "CB-77"


def test_xml_callbacks_may_leave_out_the_type_attributes() -> None:
    body = (b'<?xml version="1.0"?><receipt id="CB-1"><document>PO-1</document><lines>'
            b"<line><sku>TEA-1</sku><quantity>3</quantity></line></lines></receipt>")
    [ev] = XmlWms().parse_callback(_payload(body))
    assert ev.data == {"document": "PO-1", "lines": [{"sku": "TEA-1", "quantity": 3}]}


@pytest.mark.parametrize(("connector_fmt", "cb_type", "data", "message"), [
    ("json", "order_status", {"status": "SHIPPED"}, "'order_number' is missing"),
    ("xml", "order_status", {"order_number": "1"}, "'status' is missing"),
    ("json", "receipt", {"document": "PO-1", "lines": []}, "'lines' must be a non-empty list"),
    ("xml", "receipt", {"document": "PO-1", "lines": [{"sku": "TEA-1", "quantity": 0}]},
     "'quantity' must be a positive whole number"),
    ("json", "receipt", {"document": "PO-1", "lines": [{"sku": "TEA-1", "quantity": "2"}]},
     "'quantity' must be a positive whole number"),
    ("xml", "shipped_out", {"lines": [{"sku": "TEA-1", "quantity": 1}]}, "'document' is missing"),
    ("json", "ack", {"document": "PO-1"}, "'accepted' must be true or false"),
    ("xml", "ack", {"accepted": True}, "names the 'document' or the 'order_number'"),
    ("json", "teleport", {"order_number": "1"}, "callback type 'teleport' is not one of"),
    ("xml", "order_status", {"order_number": "1", "status": "PACKED", "at": "yesterday"}, "not an ISO 8601 time"),
])
def test_a_malformed_callback_is_refused_saying_what_is_wrong(connector_fmt: str, cb_type: str,
                                                              data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONNECTORS[connector_fmt]().parse_callback(_payload(_callback(connector_fmt, cb_type, data)))


@pytest.mark.parametrize(("connector_fmt", "body", "message"), [
    ("json", b"", "the callback is empty"),
    ("json", b"[1, 2]", "must be a JSON object"),
    ("json", b'{"type": "ack", "type": "ack"}', "not JSON"),
    ("json", b'{"type": "ack", "id": "1", "data": []}', "'data' must be an object"),
    ("xml", b"<order_status><status>1</order_status>", "not well-formed XML"),
    ("xml", b'<ack id="1"><accepted type="boolean">maybe</accepted></ack>', "not true or false"),
    ("xml", b'<ack id="1"><document>a</document><document>b</document></ack>', "<document> appears twice"),
])
def test_an_unreadable_callback_is_refused(connector_fmt: str, body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONNECTORS[connector_fmt]().parse_callback(_payload(body))


@pytest.mark.parametrize("connector_fmt", FORMATS)
def test_verify_callback_checks_secret_body_and_time(connector_fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    now = 1_800_000_000
    c = CONNECTORS[connector_fmt](clock=lambda: now)
    settings = {"secret_env": SECRET_ENV}
    body = b"{}"

    def headers(ts: int, secret: str = SECRET, signed: bytes = body) -> dict[str, str]:
        return {"x-wms-timestamp": str(ts), "X-WMS-SIGNATURE": signature(secret, str(ts), signed)}

    assert c.verify_callback(headers(now), body, settings)
    assert c.verify_callback(headers(now - 300), body, settings)
    assert not c.verify_callback(headers(now - 301), body, settings)
    assert not c.verify_callback(headers(now + 301), body, settings)
    assert not c.verify_callback(headers(now, "other"), body, settings)
    assert not c.verify_callback(headers(now, signed=b"{ }"), body, settings)
    assert not c.verify_callback({}, body, settings)
    with pytest.raises(SettingsError):
        c.verify_callback(headers(now), body, {})


class _Ctx:
    """A context that keeps what the connector records."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    def record_exchange(self, **kw: Any) -> None:
        self.recorded.append(kw)


@pytest.mark.parametrize("connector_fmt", FORMATS)
def test_every_topic_is_one_keyed_post_and_a_resend_is_taken_once(connector_fmt: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    c = CONNECTORS[connector_fmt]()
    topics = {"wms.cancel": "cancel", "wms.intercept": "intercept", "wms.customer_return": "customer_return",
              "wms.return_to_vendor": "return_to_vendor", "master.supplier": "supplier", "master.item": "item"}
    with WmsStandIn(connector_fmt, secret=SECRET) as wms:
        settings = {"url": wms.url + "/", "secret_env": SECRET_ENV, "timeout": 2}
        for n, topic in enumerate(topics, start=1):
            payload = {"warehouse": "WH-SH", "order_number": "100", "document": f"D-{n}", "sku": "PEN-1",
                       "code": "SUP-9", "version": 3, "lines": [{"line_no": 1, "sku": "PEN-1", "quantity": 1}]}
            message = OutboundMessage(n, "100", topic, payload, "WH-SH", settings)
            ctx = _Ctx()
            c.send(message, ctx)   # type: ignore[arg-type]
            c.send(message, ctx)   # type: ignore[arg-type]
            assert [r["kind"] for r in ctx.recorded] == ["request", "response"] * 2
            assert [r["body"] for r in ctx.recorded if r["kind"] == "request"] == \
                [r.body for r in wms.received[-2:]]
        assert [d.type for d in wms.docs()] == list(topics.values())
        assert [r.outcome for r in wms.requests()] == ["created", "duplicate"] * len(topics)
        assert wms.docs("item")[0].key == "oms-item-WH-SH-PEN-1-v3"
        with pytest.raises(ValueError, match=re.escape("does not send topic 'carrier.register'")):
            c.send(OutboundMessage(99, "100", "carrier.register", {}, "WH-SH", settings), _Ctx())  # type: ignore[arg-type]


@pytest.mark.parametrize("connector_fmt", FORMATS)
def test_an_answer_about_another_document_or_with_an_odd_status_fails(connector_fmt: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    c = CONNECTORS[connector_fmt]()
    with WmsStandIn(connector_fmt, secret=SECRET) as wms:
        settings = {"url": wms.url, "secret_env": SECRET_ENV, "timeout": 2}
        message = OutboundMessage(5, "100", "wms.cancel", {"order_number": "100", "warehouse": "WH-SH"}, "WH-SH",
                                  settings)
        if connector_fmt == "json":
            other, odd = b'{"id": "oms-msg-6", "status": "accepted"}', b'{"status": "queued"}'
        else:
            other = b'<answer id="oms-msg-6"><status>accepted</status></answer>'
            odd = b"<answer><status>queued</status></answer>"
        wms.answer_with(other)
        with pytest.raises(WmsError, match="answered about document 'oms-msg-6', not 'oms-msg-5'"):
            c.send(message, _Ctx())  # type: ignore[arg-type]
        wms.answer_with(odd)
        with pytest.raises(WmsError, match="its answer says 'queued'"):
            c.send(message, _Ctx())  # type: ignore[arg-type]
        wms.answer_with(other.replace(b"accepted", b"duplicate").replace(b"oms-msg-6", b"oms-msg-5"), status=409)
        c.send(message, _Ctx())  # type: ignore[arg-type]   # 409 "duplicate": it has it already


def test_an_answer_trickling_in_past_the_timeout_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def trickle() -> Iterator[bytes]:
        for _ in range(20):     # each byte well within the read timeout, the whole far beyond it
            time.sleep(0.02)
            yield b" "
        yield b'{"status": "accepted"}'

    c = JsonWms(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=trickle())))
    message = OutboundMessage(7, "100", "wms.cancel", {"order_number": "100", "warehouse": "WH-SH"}, "WH-SH",
                              {"url": "http://wms.invalid", "secret_env": SECRET_ENV, "timeout": 0.1})
    ctx = _Ctx()
    started = time.monotonic()
    with pytest.raises(WmsError, match=re.escape("answer not complete 0.1 s after its headers")):
        c.send(message, ctx)  # type: ignore[arg-type]
    assert time.monotonic() - started < 0.3
    assert ctx.recorded[-1]["status"] == 200 and ctx.recorded[-1]["body"].strip() == b""


def test_the_connectors_are_built_in() -> None:
    from oms_engine.plugin.manager import DEFAULT_PLUGINS
    assert {"oms_plugins.connectors.wms_json", "oms_plugins.connectors.wms_xml"} <= set(DEFAULT_PLUGINS)


def test_exchange_rows_count_matches(w: World) -> None:
    """Every attempt is on record, the failed ones too: a request and its answer (or the note that none came)."""
    w.wms.fail(2)
    number = w.order("EX-1")
    w.run()
    w.next_attempt()
    w.next_attempt()
    assert status(w.oms, number) == "dispatched"
    with w.oms.db.read() as s:
        n = s.scalar(select(func.count()).select_from(Exchange))
    assert n == 2 * len(w.wms.received) == 8


# -- docs/connectors.md -------------------------------------------------------------------------------------
DOC_BLOCKS = re.findall(r"```(json|xml)\n(.*?)```", (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8"),
                        re.S)


def test_the_page_has_examples_of_both_formats() -> None:
    assert {lang for lang, _ in DOC_BLOCKS} == {"json", "xml"} and len(DOC_BLOCKS) >= 10


@pytest.mark.parametrize(("lang", "block"), DOC_BLOCKS, ids=[f"{lang}-{i}" for i, (lang, _) in enumerate(DOC_BLOCKS)])
def test_each_example_on_the_page_is_what_the_connectors_write_and_read(lang: str, block: str) -> None:
    body = block.encode()
    connector = CONNECTORS[lang]()
    parsed = decode(lang, body) if not block.lstrip().startswith("[") else None
    if parsed is None:      # the warehouse record of the settings section
        [record] = json.loads(block)
        assert record["wms_connector"] in ("wms_json", "wms_xml")
        assert set(record["wms_settings"]) >= {"url", "secret_env"}
    elif parsed.get("type") in TYPES.values():
        assert decode(lang, connector.encode(parsed["type"], parsed["id"], parsed["data"])) == parsed
    elif parsed.get("type") in CALLBACK_TYPES:
        events = connector.parse_callback(_payload(body))
        assert events and events[0].id == parsed["id"]
    else:
        assert connector.decode_answer(body)["status"] in ("accepted", "refused")

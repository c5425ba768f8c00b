"""The carrier connector over HTTP (carrier_json) against stand-in carriers (tests/support/carrier_standin.py) and the
OMS's own admin API on loopback: quotes asked and refused, parcels registered once, tracking events called back
signed, over real HTTP; a refusal, a failure or a slow answer from the first choice falls back to the next."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine import Address, CallbackEvent, OutboundMessage, Quote, ServiceView, SettingsError, Shipment
from oms_engine.engine import OMS
from oms_engine.fulfilment.status_map import load_status_map
from oms_engine.masterdata.files import Row
from oms_engine.orders.intake import MAX_PAYLOAD_BYTES
from oms_engine.plugin.testing import show_order, status
from oms_engine.storage.models import InboxMessage, OutboxMessage, TrackingEvent
from oms_plugins.connectors.carrier_http import (
    CarrierError,
    JsonCarrier,
    decimal,
    quote_request,
    read_quote,
    registration,
)
from oms_plugins.connectors.wms_http import signature
from tests.fulfilment.test_wms_connectors import World as WmsWorld
from tests.fulfilment.test_wms_connectors import world as wms_world
from tests.support import ROOT
from tests.support.carrier_standin import JOURNEY, CarrierStandIn, carrier_standins, sign

__all__ = ["carrier_standins"]     # a fixture

SECRETS = {"SF": ("OMS_CARRIER_SECRET_SF", "sf-secret-1"), "JD": ("OMS_CARRIER_SECRET_JD", "jd-secret-2")}
SF_ENV, SF_SECRET = SECRETS["SF"]
READY = datetime(2026, 11, 3, 9, 0)
SERVICE = ServiceView("SF", "COLD", "SF Cold Chain", "carrier_json", {"cold_chain": True})


def _shipment(**kw: Any) -> Shipment:
    fields: dict[str, Any] = dict(
        reference="2611020000000001", orders=("2611020000000001",), warehouse="WH-SH",
        origin=Address(country="CN", region="Shanghai", city="Shanghai"),
        destination=Address(name="Li Lei", phone="13800000000", country="CN", region="Zhejiang", city="Hangzhou",
                            district="Xihu", line1="1 Lake Road", postcode="310000"),
        weight_g=1200, volume_cm3=3000, value=12990, currency="CNY", cold_chain=True, ready_at=READY)
    return Shipment(**{**fields, **kw})


def _settings(standin: CarrierStandIn, **kw: Any) -> dict[str, Any]:
    return {"url": standin.url, "secret_env": SF_ENV, "timeout": 2, **kw}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, secret in SECRETS.values():
        monkeypatch.setenv(env, secret)


@pytest.fixture
def sf(secrets: None, carrier_standins: Callable[..., CarrierStandIn]) -> CarrierStandIn:
    return carrier_standins(secret=SF_SECRET, carrier="SF")


class _Ctx:
    """A context that keeps what the connector records."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    def record_exchange(self, **kw: Any) -> None:
        self.recorded.append(kw)


# -- quotes --------------------------------------------------------------------------------------------------
def test_a_quote_is_a_signed_post_of_the_parcel_and_its_answer_is_read_exactly(sf: CarrierStandIn) -> None:
    sf.accept("12.50", eta="2026-11-04T18:00:00+08:00")
    quote = JsonCarrier().quote(_shipment(), SERVICE, _settings(sf))
    assert quote == Quote(True, price=1250, currency="CNY", eta=datetime(2026, 11, 4, 10, 0))

    [got] = sf.quotes()
    assert got.signed and got.outcome == "quoted"
    assert got.headers["x-oms-signature"] == sign(SF_SECRET, got.headers["x-oms-timestamp"], got.body)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-correlation-id"] == "2611020000000001"
    assert "idempotency-key" not in got.headers          # a quote changes nothing at the carrier
    assert got.data["service"] == {"carrier": "SF", "code": "COLD"}
    sent = got.data["shipment"]
    assert (sent["value"], sent["cod_amount"], sent["currency"]) == ("129.90", "0.00", "CNY")
    assert (sent["weight_g"], sent["cold_chain"], sent["ready_at"]) == (1200, True, "2026-11-03T09:00:00Z")
    # Where to, not who: no name, phone or street goes out for a quote.
    assert sent["destination"] == {"country": "CN", "region": "Zhejiang", "city": "Hangzhou", "district": "Xihu",
                                   "postcode": "310000"}


def test_a_quote_without_a_delivery_time_and_a_refusal_that_says_why(sf: CarrierStandIn) -> None:
    sf.accept("8.00", transit_hours=36)
    assert JsonCarrier().quote(_shipment(), SERVICE, _settings(sf)).eta == datetime(2026, 11, 4, 21, 0)
    sf.garbage(body=b'{"accepted": true, "price": "8.00", "eta": null}')
    assert JsonCarrier().quote(_shipment(), SERVICE, _settings(sf)) == Quote(True, price=800, currency="CNY")
    sf.refuse("out of area")
    assert JsonCarrier().quote(_shipment(), SERVICE, _settings(sf)) == Quote(False, reason="out of area")
    sf.garbage(body=b'{"accepted": false}')
    assert JsonCarrier().quote(_shipment(), SERVICE, _settings(sf)) == Quote(False, reason="no reason given")


@pytest.mark.parametrize("how", ["slow", "500", "garbage", "wrong secret", "not listening"])
def test_a_quote_that_cannot_be_had_raises_saying_why(sf: CarrierStandIn, how: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(sf)
    expected = {"slow": "no answer: timed out after 0.2 s",
                "500": "the carrier answered 500 Internal Server Error: the rating engine is down",
                "garbage": "the carrier answered 200 OK with a malformed quote: not a JSON object",
                "wrong secret": "the carrier answered 401 Unauthorized: bad signature",
                "not listening": "no answer: ConnectError"}[how]
    if how == "slow":
        sf.delay, settings["timeout"] = 1.0, 0.2
    elif how == "500":
        sf.fail(status=500, reason="the rating engine is down")
    elif how == "garbage":
        sf.garbage()
    elif how == "wrong secret":
        monkeypatch.setenv(SF_ENV, "not-the-secret")
    else:
        settings["url"] = "http://127.0.0.1:9"
    started = time.monotonic()
    with pytest.raises(CarrierError, match=re.escape(expected)) as raised:
        JsonCarrier().quote(_shipment(), SERVICE, settings)
    assert time.monotonic() - started < 0.9
    assert str(raised.value).startswith(f"carrier_json: quote from {settings['url']}/quotes: ")


@pytest.mark.parametrize(("answer", "problem"), [
    (b'{"price": "12.50"}', "'accepted' must be true or false, got None"),
    (b'{"accepted": "yes", "price": "12.50"}', "'accepted' must be true or false"),
    (b'{"accepted": true}', "'price': an amount is a decimal string"),
    (b'{"accepted": true, "price": 12.5}', "'price': an amount is a decimal string"),
    (b'{"accepted": true, "price": "12.505"}', "has more decimals than CNY allows"),
    (b'{"accepted": true, "price": "-1.00"}', "is negative"),
    (b'{"accepted": true, "price": "1e3"}', "is not a decimal amount"),
    (b'{"accepted": true, "price": "12.50", "currency": "USD"}', "quoted in 'USD', the shipment is in CNY"),
    (b'{"accepted": true, "price": "12.50", "eta": "tomorrow"}', "not an ISO 8601 time"),
    (b'{"accepted": true, "accepted": false}', "not a JSON object"),
    (b"[]", "not a JSON object"),
])
def test_a_malformed_quote_raises_saying_what_is_wrong(sf: CarrierStandIn, answer: bytes, problem: str) -> None:
    sf.garbage(body=answer)
    with pytest.raises(CarrierError, match=re.escape(problem)):
        JsonCarrier().quote(_shipment(), SERVICE, _settings(sf))


@pytest.mark.parametrize(("settings", "problem"), [
    ({"secret_env": SF_ENV}, "connector 'carrier_json' for carrier SF: the carrier's settings need 'url', the "
                             "carrier's base address"),
    ({"url": "ftp://carrier.example"}, "settings 'url' must be an http:// or https:// address"),
    ({"url": "https://carrier.example", "secret_env": SF_ENV, "timeout": 0}, "settings 'timeout' must be"),
    ({"url": "https://carrier.example"}, "need 'secret_env'"),
    ({"url": "https://carrier.example", "secret_env": "OMS_NO_SUCH_SECRET"}, "OMS_NO_SUCH_SECRET"),
])
def test_settings_missing_or_wrong_are_named(secrets: None, settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(problem)):
        JsonCarrier().quote(_shipment(), SERVICE, settings)


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (1250, "CNY", "12.50"), (5, "CNY", "0.05"), (0, "CNY", "0.00"), (1200, "JPY", "1200"), (1234, "KWD", "1.234")])
def test_amounts_go_out_as_decimal_strings(amount: int, currency: str, text: str) -> None:
    assert decimal(amount, currency) == text


# -- registering a parcel -------------------------------------------------------------------------------------
def _register(message_id: int, settings: dict[str, Any], number: str = "2611020000000001") -> OutboundMessage:
    payload = {"order_number": number, "orders": [number], "tracking_no": "JD0001", "carrier": "SF",
               "service": "COLD", "ship_to": {"name": "Li Lei", "city": "Hangzhou"}, "warehouse": "WH-SH",
               "weight_g": 1200, "value": 12990, "currency": "CNY", "deliver_from": None, "deliver_by": None}
    return OutboundMessage(message_id, number, "carrier.register", payload, None, settings)


def test_a_parcel_is_registered_once_whatever_is_sent_again(sf: CarrierStandIn) -> None:
    c, ctx = JsonCarrier(), _Ctx()
    c.send(_register(7, _settings(sf)), ctx)  # type: ignore[arg-type]
    c.send(_register(7, _settings(sf)), ctx)  # type: ignore[arg-type]   # the same message again: replayed
    c.send(_register(8, _settings(sf)), ctx)  # type: ignore[arg-type]   # the same parcel, another key: 409
    assert [(r.key, r.outcome, r.status) for r in sf.registrations()] == [
        ("oms-msg-7", "created", 201), ("oms-msg-7", "duplicate", 201), ("oms-msg-8", "already registered", 409)]
    [parcel] = sf.parcels.values()
    assert parcel.data["value"] == "129.90" and parcel.data["order_number"] == "2611020000000001"
    first = sf.registrations()[0]
    assert first.signed and first.headers["x-correlation-id"] == "7"
    assert json.loads(first.body)["id"] == "oms-msg-7" and json.loads(first.body)["type"] == "shipment"
    # Every request and answer as it went over the wire.
    assert [(r["direction"], r["kind"], r.get("status")) for r in ctx.recorded] == [
        ("out", "request", None), ("in", "response", 201)] * 2 + [("out", "request", None), ("in", "response", 409)]
    assert [r["body"] for r in ctx.recorded if r["kind"] == "request"] == [r.body for r in sf.registrations()]
    assert [r["body"] for r in ctx.recorded if r["kind"] == "response"] == [r.answer for r in sf.registrations()]


@pytest.mark.parametrize(("script", "problem"), [
    ({"status": 503, "reason": "maintenance"}, "the carrier answered 503 Service Unavailable: maintenance"),
    ({"status": 422, "reason": "postcode unknown"}, "422 Unprocessable"),
    ({"status": 409, "reason": "tracking number JD0001 belongs to another parcel"}, "409 Conflict: tracking number"),
])
def test_a_registration_the_carrier_does_not_take_raises(sf: CarrierStandIn, script: dict[str, Any],
                                                         problem: str) -> None:
    sf.fail(path="/shipments", **script)
    with pytest.raises(CarrierError, match=re.escape(problem)):
        JsonCarrier().send(_register(9, _settings(sf)), _Ctx())  # type: ignore[arg-type]
    assert sf.parcels == {}
    with pytest.raises(ValueError, match=re.escape("does not send topic 'wms.create'")):
        JsonCarrier().send(OutboundMessage(1, "1", "wms.create", {}, "WH-SH", _settings(sf)), _Ctx())  # type: ignore[arg-type]


# -- tracking callbacks, read on their own --------------------------------------------------------------------
def _stored(value: Any) -> dict[str, Any]:
    """An inbox payload as the callback route stores it."""
    return {"body": json.dumps(value), "encoding": "utf-8", "content_type": "application/json", "warehouse": None}


def test_tracking_events_read_into_callback_events() -> None:
    c = JsonCarrier()
    one = {"id": "EV-1", "order_number": "100", "tracking_no": "JD1", "status": "IN_TRANSIT",
           "at": "2026-11-03T10:15:00+08:00", "place": "Hangzhou hub"}
    [ev] = c.parse_callback(_stored(one))
    assert ev == CallbackEvent(order_number="100", status="IN_TRANSIT", data={"tracking_no": "JD1",
                               "place": "Hangzhou hub"}, at=ev.at, kind="order", id="EV-1")
    assert ev.at is not None and ev.at.isoformat() == "2026-11-03T10:15:00+08:00"
    many = [one, {**one, "id": "EV-2", "status": "SIGNED", "note": "left with the concierge"}]
    assert [(e.id, e.status, e.data.get("note")) for e in c.parse_callback(_stored(many))] == [
        ("EV-1", "IN_TRANSIT", None), ("EV-2", "SIGNED", "left with the concierge")]
    # Handed over as JSON through the integration API (POST /api/callbacks/carrier_json).
    assert c.parse_callback(one)[0].id == "EV-1"
    assert [e.id for e in c.parse_callback({"body": many})] == ["EV-1", "EV-2"]

    assert c.callback_id({}, json.dumps(one).encode()) == "EV-1"
    batch = c.callback_id({}, json.dumps(many).encode())
    assert batch.startswith("batch-") and batch == c.callback_id({}, json.dumps(many).encode())
    assert batch != c.callback_id({}, json.dumps(many[::-1]).encode())
    assert c.callback_id({}, json.dumps({**one, "id": None}).encode()) == ""


@pytest.mark.parametrize(("body", "message"), [
    ({"status": "SIGNED"}, "tracking event 1: 'order_number' is missing"),
    ({"id": "EV-9", "order_number": "1"}, "tracking event EV-9: 'status' is missing"),
    ({"id": True, "order_number": "1", "status": "SIGNED"}, "'id' must be a string"),
    ({"order_number": "1", "status": "SIGNED", "at": "yesterday"}, "not an ISO 8601 time"),
    ({"order_number": ["1"], "status": "SIGNED"}, "'order_number' must be text"),
    ([], "an empty list of events"),
    ([{"order_number": "1", "status": "SIGNED"}, "SIGNED"], "tracking event 2 must be an object"),
])
def test_a_malformed_tracking_event_is_refused_saying_what_is_wrong(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        JsonCarrier().parse_callback(_stored(body))


@pytest.mark.parametrize(("body", "message"), [
    (b"", "the callback is empty"), (b"{", "the callback is not JSON"),
    (b'{"id": "1", "id": "2"}', "the callback is not JSON"), (b" " * (1 << 20) + b"{}", "over 1048576 bytes")])
def test_an_unreadable_callback_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        JsonCarrier().parse_callback({"body": body.decode(), "encoding": "utf-8"})


def test_verify_callback_checks_secret_body_and_time(secrets: None) -> None:
    now = 1_800_000_000
    c = JsonCarrier(clock=lambda: now)
    settings, body = {"secret_env": SF_ENV}, b"{}"

    def headers(ts: int, secret: str = SF_SECRET, signed: bytes = body, prefix: str = "X-Carrier") -> dict[str, str]:
        return {f"{prefix}-Timestamp": str(ts), f"{prefix}-SIGNATURE": signature(secret, str(ts), signed)}

    assert c.verify_callback(headers(now), body, settings)
    assert c.verify_callback(headers(now + 300), body, settings)
    assert not c.verify_callback(headers(now - 301), body, settings)
    assert not c.verify_callback(headers(now, "other"), body, settings)
    assert not c.verify_callback(headers(now, signed=b"[]"), body, settings)
    assert not c.verify_callback(headers(now, prefix="X-WMS"), body, settings)   # a carrier signs as a carrier
    with pytest.raises(SettingsError):
        c.verify_callback(headers(now), body, {})


def test_every_status_of_the_api_is_in_the_status_map() -> None:
    carrier = load_status_map(ROOT / "rules" / "maps" / "status.yaml").entries["carrier"]
    assert {*JOURNEY, "REFUSED", "RETURNED"} <= set(carrier)


def test_the_connector_is_built_in() -> None:
    from oms_engine.plugin.manager import DEFAULT_PLUGINS
    assert "oms_plugins.connectors.carrier_http" in DEFAULT_PLUGINS


# -- in the OMS: courier matching, registration and tracking over HTTP ---------------------------------------
@dataclass
class World(WmsWorld):
    """The WMS tests' world (an OMS whose WH-SH is run by a stand-in WMS speaking JSON, and its API on loopback),
    with carriers SF and JD on carrier_json, each with a cold-chain service, played by stand-ins. The project's
    courier rules send cold-chain parcels to SF first, then to the cheapest."""

    sf: CarrierStandIn
    jd: CarrierStandIn

    def carrier(self, code: str, **settings: Any) -> None:
        """The carrier's master data, pointing at its stand-in."""
        standin = self.sf if code == "SF" else self.jd
        self.oms.masterdata.apply("carriers", [Row("t", {
            "code": code, "name": f"{code} Express", "connector": "carrier_json",
            "settings": {"url": standin.url, "secret_env": SECRETS[code][0], "timeout": 2, **settings},
            "services": [{"code": "COLD", "name": f"{code} Cold Chain", "attributes": {"cold_chain": True}}]})],
            actor="t", source="t", merge=True)

    def cold_order(self, external_id: str) -> str:
        return self.order(external_id, ("ICE-1", 1))

    def carriers_decision(self, number: str) -> dict[str, Any]:
        [decision] = [d for d in show_order(self.oms, number)["decisions"] if d["point"] == "carriers"]
        return dict(decision["outcome"])

    def ship(self, number: str, tracking_no: str) -> None:
        """The WMS takes the order and ships it with the carrier its document names."""
        [doc] = [d for d in self.wms.docs("sales_order") if d.data["order_number"] == number]
        for st in ("ACCEPTED", "PICKING", "PACKED"):
            assert self.wms.order_status(number, st).status == 202
        assert self.wms.order_status(number, "SHIPPED", tracking_no=tracking_no, carrier=doc.data["carrier"],
                                     place="Shanghai DC").status == 202
        self.run()
        assert status(self.oms, number) == "shipped"

    def wire(self) -> list[SimpleNamespace]:
        return [x for x in self.exchanges() if x.connector == "carrier_json"]

    def carrier_inbox(self) -> list[SimpleNamespace]:
        with self.oms.db.read() as s:
            return [SimpleNamespace(status=m.status, outcome=m.outcome, correlation_id=m.correlation_id)
                    for m in s.scalars(select(InboxMessage).where(InboxMessage.source == "carrier_json")
                                       .order_by(InboxMessage.id))]


@pytest.fixture
def make_world(secrets: None, carrier_standins: Callable[..., CarrierStandIn],
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[OMS], World]]:
    with ExitStack() as stack:
        def make(oms: OMS) -> World:
            base = stack.enter_context(wms_world(oms, "json", monkeypatch))
            oms_url = f"http://127.0.0.1:{base.api.port}"
            w = World(base.oms, base.api, base.wms, base.fmt,
                      carrier_standins(secret=SECRETS["SF"][1], carrier="SF", oms_url=oms_url),
                      carrier_standins(secret=SECRETS["JD"][1], carrier="JD", oms_url=oms_url))
            w.carrier("SF")
            w.carrier("JD")
            return w

        yield make


@pytest.fixture
def w(sqlite_oms: OMS, make_world: Callable[[OMS], World]) -> World:
    return make_world(sqlite_oms)


def test_the_first_choice_refuses_the_next_takes_the_parcel_registered_and_tracked_over_http(
        oms: OMS, make_world: Callable[[OMS], World]) -> None:
    w = make_world(oms)
    w.sf.refuse("out of area")
    w.jd.accept("16.00")
    number = w.cold_order("FALLBACK-1")
    w.run()
    assert status(w.oms, number) == "dispatched"
    assert show_order(w.oms, number)["carrier"] == "JD"
    decision = w.carriers_decision(number)
    assert [(t["carrier"], t["service"], t["result"]) for t in decision["tried"]] == [
        ("SF", "COLD", "refused: out of area"), ("JD", "COLD", "chosen")]
    assert (decision["carrier"], decision["service"], decision["price"]) == ("JD", "COLD", 1600)
    assert decision["why"].startswith("JD/COLD by rule cheapest at 16.00 CNY")
    assert [q.outcome for q in w.sf.quotes()] == ["refused"] and [q.outcome for q in w.jd.quotes()] == ["quoted"]
    assert w.wms.docs("sales_order")[0].data["carrier"] == "JD"

    # Shipped: the parcel is registered with JD, signed and keyed, every byte on record.
    w.ship(number, "JD7700001")
    msg = w.message(number, "carrier.register")
    assert msg.status == "sent"
    [reg] = w.jd.registrations()
    assert (reg.signed, reg.outcome, reg.key) == (True, "created", f"oms-msg-{msg.id}")
    assert reg.data["data"]["order_number"] == number and reg.data["data"]["tracking_no"] == "JD7700001"
    assert reg.data["data"]["carrier"] == "JD" and reg.data["data"]["service"] == "COLD"
    assert w.sf.registrations() == []
    wire = [x for x in w.wire() if x.kind != "callback"]
    assert [(x.direction, x.kind, x.status) for x in wire] == [("out", "request", None), ("in", "response", 201)]
    assert [x.body for x in wire] == [reg.body, reg.answer]
    assert {(x.order_number, x.topic, x.message_id, x.correlation_id) for x in wire} == {
        (number, "carrier.register", msg.id, str(msg.id))}

    # JD reports the parcel's journey over HTTP, signed; the order is delivered.
    replies = w.jd.journey(number, tracking_no="JD7700001")
    assert [r.status for r in replies] == [202] * 4
    assert [r.json["callback_id"] for r in replies] == [f"JD:{json.loads(r.body)['id']}" for r in replies]
    w.run()
    assert status(w.oms, number) == "delivered"
    assert [m.status for m in w.carrier_inbox()] == ["applied"] * 4
    callbacks = [x for x in w.wire() if x.kind == "callback"]
    assert [x.body for x in callbacks] == [r.body for r in w.jd.sent]
    assert {x.order_number for x in callbacks} == {number}
    with w.oms.db.read() as s:
        order_id = s.scalar(select(OutboxMessage.order_id).where(OutboxMessage.id == msg.id))
        tracked = s.scalars(select(TrackingEvent).where(TrackingEvent.order_id == order_id,
                                                        TrackingEvent.source == "carrier_json")
                            .order_by(TrackingEvent.id)).all()
    assert [(t.status, t.place, t.tracking_no) for t in tracked] == [
        ("COLLECTED", "Shanghai hub", "JD7700001"), ("IN_TRANSIT", "Shanghai hub", "JD7700001"),
        ("OUT_FOR_DELIVERY", "Xuhui station", "JD7700001"), ("SIGNED", "front door", "JD7700001")]


@pytest.mark.parametrize("how", ["500", "slow", "garbage", "not listening"])
def test_a_first_choice_that_fails_or_is_too_slow_counts_as_a_refusal(w: World, how: str) -> None:
    if how == "500":
        w.sf.fail(status=500, reason="rating engine down")
    elif how == "slow":
        w.carrier("SF", timeout=0.2)
        w.sf.delay = 1.0
    elif how == "garbage":
        w.sf.garbage()
    else:
        w.carrier("SF", url="http://127.0.0.1:9")
    number = w.cold_order(f"FAIL-{how}")
    started = time.monotonic()
    w.run()
    assert time.monotonic() - started < 5
    assert status(w.oms, number) == "dispatched" and show_order(w.oms, number)["carrier"] == "JD"
    sf_tried, jd_tried = w.carriers_decision(number)["tried"]
    assert sf_tried["result"].startswith("refused: could not be asked: ")
    assert "CarrierError: carrier_json: quote from http://127.0.0.1:" in sf_tried["result"]
    assert {"500": "500 Internal Server Error: rating engine down", "slow": "timed out after 0.2 s",
            "garbage": "malformed quote", "not listening": "ConnectError"}[how] in sf_tried["result"]
    assert jd_tried["result"] == "chosen"


def test_when_every_carrier_refuses_the_order_is_held_saying_why(w: World) -> None:
    w.sf.refuse("out of area")
    w.jd.refuse("no cold-chain capacity today")
    number = w.cold_order("NOBODY-1")
    w.run()
    assert status(w.oms, number) == "on_hold"
    assert [(t["carrier"], t["result"]) for t in w.carriers_decision(number)["tried"]] == [
        ("SF", "refused: out of area"), ("JD", "refused: no cold-chain capacity today")]
    assert w.wms.docs("sales_order") == [] and w.jd.registrations() == []


def test_a_registration_that_fails_or_times_out_is_retried_and_registers_one_parcel(w: World) -> None:
    w.sf.fail(1, status=503, reason="maintenance", path="/shipments")
    number = w.cold_order("RETRY-1")
    w.run()
    assert show_order(w.oms, number)["carrier"] == "SF"   # the cold-chain rule's first choice takes it
    w.ship(number, "SF0001")
    msg = w.message(number, "carrier.register")
    assert (msg.status, msg.attempts) == ("pending", 1)
    assert "the carrier answered 503 Service Unavailable: maintenance" in msg.last_error

    # The next attempt: the carrier takes the parcel but answers too late; the one after is answered from its
    # record of the key, so one parcel is registered.
    w.carrier("SF", timeout=0.2)
    w.sf.delay = 1.0
    w.next_attempt()
    msg = w.message(number, "carrier.register")
    assert msg.status == "pending" and "timed out after 0.2 s" in msg.last_error
    w.sf.delay = 0
    w.next_attempt()
    assert w.message(number, "carrier.register").status == "sent"
    assert [(r.key, r.outcome) for r in w.sf.registrations()] == [(f"oms-msg-{msg.id}", o) for o in (
        "failed", "created", "duplicate")]
    assert len(w.sf.parcels) == 1
    wire = w.wire()
    assert [(x.kind, x.status) for x in wire] == [("request", None), ("response", 503), ("request", None),
                                                  ("response", None), ("request", None), ("response", 201)]
    assert "no answer: timed out" in wire[3].note


# -- the callback route ---------------------------------------------------------------------------------------
def test_callbacks_from_an_unknown_carrier_or_one_without_http_callbacks_are_404(w: World) -> None:
    body = json.dumps({"id": "EV-1", "order_number": "1", "status": "SIGNED"}).encode()
    assert w.sf.post_callback(body, carrier="NOBODY").status == 404
    w.oms.masterdata.apply("carriers", [Row("t", {"code": "SIM", "name": "Simulated", "connector": "sim_carrier"})],
                           actor="t", source="t")
    reply = w.sf.post_callback(body, carrier="SIM")
    assert reply.status == 404 and "'sim_carrier', which takes no HTTP callbacks" in reply.json["detail"]
    assert w.carrier_inbox() == []


@pytest.mark.parametrize("how", ["wrong secret", "the other carrier's secret", "stale", "unsigned", "body changed",
                                 "signed as a WMS"])
def test_a_badly_signed_callback_gets_401_and_nothing_is_stored(w: World, how: str) -> None:
    body = json.dumps({"id": "EV-1", "order_number": "1", "status": "SIGNED"}).encode()
    ts = str(int(time.time()))
    good = {"X-Carrier-Timestamp": ts, "X-Carrier-Signature": sign(SF_SECRET, ts, body)}
    options: dict[str, Any] = {
        "wrong secret": {"secret": "not-the-secret"},
        "the other carrier's secret": {"secret": SECRETS["JD"][1]},
        "stale": {"timestamp": int(time.time()) - 301},
        "unsigned": {"signed": False},
        "body changed": {"signed": False, "headers": good},
        "signed as a WMS": {"signed": False, "headers": {"X-WMS-Timestamp": ts,
                                                          "X-WMS-Signature": good["X-Carrier-Signature"]}},
    }[how]
    sent = body.replace(b"SIGNED", b"REFUSED") if how == "body changed" else body
    reply = w.sf.post_callback(sent, **options)
    assert reply.status == 401, reply.answer
    assert w.carrier_inbox() == [] and [x for x in w.wire() if x.kind == "callback"] == []


def test_an_oversized_callback_is_413_and_nothing_is_stored(w: World) -> None:
    reply = w.sf.post_callback(b" " * MAX_PAYLOAD_BYTES + b"{}")
    assert reply.status == 413
    assert w.carrier_inbox() == []


def test_duplicates_unknown_statuses_and_orders_are_recorded_as_such(w: World) -> None:
    w.sf.refuse("out of area")
    number = w.cold_order("CB-1")
    w.run()
    w.ship(number, "JD0002")
    first = w.jd.event(number, "COLLECTED", tracking_no="JD0002", event_id="EV-77")
    again = w.jd.event(number, "COLLECTED", tracking_no="JD0002", event_id="EV-77")
    assert first.json["callback_id"] == again.json["callback_id"] == "JD:EV-77"
    # Another carrier numbering its own events may use the same id: it is not a duplicate of JD's.
    assert w.sf.event("2699999999999999998", "SIGNED", event_id="EV-77").json["callback_id"] == "SF:EV-77"
    w.jd.event(number, "TELEPORTED")
    w.jd.event("2699999999999999999", "SIGNED")
    w.jd.events([w.jd.tracking_event(number, "OUT_FOR_DELIVERY"), w.jd.tracking_event(number, "SIGNED")])
    w.run()
    rows = w.carrier_inbox()
    assert [r.status for r in rows] == ["applied", "duplicate", "rejected", "rejected", "rejected", "applied"]
    assert "(id JD:EV-77): nothing done" in rows[1].outcome
    assert "no order 2699999999999999998" in rows[2].outcome
    assert "'TELEPORTED'" in rows[3].outcome and "not in the status map" in rows[3].outcome
    assert "no order 2699999999999999999" in rows[4].outcome
    assert rows[5].correlation_id.startswith("JD:batch-")
    assert status(w.oms, number) == "delivered"


# -- docs/connectors.md, "carrier_json" ------------------------------------------------------------------------
# The section's examples are fenced "```json carrier" (rendered as JSON), apart from the WMS examples the WMS
# connectors' tests read.
DOC_BLOCKS = re.findall(r"```json carrier\n(.*?)```", (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8"),
                        re.S)


def test_the_page_has_the_carrier_examples() -> None:
    assert len(DOC_BLOCKS) >= 8


def _keys(value: Any) -> Any:
    """The shape of a JSON value: its keys, nested."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    return type(value).__name__ if value is not None else None


@pytest.mark.parametrize("block", DOC_BLOCKS, ids=[f"example-{i}" for i in range(len(DOC_BLOCKS))])
def test_each_example_is_what_the_connector_writes_and_reads(block: str, secrets: None) -> None:
    value = json.loads(block)
    c = JsonCarrier()
    if isinstance(value, list) and "connector" in value[0]:         # a carrier record of the settings
        [record] = value
        assert record["connector"] == "carrier_json" and set(record["settings"]) >= {"url", "secret_env"}
    elif isinstance(value, list) or "order_number" in value:         # tracking events
        status_map = load_status_map(ROOT / "rules" / "maps" / "status.yaml").entries["carrier"]
        events = c.parse_callback(_stored(value))
        assert events and all(ev.status in status_map for ev in events)
    elif "shipment" in value:                                        # a quote request
        written = json.loads(json.dumps(quote_request(_shipment(), SERVICE)))
        assert _keys(value) == _keys(written)
    elif "accepted" in value:                                        # a quote
        assert read_quote(block.encode(), _shipment()).accepted is value["accepted"]
    elif value.get("type") == "shipment":                            # a registration
        message = _register(17, {"url": "https://carrier.example", "secret_env": SF_ENV})
        written = {"type": "shipment", "id": "oms-msg-17", "data": registration(message.payload)}
        assert _keys({**value, "data": {**value["data"], "ship_to": {}}}) == _keys({**written, "data": {
            **written["data"], "ship_to": {}}})
    else:                                                            # the answer to a registration
        assert value["status"] in ("registered", "duplicate") and value["id"] == "oms-msg-17"

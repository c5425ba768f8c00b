"""A carrier for the tests: a small HTTP server on loopback that speaks the carrier_json API (docs/connectors.md,
"carrier_json") as a real carrier would.

It checks the OMS's signature on every request (401 otherwise) and keeps every request, bytes and headers.
Quotes are answered as the test says: accepted at a price and a delivery time (by default a day after the
parcel is ready), refused with a reason, slowly (``delay``), with a 5xx, or with garbage. Parcels are registered
once per idempotency key: a repeat gets the answer the first one got, the same parcel under another key a 409
``duplicate``. It posts tracking events to the OMS over real HTTP (``POST /api/carriers/<carrier>/callbacks``),
signed with the carrier's secret, or any bytes a test wants sent (a bad signature, a stale timestamp, an event
id sent twice).

It is written apart from the connector (its own reading and writing), so a mistake in the connector's format
is not mirrored here::

    with CarrierStandIn(secret="s3cret", carrier="SF", oms_url=api_url) as sf:
        sf.refuse("out of area")        # every quote, from now on
        sf.fail(2, path="/shipments")   # the next two registrations
        sf.journey(number, tracking_no="SF1")
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from .loopback import LoopbackServer, Received, Sent, sign, signed_by

CONTENT_TYPE = "application/json"
QUOTES, SHIPMENTS = "/quotes", "/shipments"
JOURNEY = ("COLLECTED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "SIGNED")


@dataclass
class Parcel:
    key: str
    data: Any
    reference: str
    status: int
    answer: bytes


@dataclass
class _Scripted:
    status: int
    body: bytes
    outcome: str
    path: str | None                # None: the next request, whatever it is


class CarrierStandIn(LoopbackServer):
    name = "carrier-standin"

    def __init__(self, *, secret: str, carrier: str = "SF", oms_url: str | None = None,
                 check_freshness: bool = True) -> None:
        super().__init__(secret=secret, oms_url=oms_url)
        self.carrier, self.check_freshness = carrier, check_freshness
        self.delay = 0.0                            # seconds to wait before answering anything
        self.parcels: dict[str, Parcel] = {}        # by idempotency key, in the order registered
        self._quote: dict[str, Any] = {"accepted": True, "price": "12.50", "currency": "CNY"}
        self._transit = timedelta(hours=24)
        self._script: list[_Scripted] = []
        self._events = 0

    # -- how it answers ---------------------------------------------------------------------------------
    def accept(self, price: str = "12.50", *, currency: str = "CNY", eta: str | None = None,
               transit_hours: float = 24) -> None:
        """Quotes from now on take the parcel at ``price``, delivering at ``eta`` (default: ``transit_hours``
        after the parcel is ready)."""
        with self._lock:
            self._quote = {"accepted": True, "price": price, "currency": currency, **({"eta": eta} if eta else {})}
            self._transit = timedelta(hours=transit_hours)

    def refuse(self, reason: str = "out of area") -> None:
        """Quotes from now on refuse the parcel, saying why."""
        with self._lock:
            self._quote = {"accepted": False, "reason": reason}

    def fail(self, times: int = 1, *, status: int = 500, reason: str = "internal error",
             path: str | None = None) -> None:
        """The next ``times`` requests (to ``path``, if given) are answered ``status`` and nothing is kept."""
        body = json.dumps({"status": "error", "reason": reason}).encode()
        with self._lock:
            self._script += [_Scripted(status, body, "failed", path) for _ in range(times)]

    def garbage(self, times: int = 1, *, body: bytes = b"<html><body>502 Bad Gateway</body></html>",
                status: int = 200, path: str | None = None) -> None:
        """The next ``times`` requests (to ``path``, if given) get exactly these bytes."""
        with self._lock:
            self._script += [_Scripted(status, body, "garbage", path) for _ in range(times)]

    # -- what it got ---------------------------------------------------------------------------------------
    def requests(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or urlsplit(r.path).path == path]

    def quotes(self) -> list[Received]:
        return self.requests(QUOTES)

    def registrations(self) -> list[Received]:
        return self.requests(SHIPMENTS)

    # -- the server side ---------------------------------------------------------------------------------
    def _decide(self, rec: Received) -> tuple[int, bytes, str, float]:
        path = urlsplit(rec.path).path
        rec.key = rec.headers.get("idempotency-key", "")
        if rec.method != "POST" or path not in (QUOTES, SHIPMENTS):
            rec.outcome = "unknown path"
            return 404, _json({"status": "refused", "reason": f"no {rec.method} {rec.path}"}), CONTENT_TYPE, 0
        rec.signed = signed_by(self.secret, rec.headers, rec.body, check_freshness=self.check_freshness)
        if not rec.signed:
            rec.outcome = "unsigned"
            return 401, _json({"status": "refused", "reason": "bad signature"}), CONTENT_TYPE, 0
        try:
            rec.data = json.loads(rec.body)
            if not isinstance(rec.data, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            rec.outcome = "unreadable"
            return 400, _json({"status": "refused", "reason": f"unreadable request: {exc}"}), CONTENT_TYPE, 0
        rec.type = "quote" if path == QUOTES else "shipment"
        with self._lock:
            scripted = next((s for s in self._script if s.path in (None, path)), None)
            if scripted is not None:
                self._script.remove(scripted)
        if scripted is not None:
            rec.outcome = scripted.outcome
            return scripted.status, scripted.body, CONTENT_TYPE, self.delay
        if path == QUOTES:
            status, answer = self._quoted(rec)
        else:
            status, answer = self._register(rec)
        return status, answer, CONTENT_TYPE, self.delay

    def _quoted(self, rec: Received) -> tuple[int, bytes]:
        with self._lock:
            answer, transit = dict(self._quote), self._transit
        if answer["accepted"] and "eta" not in answer:
            ready = (rec.data.get("shipment") or {}).get("ready_at")
            start = datetime.fromisoformat(ready.replace("Z", "+00:00")) if ready else datetime.now(UTC)
            answer["eta"] = (start + transit).strftime("%Y-%m-%dT%H:%M:%SZ")
        rec.outcome = "quoted" if answer["accepted"] else "refused"
        return 200, _json(answer)

    def _register(self, rec: Received) -> tuple[int, bytes]:
        key = rec.key
        if not key or rec.data.get("id") != key:
            rec.outcome = "refused"
            return 400, _json({"id": key, "status": "refused", "reason": "the Idempotency-Key is not the id"})
        data = rec.data.get("data") or {}
        with self._lock:
            stored = self.parcels.get(key)
            if stored is not None:
                rec.outcome = "duplicate"
                return stored.status, stored.answer
            number = data.get("order_number")
            if any(p.data.get("order_number") == number for p in self.parcels.values()):
                rec.outcome = "already registered"
                return 409, _json({"id": key, "status": "duplicate", "reason": f"{number} is already registered"})
            reference = f"{self.carrier}-{len(self.parcels) + 1:06d}"
            answer = _json({"id": key, "status": "registered", "reference": reference})
            self.parcels[key] = Parcel(key, data, reference, 201, answer)
        rec.outcome = "created"
        return 201, answer

    # -- calling the OMS back -----------------------------------------------------------------------------
    def next_event_id(self) -> str:
        with self._lock:
            self._events += 1
            return f"EV-{self.carrier}-{self.port}-{self._events}"

    def post_callback(self, body: bytes, *, oms_url: str | None = None, secret: str | None = None,
                      timestamp: int | None = None, headers: Mapping[str, str] | None = None, signed: bool = True,
                      carrier: str | None = None) -> Sent:
        """Send these bytes to the OMS as this carrier's callback, signed (unless told otherwise)."""
        return self._call_back(f"/api/carriers/{carrier or self.carrier}/callbacks", body, content_type=CONTENT_TYPE,
                               signed_as="X-Carrier", oms_url=oms_url, secret=secret, timestamp=timestamp,
                               headers=headers, signed=signed)

    def tracking_event(self, number: str, status: str, *, tracking_no: str | None = None, place: str | None = None,
                       at: str | None = None, note: str | None = None, event_id: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"id": event_id or self.next_event_id(), "order_number": number, "status": status,
                                 "at": at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        for name, value in (("tracking_no", tracking_no), ("place", place), ("note", note)):
            if value is not None:
                event[name] = value
        return event

    def event(self, number: str, status: str, *, tracking_no: str | None = None, place: str | None = None,
              at: str | None = None, note: str | None = None, event_id: str | None = None, **kw: Any) -> Sent:
        """One tracking event, on its own."""
        event = self.tracking_event(number, status, tracking_no=tracking_no, place=place, at=at, note=note,
                                    event_id=event_id)
        return self.post_callback(_json(event), **kw)

    def events(self, events: list[dict[str, Any]], **kw: Any) -> Sent:
        """Several events in one callback (a list)."""
        return self.post_callback(_json(events), **kw)

    def journey(self, number: str, *, tracking_no: str, places: tuple[str, ...] = ("Shanghai hub", "Shanghai hub",
                                                                                    "Xuhui station", "front door"),
                **kw: Any) -> list[Sent]:
        """Collected, in transit, out for delivery, signed for: one callback each."""
        return [self.event(number, status, tracking_no=tracking_no, place=place, **kw)
                for status, place in zip(JOURNEY, places, strict=True)]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def carrier_standins() -> Iterator[Callable[..., CarrierStandIn]]:
    """Start any number of stand-in carriers (``CarrierStandIn``'s arguments); all stop when the test ends."""
    started: list[CarrierStandIn] = []

    def start(**kw: Any) -> CarrierStandIn:
        started.append(CarrierStandIn(**kw).start())
        return started[-1]

    yield start
    for standin in started:
        standin.close()


__all__ = ["JOURNEY", "CarrierStandIn", "Parcel", "Received", "Sent", "carrier_standins", "sign"]

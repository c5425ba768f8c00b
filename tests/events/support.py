"""What the event tests share: a queue of their own on the real RabbitMQ, a TCP proxy in front of the broker that a
test can stop, slow down or cut, and what the OMS's database says the stream must hold.

``OMS_TEST_AMQP_URL`` names the broker (default: the machine's, guest/guest on 127.0.0.1:5672). Every test has an
exchange and a queue of its own (uuid names), deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pika
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.events.schema import iso
from oms_engine.storage.models import History, Order, OutboxMessage, Payment, PaymentEvent, StockMovement

AMQP_URL = os.environ.get("OMS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# The simulated warehouse and carrier answer at once and refuse nothing: one pass takes an order to its door.
AT_ONCE = {"sim_wms": {"time_scale": 0, "dock_refusal_rate": 0.0},
           "sim_carrier": {"time_scale": 0, "refusal_rate": 0.0},
           "sim_payment": {"refusal_rate": 0.0}, "sim_tax": {"refusal_rate": 0.0}}


def events_config(exchange: str, *, url: str = AMQP_URL, plugin_settings: dict[str, Any] | None = None,
                  **rabbit: Any) -> dict[str, Any]:
    """Config overrides that publish events to ``exchange`` through the rabbitmq connector."""
    return {"plugins": ["oms_plugins.connectors.rabbitmq"], "events": {"connector": "rabbitmq"},
            "plugin_settings": {**(plugin_settings if plugin_settings is not None else AT_ONCE),
                                "rabbitmq": {"url": url, "exchange": exchange, "reconnect_delay": 0, **rabbit}}}


@dataclass(frozen=True)
class Got:
    """One message as a consumer got it."""

    message_id: str
    routing_key: str
    props: pika.BasicProperties
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Broker:
    """An exchange and a queue bound to all of it, of this test's own, on the real broker."""

    def __init__(self, url: str = AMQP_URL) -> None:
        tag = uuid.uuid4().hex[:12]
        self.exchange, self.queue = f"oms.test.{tag}", f"oms.test.{tag}.all"
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        self.bound: list[str] = []

    def bind(self, name: str | None = None, *, pattern: str = "#", **arguments: Any) -> str:
        queue = name or self.queue
        self.channel.queue_declare(queue, arguments=arguments or None)
        self.channel.queue_bind(queue, self.exchange, pattern)
        self.bound.append(queue)
        return queue

    def count(self, queue: str | None = None) -> int:
        return int(self.channel.queue_declare(queue or self.queue, passive=True).method.message_count)

    def settled(self, queue: str | None = None) -> int:
        """The queue's length once it has stopped changing (what was on its way to the broker is routed)."""
        before = -1
        while (now := self.count(queue)) != before:
            before = now
            time.sleep(0.1)
        return now

    def take(self, queue: str | None = None) -> list[Got]:
        """Every message in the queue now, in queue order, acknowledged."""
        out = []
        while True:
            method, props, body = self.channel.basic_get(queue or self.queue, auto_ack=True)
            if method is None:
                return out
            out.append(Got(props.message_id, method.routing_key, props, body))

    def close(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError):
            for queue in self.bound:
                self.channel.queue_delete(queue)
            self.channel.exchange_delete(self.exchange)
            self.connection.close()


class Proxy:
    """A TCP proxy on a free port of 127.0.0.1 in front of the broker: ``stop()`` makes the broker unreachable (and
    cuts the connections through it), ``start()`` brings it back on the same port, ``cut()`` drops the connections
    only, ``delay`` holds each chunk the broker sends (its confirms) that long."""

    def __init__(self, url: str = AMQP_URL) -> None:
        target = urlsplit(url)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 5672)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.delay = 0.0
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()

    def url(self, base: str = AMQP_URL) -> str:
        target = urlsplit(base)
        auth = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
        return f"{target.scheme}://{auth}127.0.0.1:{self.port}{target.path}"

    def start(self) -> Proxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.cut()

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pumps = [threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True),
                     threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True)]
            with self._lock:
                self.accepted += 1
                self._sockets += [client, upstream]
                self._pumps += pumps
            for pump in pumps:
                pump.start()

    def settle(self, timeout: float = 10) -> None:
        """Wait until every connection whose client has gone is closed: what a killed client had written on its
        way is with the broker by then."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._pumps = [p for p in self._pumps if p.is_alive()]
                if not self._pumps:
                    return
            assert time.monotonic() < deadline, f"{len(self._pumps)} proxied connection(s) still open"
            time.sleep(0.01)

    def _pump(self, source: socket.socket, sink: socket.socket, from_broker: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_broker and self.delay:
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def proxy_to_broker() -> Iterator[Proxy]:
    proxy = Proxy()
    try:
        yield proxy
    finally:
        proxy.stop()


# -- what the stream must hold -------------------------------------------------------------------------------
def event_rows(oms: OMS) -> list[OutboxMessage]:
    with oms.db.read() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "event").order_by(OutboxMessage.id)))


def expected(oms: OMS, *, seeded_silently: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """What the database says happened, per event type, as the events must tell it (sorted). ``seeded_silently``:
    the test world was seeded by an OMS that published no events, so its opening balances are none."""
    with oms.db.read() as s:
        numbers = dict(s.execute(select(Order.id, Order.number)).all())
        transitions = sorted(((numbers[h.order_id], h.from_state, h.to_state, h.event, h.actor, h.cause, iso(h.at))
                              for h in s.scalars(select(History))), key=repr)
        first = {e.payment: e.to_status
                 for e in s.scalars(select(PaymentEvent).where(PaymentEvent.from_status.is_(None)))}
        money = sorted(((p.kind, numbers[p.order_id], p.serial, p.method, p.amount, p.currency, first[p.serial],
                         p.refund_of, numbers.get(p.for_order_id) or numbers[p.order_id], iso(p.created_at))
                        for p in s.scalars(select(Payment))), key=repr)
        # Every ledger row, of every kind: reservations, sale-outs, openings and damaged stock too.
        stock = sorted(((m.warehouse, m.sku, m.kind, m.on_hand_delta, m.reserved_delta, m.damaged_delta, m.document,
                         numbers.get(m.order_id), m.lot, iso(m.at))
                        for m in s.scalars(select(StockMovement))
                        if not (seeded_silently and m.kind == "opening")), key=repr)
        # A refund's later states: every row of its log but its first.
        moved = sorted(((numbers[order_id], e.payment, e.from_status, e.to_status, e.actor, e.note, iso(e.at))
                        for e, order_id in s.execute(select(PaymentEvent, Payment.order_id)
                                                     .join(Payment, Payment.serial == PaymentEvent.payment)
                                                     .where(PaymentEvent.from_status.is_not(None)))), key=repr)
    return {"order.transition": transitions, "money": money, "stock.movement": stock, "refund.status_changed": moved}


def told(events: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """The same, as the events tell it."""
    out: dict[str, list[tuple[Any, ...]]] = {"order.transition": [], "money": [], "stock.movement": [],
                                             "refund.status_changed": []}
    for e in events:
        d = e["data"]
        if e["type"] == "order.transition":
            out["order.transition"].append((d["order_number"], d["from_state"], d["to_state"], d["event"], d["actor"],
                                            d["cause"], e["at"]))
        elif e["type"] in ("payment.recorded", "refund.recorded"):
            assert e["type"] == f"{d['kind']}.recorded", e
            out["money"].append((d["kind"], d["order_number"], d["serial"], d["method"], d["amount"], d["currency"],
                                 d["status"], d["refund_of"], d["for_order"], e["at"]))
        elif e["type"] == "refund.status_changed":
            out["refund.status_changed"].append((d["order_number"], d["serial"], d["from_status"], d["to_status"],
                                                 d["actor"], d["note"], e["at"]))
        else:
            assert e["type"] == "stock.movement", e
            out["stock.movement"].append((d["warehouse"], d["sku"], d["kind"], d["on_hand_delta"], d["reserved_delta"],
                                          d["damaged_delta"], d["document"], d["order_number"], d["lot"], e["at"]))
    return {k: sorted(v, key=repr) for k, v in out.items()}


def deduplicated(got: list[Got]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The events in arrival order, each message id once (the first), and how often each id came. A message id that
    comes again must come with the same body and properties."""
    first: dict[str, Got] = {}
    times: dict[str, int] = defaultdict(int)
    out = []
    for g in got:
        times[g.message_id] += 1
        if g.message_id in first:
            seen = first[g.message_id]
            assert (g.body, g.routing_key, g.props.headers) == (seen.body, seen.routing_key, seen.props.headers), \
                f"{g.message_id} came again with another content"
            continue
        first[g.message_id] = g
        out.append(g.event)
    return out, dict(times)


def assert_in_order_per_order(events: list[dict[str, Any]]) -> None:
    """Each key's events arrive in the order they were written: their sequences rise."""
    last: dict[str, int] = {}
    for e in events:
        if e["data"].get("order_number") is None:
            continue    # a stock movement of no order (a purchase receipt): no order to keep
        assert e["sequence"] > last.get(e["key"], 0), f"{e['id']} arrived after a later event of {e['key']}"
        last[e["key"]] = e["sequence"]


def assert_wire(got: list[Got], exchange: str) -> None:
    """Each message as docs/events.md says it goes on the wire."""
    for g in got:
        e, p = g.event, g.props
        assert p.message_id == e["id"] and g.routing_key == p.type == e["type"], g
        assert (p.content_type, p.delivery_mode, p.app_id) == ("application/json", 2, e["source"]), g
        assert p.headers == {"schema": "oms.event/1", "key": e["key"], "sequence": e["sequence"]}, g
        assert e["id"] == f"{e['source']}:{e['type']}:{e['key']}:{e['sequence']}", e


# -- docs/events.md ------------------------------------------------------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def doc_examples() -> dict[str, tuple[str, str]]:
    """name -> (language, code) of every block marked ``<!-- example: name -->`` on the line before it."""
    found = re.findall(r"<!-- example: ([\w.-]+) -->\n```(\w+)\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.S)
    names = [name for name, _, _ in found]
    assert len(names) == len(set(names)), names
    return {name: (lang, code) for name, lang, code in found}


def doc_code(name: str) -> dict[str, Any]:
    """What a Python example of the page defines, run as a module of its own."""
    lang, code = doc_examples()[name]
    assert lang == "python", name
    namespace: dict[str, Any] = {"__name__": f"events_doc_{name.replace('-', '_')}"}
    exec(compile(code, f"{DOC}:{name}", "exec"), namespace)
    return namespace

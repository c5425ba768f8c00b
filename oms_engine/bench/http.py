"""``oms bench http``: the webhook intake endpoint under a fixed, open-loop rate of signed deliveries.

A real ``oms serve`` (or several, the senders shared out among them as a
load balancer would) and, by default, one ``oms worker``, so that the
pipeline competes with intake for the database as it does in production, run
as subprocesses on a database of the benchmark's own, on 127.0.0.1 only.
Sender threads, each with a keep-alive connection, post one order per
delivery to ``POST /api/webhooks/json``, signed as a shop would sign it.

Open loop: delivery ``i`` is due at ``start + i / rate`` whatever happened to
the ones before it, and its latency runs from that due time to the last byte
of the answer. A server that stalls therefore shows the stall in every
delivery that queued behind it, including the time a delivery waited for a
free sender (a closed loop, which only sends when the previous answer is in,
would hide it: coordinated omission).

After the last answer the benchmark waits for the worker(s) to finish the
pipeline, then checks in the database that every accepted delivery's order
is stored exactly once and that none is missing.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import math
import os
import queue
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from ..config import Config
from ..engine import OMS
from ..storage.db import make_engine
from ..storage.migrate import upgrade
from ..storage.models import Order, Warehouse
from . import world
from .procs import BenchProcessError, Processes, open_orders
from .runner import at_real_pace, prepare, private_schema, sigterm_as_exit, stop_if_asked

CHANNEL = "json"
PREFIX = "BH"                  # external ids of the benchmark's orders
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 30.0         # seconds a sender waits for an answer before counting an error
START_TIMEOUT = 120.0          # seconds ``oms serve`` may take to say where it listens
# A connection idle this long is replaced before use: the server closes idle ones after its channel timeout
# (30 s by default), and a request on a connection it has just closed would count as an error of the server's.
IDLE_RECONNECT = 10.0
DEFAULT_SERVER_THREADS = 8     # ``oms serve``'s own default: it admits threads - 1 requests at once, then 503


class HttpBenchError(BenchProcessError):
    """The benchmark could not run (a process would not start or died, the database is not empty)."""


@dataclass
class _Outcome:
    """One delivery as the sender saw it."""

    index: int
    latency: float          # seconds from its due time to the whole answer (or the error)
    send_lag: float         # seconds it was sent after its due time: all senders were busy
    error: str | None       # None: answered 2xx with its order stored
    answered_at: float      # perf_counter


@dataclass
class HttpBenchResult:
    rate: float
    duration: float
    threads: int
    servers: int
    server_threads: int
    workers: int
    backend: str
    outcomes: list[_Outcome]
    started: float                       # perf_counter when delivery 0 was due
    stored: dict[str, int]               # external id -> orders stored with it
    accepted: set[str]                   # external ids of the deliveries answered 2xx with an order
    drain_seconds: float | None          # from the last answer until no order was open (None: no worker)
    statuses: dict[str, int] = field(default_factory=dict)
    load_avg: float | None = None        # the machine's 1-minute load average at the end of the load

    @property
    def errors(self) -> Counter[str]:
        return Counter(o.error for o in self.outcomes if o.error is not None)

    @property
    def lost(self) -> int:
        return len(self.accepted - self.stored.keys())

    @property
    def stored_twice(self) -> int:
        return sum(1 for n in self.stored.values() if n > 1)

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.lost > 0 or self.stored_twice > 0

    def figures(self) -> dict[str, Any]:
        lat = sorted(o.latency * 1000 for o in self.outcomes)
        # Refusals (503 busy, say) come back fast: the stored deliveries' own tail is shown apart.
        stored_lat = sorted(o.latency * 1000 for o in self.outcomes if o.error is None)
        sent = len(self.outcomes)
        last = max((o.answered_at for o in self.outcomes), default=self.started)
        # From delivery 0's due time to the last answer, and never less than the schedule's own length
        # (n deliveries at the rate span n / rate seconds), so that a run on time shows the rate asked.
        seconds = max(last - self.started, sent / self.rate)
        return {"requests": sent, "ok": sent - sum(self.errors.values()),
                "errors": dict(self.errors.most_common()),
                "rate_asked": self.rate, "achieved_per_s": round(sent / seconds, 1) if seconds > 0 else None,
                "p50_ms": _pct(lat, 0.50), "p90_ms": _pct(lat, 0.90), "p99_ms": _pct(lat, 0.99),
                "max_ms": round(lat[-1], 1) if lat else None, "p99_stored_ms": _pct(stored_lat, 0.99),
                "max_send_lag_ms": round(max((o.send_lag for o in self.outcomes), default=0.0) * 1000, 1),
                "orders_stored": len(self.stored), "stored_twice": self.stored_twice, "lost": self.lost,
                "stored_unanswered": len(self.stored.keys() - self.accepted),
                "seconds": round(seconds, 2),
                "drain_seconds": round(self.drain_seconds, 2) if self.drain_seconds is not None else None,
                "statuses": self.statuses, "backend": self.backend, "workers": self.workers, "threads": self.threads,
                "servers": self.servers, "server_threads": self.server_threads,
                "load_avg_1m": round(self.load_avg, 2) if self.load_avg is not None else None}


def _pct(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile: a value some delivery really had."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


def sign(body: bytes, secret: str, delivery: str, timestamp: int) -> dict[str, str]:
    """The headers of a delivery, as plugins/channels/json_channel.py documents them."""
    signed = f"{timestamp}.{delivery}.".encode() + body
    return {"X-OMS-Timestamp": str(timestamp), "X-OMS-Delivery": delivery,
            "X-OMS-Signature": "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


class _Schedule:
    """Hands out delivery indices; whichever sender is free takes the next one, so a slow answer holds up
    only its own sender and later deliveries still go out on time while any sender is free."""

    def __init__(self, total: int) -> None:
        self._next, self._total = 0, total
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self._next >= self._total:
                return None
            i = self._next
            self._next += 1
            return i


def _judge(status: int, body: bytes) -> str | None:
    """None when the answer is 2xx and says the one order was stored; else what went wrong, as a short key."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    try:
        results = json.loads(body)["results"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}, unreadable answer"
    if len(results) != 1 or not results[0].get("number"):
        return f"HTTP {status}, no order: {str(results)[:80]}"
    if results[0].get("duplicate"):
        return f"HTTP {status}, taken for a duplicate"
    return None


def _sender(port: int, schedule: _Schedule, bodies: list[bytes], secret: str, run: str, rate: float,
            started: float, out: list[_Outcome]) -> None:
    conn: http.client.HTTPConnection | None = None
    used = 0.0
    try:
        while (i := schedule.take()) is not None:
            due = started + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            if conn is not None and sent - used > IDLE_RECONNECT:
                conn.close()
                conn = None
            # Signed when sent, as a shop's sender must (the server refuses stale timestamps).
            headers = sign(bodies[i], secret, f"{run}-{i}", int(time.time()))
            error: str | None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
                conn.request("POST", f"/api/webhooks/{CHANNEL}", body=bodies[i], headers=headers)
                resp = conn.getresponse()
                status, answer = resp.status, resp.read()
                done = time.perf_counter()
                error = _judge(status, answer)
            except (OSError, http.client.HTTPException) as exc:
                done = time.perf_counter()
                error = type(exc).__name__
                # The connection's state is unknown after a failure: the next delivery gets a new one.
                if conn is not None:
                    conn.close()
                conn = None
            used = done
            out.append(_Outcome(i, done - due, sent - due, error, done))
    finally:
        if conn is not None:
            conn.close()


def _send_all(ports: list[int], bodies: list[bytes], secret: str, *, rate: float,
              threads: int) -> tuple[float, list[_Outcome]]:
    """Send every delivery on schedule; sender ``k`` talks to ``ports[k % len(ports)]`` (a load balancer's part)."""
    schedule = _Schedule(len(bodies))
    run = secrets.token_hex(4)
    per_thread: list[list[_Outcome]] = [[] for _ in range(threads)]
    # A little ahead, so that every sender is up before delivery 0 is due.
    started = time.perf_counter() + 0.2
    pool = [threading.Thread(target=_sender, name=f"bench-http-{k}", daemon=True,
                             args=(ports[k % len(ports)], schedule, bodies, secret, run, rate, started,
                                   per_thread[k]))
            for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    outcomes = sorted((o for chunk in per_thread for o in chunk), key=lambda o: o.index)
    if len(outcomes) != len(bodies):
        raise HttpBenchError(f"a sender thread failed: {len(outcomes)} of {len(bodies)} deliveries accounted for")
    return started, outcomes


def _listening_port(procs: Processes, name: str, proc: subprocess.Popen[bytes]) -> int:
    """The port from ``oms serve``'s line "admin API listening on http://127.0.0.1:PORT"."""
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        # Read to the end, not just to the port line, so the pipe never fills and blocks the server.
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="bench-http-serve-stdout", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    marker = f"admin API listening on http://{HOST}:"
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise HttpBenchError(f"oms serve did not start within {START_TIMEOUT:g} s: {procs.tail(name)}") \
                from None
        if line is None:
            proc.wait()
            raise HttpBenchError(f"oms serve exited with status {proc.returncode}: {procs.tail(name)}")
        text = line.decode("utf-8", "replace").strip()
        if text.startswith(marker):
            return int(text.removeprefix(marker))


def _drain(oms: OMS, procs: Processes, timeout: float) -> float:
    """Seconds until the workers have no open order left."""
    started = time.perf_counter()
    while open_orders(oms):
        stop_if_asked()
        procs.check_alive()
        if time.perf_counter() - started > timeout:
            raise HttpBenchError(f"the workers left {open_orders(oms)} orders open {timeout:g} s after the load")
        time.sleep(0.05)
    return time.perf_counter() - started


def _stored(oms: OMS) -> tuple[dict[str, int], dict[str, int]]:
    """The benchmark's orders by external id (how many rows each), and the run's orders by status."""
    with oms.db.read() as s:
        ours = (Order.channel == CHANNEL, Order.external_id.like(f"{PREFIX}-%"))
        counts = {ext: n for ext, n in s.execute(select(Order.external_id, func.count()).where(*ours)
                                                 .group_by(Order.external_id)) if ext is not None}
        statuses = dict(s.execute(select(Order.status, func.count()).where(*ours).group_by(Order.status)).all())
    return counts, {str(k): int(v) for k, v in sorted(statuses.items())}


def _refuse_used(url: str) -> None:
    """A database given to the run must be empty: it seeds a world of its own and counts its own orders."""
    from ..demo.driver import DemoRefused, _holds_other_orders
    shown = make_url(url).render_as_string()
    if _holds_other_orders(url, any_orders=True):
        raise DemoRefused(f"the database {shown} holds orders: the benchmark needs an empty one")
    engine = make_engine(url)
    try:
        if "warehouses" in inspect(engine).get_table_names():
            with engine.connect() as conn:
                seeded = conn.scalar(select(func.count()).select_from(Warehouse))
            if seeded:
                raise DemoRefused(f"the database {shown} holds warehouses (from a run that stopped half-way?): "
                                  "the benchmark seeds a world of its own and needs an empty database")
    finally:
        engine.dispose()


def run_http(config: Config, *, rate: float = 200.0, duration: float = 60.0, workers: int = 1, threads: int = 32,
             servers: int = 1, server_threads: int = DEFAULT_SERVER_THREADS, db_url: str | None = None,
             skus: int = 100_000, customers: int = 20_000, seed: int = 11) -> HttpBenchResult:
    """Seed a world in a database of the run's own (``db_url``, which must hold no orders, or a fresh SQLite
    file), then load ``servers`` ``oms serve --threads server_threads`` processes with ``rate`` deliveries a
    second in all for ``duration`` seconds from ``threads`` senders, shared out among the servers."""
    if rate <= 0 or duration <= 0:
        raise ValueError("the rate and the duration must be positive")
    if threads < servers or servers < 1 or workers < 0:
        raise ValueError("at least one server, at least one sender thread per server, and zero or more workers")
    total = max(1, round(rate * duration))
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="oms-bench-http-") as tmp, \
            private_schema(db_url or f"sqlite:///{Path(tmp) / 'bench.db'}") as url:
        directory = Path(tmp)
        if db_url:
            _refuse_used(url)
        config = config.model_copy(update={"database_url": url, "outbox_dir": str(directory / "outbox")})
        config = at_real_pace(config)
        cfg_path = directory / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(config.model_dump()), encoding="utf-8")
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        secret = secrets.token_hex(16)
        env = {**os.environ, "OMS_WEBHOOK_SECRET_JSON": secret, "PYTHONUNBUFFERED": "1"}
        # --db beats OMS_DATABASE_URL in the environment: the subprocesses use the run's database whatever it says.
        procs = Processes(directory, [str(Path(sys.executable).parent / "oms"), "--config", str(cfg_path),
                                       "--db", url], env)
        # Started before the world is seeded: a config the OMS refuses (no rules directory...) leaves the
        # database empty, ready for the next try.
        oms = OMS(config)
        try:
            catalogue, people = prepare(config, skus=skus, customers=customers, seed=seed)
            # Made before the servers start, so that generating orders costs the run nothing.
            generated = list(world.orders(random.Random(seed + 1), catalogue, people, total, prefix=PREFIX))
            bodies = [json.dumps(o).encode() for o in generated]
            externals = [str(o["external_id"]) for o in generated]
            del generated
            oms.rules.publish_dir(actor="oms:bench", note="the benchmark's rules")
            for k in range(workers):
                procs.start(f"worker-{k}", ["worker", "--interval", "0.05"])
            # The limit refuses deliveries past the rate with 429; the benchmark measures the endpoint, not it.
            # Twice the rate, and a burst of a second's worth, leave room to catch up after a stall.
            ports = []
            for k in range(servers):
                serve = procs.start(f"serve-{k}", ["serve", "--host", HOST, "--port", "0",
                                                   "--threads", str(server_threads),
                                                   "--webhook-rate", f"{2 * rate:g}",
                                                   "--webhook-burst", str(max(20, math.ceil(rate)))], stdout_pipe=True)
                ports.append(_listening_port(procs, f"serve-{k}", serve))
            started, outcomes = _send_all(ports, bodies, secret, rate=rate, threads=threads)
            load = os.getloadavg()[0]   # the last minute's: how busy the machine was besides
            procs.check_alive()
            drain = _drain(oms, procs, timeout=max(120.0, 5 * duration)) if workers else None
            stored, statuses = _stored(oms)
            backend = oms.db.engine.dialect.name
        finally:
            try:
                procs.stop_all()
            finally:
                oms.close()
    accepted = {externals[o.index] for o in outcomes if o.error is None}
    return HttpBenchResult(rate, duration, threads, servers, server_threads, workers, backend, outcomes, started,
                           stored, accepted, drain, statuses, load)

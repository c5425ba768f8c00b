"""Running the benchmark: one process on SQLite, or an ingesting process and K ``oms worker`` processes.

Each order is timed from its creation (intake) to its dispatch to the
warehouse, or to its hold, by the history rows the OMS writes anyway, on the
real clock. Orders per second count every order from the first payload in to
the last order out; in one process the clock runs while the OMS takes a payload
in and works it off, not while the synthetic orders are made up or the
baseline (baseline.py) writes its copies between payloads.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import yaml
from sqlalchemy import func, select

from .. import heap
from ..config import Config
from ..engine import OMS
from ..pipeline.runner import WORKER_READY
from ..storage.db import make_engine
from ..storage.migrate import upgrade
from ..storage.models import History, Order, OutboxMessage
from . import world
from .baseline import Replay
from .procs import Processes, open_orders


@dataclass
class BenchResult:
    orders: int
    seconds: float
    latencies_ms: list[float]
    peak_rss_mb: float
    rules_seconds: float
    held: int
    split: int
    dispatched: int
    duplicates: int
    backend: str
    workers: int
    baseline_seconds: float | None = None
    baseline_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
        per_s = self.orders / self.seconds if self.seconds else 0.0
        base = self.orders / self.baseline_seconds if self.baseline_seconds else None
        return {"orders": self.orders, "finished": len(lat), "seconds": round(self.seconds, 2),
                "orders_per_s": round(per_s, 1),
                "p50_ms": round(median(lat), 1) if lat else None, "p99_ms": round(p99, 1) if p99 is not None else None,
                "peak_rss_mb": round(self.peak_rss_mb, 1),
                "rules_share": round(self.rules_seconds / self.seconds, 3)
                if self.seconds and self.rules_seconds == self.rules_seconds else None,
                "baseline_orders_per_s": round(base, 1) if base else None,
                "ratio": round(per_s / base, 4) if base else None,
                "held": self.held, "split": self.split, "dispatched": self.dispatched,
                "processed_twice": self.duplicates, "backend": self.backend, "workers": self.workers, **self.extra}


def _chunks(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _peak_rss_mb(children: bool = False) -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        kb = max(kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return kb / 1024


def at_real_pace(config: Config) -> Config:
    """The simulated warehouse and carrier at their real pace (config.yaml may have them answer at once): the
    benchmark measures an order from intake to its dispatch, not the simulation of what follows."""
    return config.with_plugin_settings(sim_wms={"time_scale": 1.0}, sim_carrier={"time_scale": 1.0})


def prepare(config: Config, *, skus: int, customers: int, seed: int) -> tuple[world.Catalogue, list[dict[str, Any]]]:
    """The schema, and the world written by a process of its own (``python -m oms_engine.bench.runner``): a
    hundred thousand products and half a million opening balances go through the import code, whose
    memory and garbage would otherwise be the run's (its peak memory, its collector's work)."""
    engine = make_engine(config.resolved_database_url())
    upgrade(engine)
    engine.dispose()
    subprocess.run([sys.executable, "-m", __name__, config.resolved_database_url(), str(skus), str(customers),
                    str(seed)], check=True)
    made = world.make(random.Random(seed), skus=skus, customers=customers)
    return made.catalogue, made.people


def _write_world(argv: list[str]) -> int:
    from ..storage.db import Database
    url, skus, customers, seed = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    db = Database(url)
    try:
        world.write(db, world.make(random.Random(seed), skus=skus, customers=customers))
    finally:
        db.dispose()
    return 0


def last_order_id(oms: OMS) -> int:
    with oms.db.read() as s:
        return s.scalar(select(func.max(Order.id))) or 0


# The exit a SIGTERM asked for, until the run has stopped: see stop_if_asked.
_ASKED: list[SystemExit] = []


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit here, so the finally blocks stop the subprocesses rather than orphan them."""
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set a handler; a caller in another thread sees to its own signals
        return

    def stop(signum: int, _frame: object) -> None:
        _ASKED.append(SystemExit(128 + signum))
        raise _ASKED[0]

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except BaseException as exc:
        # The exit can land inside a driver call (a COPY half sent, a query awaiting its answer); undoing
        # that work then fails on the broken connection ("another command is already in progress"). The
        # run still ends as stopped, with its exit status, not as that failure.
        if _ASKED and exc is not _ASKED[0]:
            raise _ASKED[0] from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        _ASKED.clear()


def stop_if_asked() -> None:
    """Raise the exit a SIGTERM asked for, if it has not ended the run yet.

    The handler raises wherever the main thread is. When that is a weakref callback or a ``__del__``
    run by the garbage collector, Python prints "Exception ignored" and carries on; the run then
    went on to its end, minutes or hours later. The loops of a run call this between steps."""
    if _ASKED:
        raise _ASKED[0]


@contextmanager
def private_schema(url: str) -> Iterator[str]:
    """On PostgreSQL: a fresh schema of the benchmark's own in that database, dropped afterwards; the URL
    to reach it (``search_path`` set for every connection, subprocesses included). Other URLs as given.

    So a benchmark never reads or writes anybody's tables, and runs back to back each start empty.
    """
    engine = make_engine(url)
    if engine.dialect.name != "postgresql":
        engine.dispose()
        yield url
        return
    # Named for the process too: whoever finds one left behind can tell whose it was.
    schema = f"oms_bench_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield engine.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


def with_blocking_rules(config: Config, total: int, directory: Path, catalogue: world.Catalogue,
                        customers: list[dict[str, Any]], seed: int) -> Config:
    """A copy of the config's rules directory in ``directory`` whose blocking ruleset has ``total`` rules."""
    source = config.path(config.rules_dir)
    target = directory / "rules"
    shutil.copytree(source, target)
    blocking = target / "blocking.yaml"
    text = blocking.read_text(encoding="utf-8")
    have = len(yaml.safe_load(text)["rules"])
    if total < have:
        raise ValueError(f"the blocking ruleset has {have} rules already: ask for {have} or more")
    extra = world.blocking_rules(total - have, random.Random(seed + 2), catalogue, customers)
    blocking.write_text(text.rstrip("\n") + "\n\n" + extra, encoding="utf-8")
    return config.model_copy(update={"rules_dir": str(target)})


def _outcomes(oms: OMS, after: int) -> tuple[list[float], int, int, int, int]:
    """Per-order latency (create -> dispatch or hold), and held, split, dispatched, processed-twice counts,
    of the orders with ids above ``after`` (the run's: orders stored before it are not counted)."""
    with oms.db.read() as s:
        first = dict(s.execute(select(History.order_id, func.min(History.at))
                               .where(History.event == "create", History.order_id > after)
                               .group_by(History.order_id)).all())
        ends = s.execute(select(History.order_id, History.event, History.at)
                         .where(History.event.in_(["dispatch", "hold", "split"]), History.order_id > after)).all()
        twice = s.scalar(select(func.count()).select_from(
            select(OutboxMessage.order_id).where(OutboxMessage.topic == "wms.create", OutboxMessage.order_id > after)
            .group_by(OutboxMessage.order_id).having(func.count() > 1).subquery())) or 0
        twice += s.scalar(select(func.count()).select_from(
            select(History.order_id).where(History.event == "dispatch", History.order_id > after)
            .group_by(History.order_id).having(func.count() > 1).subquery())) or 0
        parents = {oid: pid for oid, pid in s.execute(select(Order.id, Order.parent_id)
                                                      .where(Order.parent_id.is_not(None), Order.id > after))}
    done: dict[int, Any] = {}
    held = split = dispatched = 0
    for oid, event, at in ends:
        held += event == "hold"
        split += event == "split"
        dispatched += event == "dispatch"
        if event == "split":
            continue
        root = parents.get(oid, oid)   # a child's latency counts from its parent's creation
        done[root] = max(done.get(root, at), at)
    latencies = [(at - first[oid]).total_seconds() * 1000 for oid, at in done.items() if oid in first]
    return latencies, held, split, dispatched, twice


def _rss_mb() -> float:
    """Resident memory now (Linux /proc; the peak where there is none)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return _peak_rss_mb()


def run_single(config: Config, catalogue: world.Catalogue, customers: list[dict[str, Any]], *, orders: int,
               payload_size: int, seed: int, baseline: bool, prefix: str = "BN",
               memory_every: int = 0, lines: tuple[int, int] = (1, 10)) -> BenchResult:
    """Ingest ``orders`` in payloads of ``payload_size`` and work each payload off, all in this process.

    ``memory_every``: note resident memory every that many orders (``extra["rss_mb"]``).
    """
    rng = random.Random(seed + 1)
    oms = OMS(config)
    replay: Replay | None = None
    try:
        oms.rules.publish_dir(actor="oms:bench", note="the benchmark's rules")
        after = last_order_id(oms)
        if baseline and oms.db.engine.dialect.name == "sqlite":
            replay = Replay(Path(oms.db.engine.url.database or ""))
        done = 0
        samples: list[tuple[int, float]] = []
        seconds = 0.0
        with heap.settled():   # as 'oms worker' and 'oms serve' once started
            stream = world.orders(rng, catalogue, customers, orders, prefix=prefix, lines=lines)
            for chunk in _chunks(stream, payload_size):
                stop_if_asked()
                started = time.perf_counter()
                oms.intake.ingest("json", json.dumps(chunk).encode(), source="bench")
                oms.pipeline.run_until_idle()
                seconds += time.perf_counter() - started
                if replay is not None:   # the baseline's turn: off the pipeline's clock
                    replay.payload()
                done += len(chunk)
                if memory_every and (done // memory_every > (done - len(chunk)) // memory_every or done == orders):
                    samples.append((done, round(_rss_mb(), 1)))
        peak = _peak_rss_mb()   # before the outcomes are read: that is the report's memory, not the run's
        latencies, held, split, dispatched, twice = _outcomes(oms, after)
        result = BenchResult(orders, seconds, latencies, peak, oms.rulebook.seconds, held, split,
                             dispatched, twice, oms.db.engine.dialect.name, 1)
        if samples:
            result.extra["rss_mb"] = samples
        if replay is not None:
            result.baseline_seconds, result.baseline_rows = replay.result()
    finally:
        if replay is not None:
            replay.close()
        oms.close()
    return result


def run_workers(config: Config, catalogue: world.Catalogue, customers: list[dict[str, Any]], *, orders: int,
                payload_size: int, seed: int, workers: int, lines: tuple[int, int] = (1, 10),
                backlog: bool = False) -> BenchResult:
    """This process ingests; ``workers`` ``oms worker`` processes share the pipeline through the database.

    The clock starts when every worker is ready (started, rules compiled). ``backlog``: every order is
    taken in before the workers start, so the figure is the workers' alone, not capped by this one
    ingesting process (the latencies then include the time an order waited in the backlog).
    """
    rng = random.Random(seed + 1)
    stream = world.orders(rng, catalogue, customers, orders, lines=lines)

    def ingest() -> None:
        for chunk in _chunks(stream, payload_size):
            stop_if_asked()
            oms.intake.ingest("json", json.dumps(chunk).encode(), source="bench")

    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(config.model_dump()), encoding="utf-8")
        procs = Processes(Path(tmp), [str(Path(sys.executable).parent / "oms"), "--config", str(cfg_path)])
        oms = OMS(config)
        try:
            oms.rules.publish_dir(actor="oms:bench", note="the benchmark's rules")
            after = last_order_id(oms)
            if backlog:
                ingest()
            for k in range(workers):
                procs.start(f"worker-{k}", ["worker", "--interval", "0.05"])
            for k in range(workers):
                procs.wait_for_log(f"worker-{k}", WORKER_READY, timeout=300)
            started = time.perf_counter()
            if not backlog:
                ingest()
            while open_orders(oms):
                stop_if_asked()
                procs.check_alive()
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            latencies, held, split, dispatched, twice = _outcomes(oms, after)
            # The workers decide; their time in the rules engine is theirs, not this process's.
            return BenchResult(orders, seconds, latencies, _peak_rss_mb(children=True), float("nan"), held,
                               split, dispatched, twice, oms.db.engine.dialect.name, workers,
                               extra={"backlog": backlog})
        finally:
            oms.close()
            procs.stop_all()


if __name__ == "__main__":
    sys.exit(_write_world(sys.argv[1:]))

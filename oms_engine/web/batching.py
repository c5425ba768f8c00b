"""Webhook deliveries taken in together: many small payloads, one batch.

A shop sends one order per webhook. Taken in alone, each costs a transaction
for its raw payload and claim and another for the order, with the fixed work
of a batch (prefetching customers, products and stock, writing every table)
spent on one order; a server doing that one request at a time answers a few
dozen deliveries a second. Here the deliveries that arrive while a batch is
being stored queue up and go in together as the next batch (group commit):
at a trickle each delivery is a batch of one and waits for nothing, under
load the cost of a batch is shared by all it carries. Each request still
waits for its own batch and is answered with its own results, exactly as if
it had been alone: a 200 means its orders are stored.

The batch runs in one thread of the server process, under the request lock
(the rules engine is not thread-safe), so it never runs beside an admin
request. The claim that makes a delivery id single-use is written in the
transaction that stores its raw payload (web/webhooks.py): a delivery is
remembered exactly when it is stored. The thread exits when idle and starts
again with the next delivery.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ..orders.intake import IngestResult, Submission
from .errors import ApiError
from .webhooks import WebhookGate, forget, replay_error

if TYPE_CHECKING:
    from ..engine import OMS

log = logging.getLogger("oms.api")

MAX_BATCH = 200          # deliveries stored together at most
MAX_WAITING = 2000       # deliveries queued at most; past it the answer is 503
WAIT_SECONDS = 60.0      # a request waits this long for its batch, then answers 503
IDLE_SECONDS = 5.0       # the batching thread exits after this long without a delivery


class WebhookIntakeFailed(Exception):
    """Storing the batch a delivery was in failed (the details are in the server log): 500."""


@dataclass(eq=False)
class _Job:
    channel: str
    body: bytes
    source: str
    delivery_id: str
    at: datetime
    done: threading.Event = field(default_factory=threading.Event)
    results: list[IngestResult] | None = None
    claimed: bool = False
    failed: BaseException | None = None


class WebhookBatcher:
    def __init__(self, oms: OMS, gate: WebhookGate, lock: threading.Lock, *, max_batch: int = MAX_BATCH,
                 max_waiting: int = MAX_WAITING, wait_seconds: float = WAIT_SECONDS,
                 idle_seconds: float = IDLE_SECONDS) -> None:
        self.oms, self.gate, self.lock = oms, gate, lock
        self.max_batch, self.wait_seconds, self.idle_seconds = max_batch, wait_seconds, idle_seconds
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=max_waiting)
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self.batches = 0    # batches stored since start (for the logs and the tests)

    def take_in(self, channel: str, body: bytes, source: str, delivery_id: str, at: datetime) -> list[IngestResult]:
        """Store the delivery with whatever else is waiting; its results, or the ApiError to answer."""
        job = _Job(channel, body, source, delivery_id, at)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise ApiError(503, f"{self._queue.qsize()} webhook deliveries are waiting to be stored; retry shortly",
                           headers={"Retry-After": "1"}) from None
        self._ensure_running()
        if not job.done.wait(self.wait_seconds):
            raise ApiError(503, "storing the delivery is taking too long; it may still be stored, and a retry "
                                "with the same delivery id is then refused as already received",
                           headers={"Retry-After": "5"})
        if job.failed is not None:
            raise WebhookIntakeFailed(f"storing delivery '{delivery_id}' failed") from job.failed
        if job.results is None:
            raise replay_error(channel, delivery_id)
        return job.results

    def _ensure_running(self) -> None:
        with self._starting:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="oms-webhook-batches", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._starting:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            by_channel: dict[str, list[_Job]] = {}
            for job in jobs:
                by_channel.setdefault(job.channel, []).append(job)
            for channel, group in by_channel.items():
                self._store(channel, group)

    def _store(self, channel: str, jobs: list[_Job]) -> None:
        def claim(s: Session, _submissions: object) -> list[bool]:
            claimed = self.gate.claim_all_in(s, channel, [(job.delivery_id, job.at) for job in jobs])
            for job, ok in zip(jobs, claimed, strict=True):
                job.claimed = ok
            return claimed

        submissions = [Submission(job.body, job.source) for job in jobs]
        try:
            with self.lock:
                outcome = self.oms.intake.ingest_many(channel, submissions, claim=claim)
            self.batches += 1
        except BaseException as exc:
            log.exception("webhook batch of %d deliveries for channel %s could not be stored", len(jobs), channel)
            for job in jobs:
                job.failed = exc
                if job.claimed:
                    # Not stored: the sender's retry of this delivery must not be refused as a replay.
                    try:
                        forget(self.oms.db, channel, job.delivery_id)
                    except Exception:
                        log.exception("channel %s: could not forget delivery %s; a retry with the same id will be "
                                      "refused until the replay window passes", channel, job.delivery_id)
        else:
            for job, results in zip(jobs, outcome, strict=True):
                job.results = results
                if results is None:
                    self.gate.limiter.give_back(channel)   # a replay does not use up the channel's allowance
            # One line a batch, not a delivery: at hundreds a second a line each costs more than storing them.
            log.info("webhook %s: stored %d of %d deliveries (%d orders); replays refused: %s", channel,
                     sum(j.results is not None for j in jobs), len(jobs),
                     sum(len(j.results or ()) for j in jobs),
                     ", ".join(j.delivery_id for j in jobs if j.results is None) or "none")
        finally:
            for job in jobs:
                job.done.set()

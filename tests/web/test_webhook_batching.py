"""Webhook deliveries that arrive together are stored together, and each is still answered for itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from oms_engine.engine import OMS
from oms_engine.storage.models import RawPayload, WebhookDelivery
from oms_engine.web.app import create_app
from oms_engine.web.batching import WebhookBatcher
from oms_engine.web.webhooks import WebhookPolicy
from tests.support import order_json, payload
from tests.support.web import TOKENS, WEBHOOK_SECRET, ApiServer, Reply, count, order_count


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_JSON", WEBHOOK_SECRET)
    return WEBHOOK_SECRET


@pytest.fixture
def busy_api(oms: OMS, serve: Callable[..., ApiServer]) -> ApiServer:
    """The API with room for a crowd: enough server threads, and a rate limit that lets it in."""
    return serve(create_app(oms, tokens=TOKENS, webhooks=WebhookPolicy(rate=1000, burst=1000)), threads=48)


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def _parts(api: ApiServer) -> tuple[WebhookBatcher, threading.Lock]:
    return api.app.extensions["oms_webhook_batcher"], api.app.extensions["oms_request_lock"]


def test_deliveries_that_wait_together_go_in_as_one_batch_each_with_its_own_answer(
        oms: OMS, busy_api: ApiServer) -> None:
    batcher, lock = _parts(busy_api)
    with ThreadPoolExecutor(40) as pool:
        with lock:
            # An admin request is running: the first delivery's batch waits for it, the rest queue up.
            first = pool.submit(busy_api.webhook, "json", payload(order_json("B-0")), delivery="b-0")
            _eventually(lambda: batcher._queue.qsize() == 0 and batcher._thread is not None, "the first is taken")
            rest = [pool.submit(busy_api.webhook, "json", payload(order_json(f"B-{i}")), delivery=f"b-{i}")
                    for i in range(1, 31)]
            _eventually(lambda: batcher._queue.qsize() == 30, "thirty deliveries wait")
        replies: list[Reply] = [first.result()] + [f.result() for f in rest]
    assert [r.status for r in replies] == [200] * 31
    assert [r.json["results"][0]["external_id"] for r in replies] == [f"B-{i}" for i in range(31)]
    assert len({r.json["results"][0]["number"] for r in replies}) == 31
    assert batcher.batches == 2
    assert order_count(oms) == 31
    assert count(oms, RawPayload) == 31
    assert count(oms, WebhookDelivery) == 31


def test_a_replay_inside_one_batch_is_refused_and_a_bad_order_fails_alone(oms: OMS, busy_api: ApiServer) -> None:
    batcher, lock = _parts(busy_api)
    bad = payload(order_json("BAD-1", [("TEA-1", -2)]))
    with ThreadPoolExecutor(8) as pool:
        with lock:
            first = pool.submit(busy_api.webhook, "json", payload(order_json("D-0")), delivery="d-0")
            _eventually(lambda: batcher._queue.qsize() == 0 and batcher._thread is not None, "the first is taken")
            # Both copies pass the look before either is stored; only one may be.
            twice = [pool.submit(busy_api.webhook, "json", payload(order_json("D-1")), delivery="d-1")
                     for _ in range(2)]
            _eventually(lambda: batcher._queue.qsize() == 2, "both copies wait")
            broken = pool.submit(busy_api.webhook, "json", bad, delivery="d-bad")
            good = pool.submit(busy_api.webhook, "json", payload(order_json("D-2")), delivery="d-2")
            _eventually(lambda: batcher._queue.qsize() == 4, "all four wait")
        assert first.result().status == 200
        assert sorted(f.result().status for f in twice) == [200, 409]
        refused = next(f.result() for f in twice if f.result().status == 409)
        assert "already received" in refused.json["detail"]
        [failed] = broken.result().json["results"]
        assert broken.result().status == 200 and "number" not in failed and "quantity" in failed["error"], failed
        assert good.result().status == 200 and good.result().json["results"][0]["number"] is not None
    assert batcher.batches == 2
    assert order_count(oms) == 3                      # D-0, D-1 once, D-2
    assert count(oms, RawPayload) == 4                # the bad payload is kept, the replay is not


def test_a_failed_batch_answers_500_to_each_and_each_may_be_retried(
        oms: OMS, busy_api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    batcher, lock = _parts(busy_api)
    real = oms.intake.ingest_many
    failing = threading.Event()

    def sometimes(*args: object, **kwargs: object) -> object:
        if failing.is_set():
            raise RuntimeError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(oms.intake, "ingest_many", sometimes)
    failing.set()
    with ThreadPoolExecutor(8) as pool:
        with lock:
            first = pool.submit(busy_api.webhook, "json", payload(order_json("E-0")), delivery="e-0")
            _eventually(lambda: batcher._queue.qsize() == 0 and batcher._thread is not None, "the first is taken")
            rest = [pool.submit(busy_api.webhook, "json", payload(order_json(f"E-{i}")), delivery=f"e-{i}")
                    for i in (1, 2, 3)]
            _eventually(lambda: batcher._queue.qsize() == 3, "three wait")
        replies = [first.result()] + [f.result() for f in rest]
    assert [r.status for r in replies] == [500] * 4
    assert all("disk full" not in r.body.decode() for r in replies)
    assert count(oms, WebhookDelivery) == 0 and order_count(oms) == 0
    failing.clear()
    again = [busy_api.webhook("json", payload(order_json(f"E-{i}")), delivery=f"e-{i}") for i in range(4)]
    assert [r.status for r in again] == [200] * 4
    assert order_count(oms) == 4


def test_a_delivery_alone_is_stored_at_once_and_the_batching_thread_stops_when_idle(
        sqlite_oms: OMS, serve: Callable[..., ApiServer]) -> None:
    app = create_app(sqlite_oms, tokens=TOKENS)
    batcher: WebhookBatcher = app.extensions["oms_webhook_batcher"]
    batcher.idle_seconds = 0.05
    api = serve(app)
    assert api.webhook("json", payload(order_json("I-1")), delivery="i-1").status == 200
    _eventually(lambda: batcher._thread is None, "the thread has stopped")
    # and starts again for the next delivery
    assert api.webhook("json", payload(order_json("I-2")), delivery="i-2").status == 200
    assert batcher.batches == 2
    assert order_count(sqlite_oms) == 2

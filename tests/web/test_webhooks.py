"""Webhook deliveries: fresh timestamps, one use per delivery id, a rate per channel; a refusal stores nothing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from oms_engine.orders.intake import Submission
from oms_engine.storage.models import RawPayload, WebhookDelivery
from oms_engine.web.app import create_app
from oms_engine.web.webhooks import RateLimiter, WebhookGate, WebhookPolicy, epoch_seconds
from tests.support import build_oms, order_json, payload
from tests.support.web import TOKENS, WEBHOOK_SECRET, ApiServer, count, order_count, sign_webhook


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_JSON", WEBHOOK_SECRET)
    return WEBHOOK_SECRET


def _stored_bytes(oms: OMS) -> int:
    with oms.db.session() as s:
        return s.scalar(select(func.coalesce(func.sum(func.length(RawPayload.body)), 0))) or 0


def test_replays_of_a_delivery_are_refused_and_store_nothing(oms: OMS, api_any: ApiServer) -> None:
    body = payload(order_json("R-1"))
    headers = sign_webhook(body, timestamp=oms.clock.now(), delivery="dlv-0001")
    first = api_any.post("/api/webhooks/json", body=body, headers=headers)
    assert first.status == 200, first.json
    stored = (count(oms, RawPayload), _stored_bytes(oms))
    for _ in range(20):
        r = api_any.post("/api/webhooks/json", body=body, headers=headers)
        assert r.status == 409
        assert "dlv-0001" in r.json["detail"] and "already received" in r.json["detail"]
        assert r.json["delivery"] == "dlv-0001"
    assert (count(oms, RawPayload), _stored_bytes(oms)) == stored
    assert count(oms, WebhookDelivery) == 1
    assert order_count(oms) == 1


def test_replays_of_a_large_body_do_not_pile_up(sqlite_oms: OMS, api: ApiServer) -> None:
    # 4.9 MB, as in the report: ten replays stored 49 MB in a second
    body = b'{"external_id": "BIG-1", "padding": "' + b"x" * 4_900_000 + b'"}'
    headers = sign_webhook(body, timestamp=sqlite_oms.clock.now(), delivery="big-1")
    assert api.post("/api/webhooks/json", body=body, headers=headers).status == 200
    statuses = [api.post("/api/webhooks/json", body=body, headers=headers).status for _ in range(10)]
    assert statuses == [409] * 10
    assert count(sqlite_oms, RawPayload) == 1
    assert _stored_bytes(sqlite_oms) == len(body)


@pytest.mark.parametrize("offset, status", [(-301, 401), (-299, 200), (299, 200), (301, 401), (-86400, 401)])
def test_a_timestamp_past_the_tolerance_either_way_is_refused(
        sqlite_oms: OMS, api: ApiServer, offset: int, status: int) -> None:
    when = epoch_seconds(sqlite_oms.clock.now()) + offset
    r = api.webhook("json", payload(order_json("T-1")), timestamp=when)
    assert r.status == status, r.json
    if status == 401:
        assert "tolerance of 300 s" in r.json["detail"]
        assert ("in the future" if offset > 0 else "old") in r.json["detail"]
        assert (count(sqlite_oms, RawPayload), count(sqlite_oms, WebhookDelivery)) == (0, 0)


@pytest.mark.parametrize("header, value", [
    ("X-OMS-Timestamp", "soon"), ("X-OMS-Timestamp", "1.7e9"), ("X-OMS-Timestamp", "9" * 400),
    ("X-OMS-Timestamp", "-5"), ("X-OMS-Delivery", "has space"), ("X-OMS-Delivery", "d" * 129),
])
def test_malformed_webhook_headers_are_400_naming_the_header(
        sqlite_oms: OMS, api: ApiServer, header: str, value: str) -> None:
    body = payload(order_json("H-1"))
    headers = {**sign_webhook(body, timestamp=sqlite_oms.clock.now()), header: value}
    r = api.post("/api/webhooks/json", body=body, headers=headers)
    assert r.status == 400
    assert header in r.json["detail"]
    assert count(sqlite_oms, RawPayload) == 0


@pytest.mark.parametrize("missing", ["X-OMS-Timestamp", "X-OMS-Delivery"])
def test_a_webhook_without_timestamp_or_delivery_id_is_unsigned(
        sqlite_oms: OMS, api: ApiServer, missing: str) -> None:
    body = payload(order_json("H-2"))
    headers = sign_webhook(body, timestamp=sqlite_oms.clock.now())
    del headers[missing]
    r = api.post("/api/webhooks/json", body=body, headers=headers)
    assert r.status == 401
    assert missing in r.json["detail"]
    assert count(sqlite_oms, RawPayload) == 0


def test_delivery_ids_are_remembered_for_the_window_then_pruned(sqlite_oms: OMS, api: ApiServer) -> None:
    clock = sqlite_oms.clock
    assert isinstance(clock, SimulatedClock)
    body = payload(order_json("P-1"))
    assert api.webhook("json", body, delivery="old-1").status == 200
    # inside the window a replay, even signed afresh, is refused
    clock.advance(timedelta(seconds=599))
    assert api.webhook("json", body, delivery="old-1").status == 409
    clock.advance(timedelta(seconds=2))
    assert api.webhook("json", payload(order_json("P-2")), delivery="new-1").status == 200
    with sqlite_oms.db.session() as s:
        assert list(s.scalars(select(WebhookDelivery.delivery_id))) == ["new-1"]


def test_a_delivery_that_was_not_stored_may_be_retried(
        sqlite_oms: OMS, api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    body = payload(order_json("F-1"))
    real_ingest = sqlite_oms.intake.ingest_many

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(sqlite_oms.intake, "ingest_many", failing)
    r = api.webhook("json", body, delivery="retry-me")
    assert r.status == 500
    assert "database went away" not in r.body.decode()
    assert count(sqlite_oms, WebhookDelivery) == 0
    monkeypatch.setattr(sqlite_oms.intake, "ingest_many", real_ingest)
    r = api.webhook("json", body, delivery="retry-me")
    assert r.status == 200, r.json
    assert r.json["results"][0]["external_id"] == "F-1"


def test_deliveries_past_the_channel_rate_get_429_with_retry_after_and_store_nothing(
        sqlite_oms: OMS, serve: Callable[..., ApiServer]) -> None:
    api = serve(create_app(sqlite_oms, tokens=TOKENS, webhooks=WebhookPolicy(rate=0.1, burst=3)))
    # neither unsigned requests nor replays use up the allowance
    body = payload(order_json("L-0"))
    assert api.webhook("json", body, secret="not-the-secret").status == 401
    assert api.webhook("json", body, delivery="L-0").status == 200
    assert api.webhook("json", body, delivery="L-0").status == 409
    assert [api.webhook("json", payload(order_json(f"L-{i}"))).status for i in (1, 2)] == [200, 200]
    raw = count(sqlite_oms, RawPayload)
    r = api.webhook("json", payload(order_json("L-3")))
    assert r.status == 429
    assert 1 <= int(r.headers["retry-after"]) <= 10
    assert "channel 'json'" in r.json["detail"]
    assert count(sqlite_oms, RawPayload) == raw
    assert count(sqlite_oms, WebhookDelivery) == 3


def test_the_token_bucket_refills_with_time_and_keeps_channels_apart() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=2, monotonic=lambda: now[0])
    assert [limiter.take("shop-a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("shop-a") == pytest.approx(0.5)
    assert limiter.take("shop-b") == 0.0          # another channel has its own bucket
    now[0] += 0.5
    assert limiter.take("shop-a") == 0.0          # one token back after 1 / rate seconds
    assert limiter.take("shop-a") > 0
    now[0] += 60
    assert [limiter.take("shop-a") for _ in range(3)][:2] == [0.0, 0.0]   # never more than the burst


def test_webhook_policy_refuses_nonsense() -> None:
    for bad in ({"tolerance": 0}, {"rate": 0}, {"rate": float("nan")}, {"burst": 0}):
        with pytest.raises(ValueError):
            WebhookPolicy(**bad)  # type: ignore[arg-type]


def test_a_delivery_is_claimed_where_it_is_stored_and_a_second_copy_stores_nothing(oms: OMS) -> None:
    gate = WebhookGate(WebhookPolicy())
    now = oms.clock.now()

    def claim(s: Session, subs: Sequence[Submission]) -> list[bool]:
        return gate.claim_all_in(s, "json", [("race-1", now)] * len(subs))

    # Whichever copy is stored first wins, in one batch or two; the other stores nothing, not even its
    # raw payload.
    first = oms.intake.ingest_many("json", [Submission(payload(order_json("R-1"))),
                                            Submission(payload(order_json("R-1b")))], claim=claim)
    assert first[0] is not None and first[0][0].number is not None
    assert first[1] is None
    assert oms.intake.ingest_many("json", [Submission(payload(order_json("R-1c")))], claim=claim) == [None]
    assert count(oms, WebhookDelivery) == 1
    assert count(oms, RawPayload) == 1
    assert order_count(oms) == 1


def test_a_delivery_claimed_by_another_process_between_look_and_insert_is_looked_at_again(
        oms: OMS, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = WebhookGate(WebhookPolicy())
    now = oms.clock.now()
    with oms.db.session() as s:
        assert gate.claim_all_in(s, "json", [("race-2", now)]) == [True]
    # The first look misses the row the other process has just written; the insert then collides.
    real_scalars = Session.scalars
    looks = []

    def blind_once(self: Session, stmt: object, *a: object, **kw: object) -> object:
        looks.append(stmt)
        return real_scalars(self, stmt, *a, **kw) if len(looks) > 1 else iter(())  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "scalars", blind_once)
    [result] = oms.intake.ingest_many("json", [Submission(payload(order_json("R-2")))],
                                      claim=lambda s, subs: gate.claim_all_in(s, "json", [("race-2", now)]))
    monkeypatch.undo()
    assert result is None and len(looks) == 2
    assert count(oms, WebhookDelivery) == 1
    assert count(oms, RawPayload) == 0 and order_count(oms) == 0


def test_a_replay_gives_its_turn_of_the_rate_back() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, monotonic=lambda: 5.0)
    assert [limiter.take("shop"), limiter.take("shop")] == [0.0, 0.0]
    assert limiter.take("shop") > 0
    limiter.give_back("shop")
    assert limiter.take("shop") == 0.0
    for _ in range(5):
        limiter.give_back("shop")
    assert [limiter.take("shop") for _ in range(3)][:2] == [0.0, 0.0]   # never more than the burst
    assert limiter.take("shop") > 0


MARKETPLACE = '''
import hashlib, hmac
from oms_plugins.channels.json_channel import JsonChannel
from oms_engine import hookimpl

class Bazaar(JsonChannel):
    """A marketplace with headers of its own: X-Bazaar-Id, X-Bazaar-Sent-At, X-Bazaar-Hmac over id.sent_at.body."""
    name = "bazaar"

    def delivery(self, headers):
        h = {k.lower(): v for k, v in headers.items()}
        if "x-bazaar-id" not in h or "x-bazaar-sent-at" not in h:
            return None
        if not h["x-bazaar-sent-at"].isdigit():
            raise ValueError("X-Bazaar-Sent-At must be Unix seconds")
        return h["x-bazaar-id"], int(h["x-bazaar-sent-at"])

    def verify(self, headers, body, secret):
        h = {k.lower(): v for k, v in headers.items()}
        signed = f"{h.get('x-bazaar-id')}.{h.get('x-bazaar-sent-at')}.".encode() + body
        return hmac.compare_digest(h.get("x-bazaar-hmac", ""), hmac.new(secret.encode(), signed,
                                                                     hashlib.sha256).hexdigest())

@hookimpl
def oms_register_channels(register):
    register(Bazaar())
'''


def test_an_adapter_with_its_own_delivery_headers_gets_the_same_replay_protection(
        tmp_path: Path, sqlite_url: str, serve: Callable[..., ApiServer], monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = tmp_path / "bazaar.py"
    plugin.write_text(MARKETPLACE, encoding="utf-8")
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_BAZAAR", "bz-secret")
    oms = build_oms(tmp_path, sqlite_url, plugins=[str(plugin)])
    try:
        api = serve(create_app(oms, tokens=TOKENS))
        body = payload(order_json("BZ-1"))
        sent = str(epoch_seconds(oms.clock.now()))
        sig = hmac.new(b"bz-secret", f"bz-77.{sent}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {"X-Bazaar-Id": "bz-77", "X-Bazaar-Sent-At": sent, "X-Bazaar-Hmac": sig}
        assert api.post("/api/webhooks/bazaar", body=body, headers=headers).status == 200
        assert api.post("/api/webhooks/bazaar", body=body, headers=headers).status == 409
        stale = str(int(sent) - 3600)
        old_sig = hmac.new(b"bz-secret", f"bz-78.{stale}.".encode() + body, hashlib.sha256).hexdigest()
        r = api.post("/api/webhooks/bazaar", body=body,
                     headers={"X-Bazaar-Id": "bz-78", "X-Bazaar-Sent-At": stale, "X-Bazaar-Hmac": old_sig})
        assert r.status == 401 and "tolerance" in r.json["detail"]
        r = api.post("/api/webhooks/bazaar", body=body, headers={**headers, "X-Bazaar-Sent-At": "soon"})
        assert r.status == 400 and "X-Bazaar-Sent-At" in r.json["detail"]
        assert api.post("/api/webhooks/bazaar", body=body, headers={"X-Bazaar-Hmac": sig}).status == 401
        assert count(oms, RawPayload) == 1
    finally:
        oms.close()

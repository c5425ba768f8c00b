"""Idempotency keys: a client's retry of a POST gets the first answer and the OMS acts once."""

from __future__ import annotations

import threading

from oms_engine.engine import OMS
from oms_engine.storage.models import IdempotentRequest
from tests.support.web import SUPPORT, VIEWER, ApiServer, count, held_order, history_rows, status_of


def test_a_retried_release_gets_the_first_answer_and_releases_once(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    key = {"Idempotency-Key": "5f0c2a64-release-1"}
    first = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "ok"}, headers=key)
    assert first.status == 200 and "idempotent-replayed" not in first.headers
    releases = [h for h in history_rows(oms, number) if h[0] == "release"]
    again = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "ok"}, headers=key)
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers["idempotent-replayed"] == "true"
    assert [h for h in history_rows(oms, number) if h[0] == "release"] == releases
    # Without the key, a second release is what it is: refused by the state machine.
    assert api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "ok"}).status == 409


def test_a_refusal_is_kept_too_and_a_key_is_the_callers_own(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    key = {"Idempotency-Key": "k-reject-unknown"}
    first = api_any.post("/api/orders/NO-SUCH/reject", token=SUPPORT, json_body={}, headers=key)
    assert first.status == 404
    assert api_any.post("/api/orders/NO-SUCH/reject", token=SUPPORT, json_body={}, headers=key).headers[
        "idempotent-replayed"] == "true"
    # Another caller's key of the same text is another key: a viewer's request is its own (and refused, 403).
    other = api_any.post("/api/orders/NO-SUCH/reject", token=VIEWER, json_body={}, headers=key)
    assert other.status == 403 and "idempotent-replayed" not in other.headers
    assert status_of(oms, number) == "on_hold"


def test_the_same_key_for_another_request_is_422_and_does_nothing(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    key = {"Idempotency-Key": "k-reused"}
    assert api_any.post(f"/api/orders/{number}/reject", token=SUPPORT, json_body={"note": "a"},
                        headers=key).status == 200
    r = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "a"}, headers=key)
    assert r.status == 422 and r.json["type"] == "urn:oms:problem:idempotency-key-reused"
    assert r.json["field"] == "Idempotency-Key"
    r = api_any.post(f"/api/orders/{number}/reject", token=SUPPORT, json_body={"note": "b"}, headers=key)
    assert r.status == 422, "a different body is a different request"
    assert [h[0] for h in history_rows(oms, number)].count("reject") == 1


def test_a_malformed_key_or_no_credentials_are_refused_before_anything_is_kept(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    r = api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={},
                     headers={"Idempotency-Key": "x" * 256})
    assert r.status == 400 and r.json["field"] == "Idempotency-Key"
    r = api_any.post(f"/api/orders/{number}/release", token="not-a-token", json_body={},
                     headers={"Idempotency-Key": "k-1"})
    assert r.status == 401
    assert count(oms, IdempotentRequest) == 0 and status_of(oms, number) == "on_hold"


def test_concurrent_retries_with_one_key_release_once(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    key = {"Idempotency-Key": "k-race"}
    replies = []

    def send() -> None:
        replies.append(api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={}, headers=key))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status in (200, 409) for r in replies), [r.status for r in replies]
    oks = [r for r in replies if r.status == 200]
    assert oks, "the first of them was answered"
    # Every 200 is the one answer (first or replayed); a 409 is "still being answered", never a second release.
    assert len({r.body for r in oks}) == 1
    assert len([h for h in history_rows(oms, number) if h[0] == "release"]) == 1

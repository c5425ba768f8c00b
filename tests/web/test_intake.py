"""Orders and status reports coming in: signed channel webhooks and WMS / carrier callbacks."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from oms_engine.engine import OMS
from oms_engine.orders.intake import MAX_PAYLOAD_BYTES
from oms_engine.storage.models import InboxMessage, RawPayload, WebhookDelivery
from oms_engine.web.webhooks import epoch_seconds
from tests.support import T0, order_json, payload
from tests.support.web import (
    ADMIN,
    INTEGRATION,
    VIEWER,
    WEBHOOK_SECRET,
    ApiServer,
    count,
    dispatched_order,
    order_count,
    sign_webhook,
    status_of,
)


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OMS_WEBHOOK_SECRET_JSON", WEBHOOK_SECRET)
    return WEBHOOK_SECRET


def test_signed_webhook_ingests_and_a_resend_returns_the_same_order(
        oms: OMS, api_any: ApiServer, webhook_secret: str) -> None:
    body = payload(order_json("W-1"))
    r = api_any.webhook("json", body)
    assert r.status == 200, r.json
    [first] = r.json["results"]
    assert (first["external_id"], first["status"]) == ("W-1", "paid")
    assert status_of(oms, first["number"]) == "paid"
    # the channel sends the same order again, as a new delivery
    again = api_any.webhook("json", body)
    assert again.status == 200
    [second] = again.json["results"]
    assert (second["number"], second["duplicate"]) == (first["number"], True)
    assert order_count(oms) == 1


def test_webhook_reports_each_order_of_a_batch(sqlite_oms: OMS, api: ApiServer, webhook_secret: str) -> None:
    bad = order_json("W-BAD")
    bad["currency"] = "money"
    r = api.webhook("json", payload(order_json("W-2"), bad))
    assert r.status == 200
    good, broken = r.json["results"]
    assert good["number"] and good["status"] == "paid"
    assert "currency" in broken["error"] and "number" not in broken


_BODY = payload(order_json("W-3"))
_NOW = epoch_seconds(T0)


@pytest.mark.parametrize("headers", [
    {},
    {"X-OMS-Signature": "sha256=" + "0" * 64, "X-OMS-Timestamp": str(_NOW), "X-OMS-Delivery": "d-1"},
    sign_webhook(b"some other body", timestamp=_NOW),
    sign_webhook(_BODY, timestamp=_NOW, secret="wrong-secret"),
    # the old scheme: a signature over the body alone
    {"X-OMS-Signature": "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), _BODY, hashlib.sha256).hexdigest(),
     "X-OMS-Timestamp": str(_NOW), "X-OMS-Delivery": "d-1"},
    # signed, but the timestamp or the delivery id changed afterwards
    {**sign_webhook(_BODY, timestamp=_NOW, delivery="d-1"), "X-OMS-Timestamp": str(_NOW + 1)},
    {**sign_webhook(_BODY, timestamp=_NOW, delivery="d-1"), "X-OMS-Delivery": "d-2"},
    # a signature header that is not ASCII must not crash the comparison
    {**sign_webhook(_BODY, timestamp=_NOW, delivery="d-1"), "X-OMS-Signature": "sha256=\u00e9"},
], ids=["unsigned", "zeros", "other-body", "wrong-secret", "body-only", "timestamp-changed", "delivery-changed",
        "not-ascii"])
def test_unsigned_or_badly_signed_webhook_is_refused_and_nothing_is_stored(
        sqlite_oms: OMS, api: ApiServer, webhook_secret: str, headers: dict[str, str]) -> None:
    assert sqlite_oms.clock.now() == T0
    r = api.post("/api/webhooks/json", body=_BODY, headers=headers)
    assert r.status == 401
    assert "signature" in r.json["detail"]
    assert r.headers["www-authenticate"].startswith("Signature")
    assert count(sqlite_oms, RawPayload) == 0
    assert count(sqlite_oms, WebhookDelivery) == 0
    assert order_count(sqlite_oms) == 0


def test_webhook_without_a_configured_secret_is_refused(
        sqlite_oms: OMS, api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_WEBHOOK_SECRET_JSON", raising=False)
    # signed with an empty key: must not pass for a channel that has no secret
    r = api.webhook("json", payload(order_json("W-4")), secret="")
    assert r.status == 401
    assert "no signing secret" in r.json["detail"]
    assert count(sqlite_oms, RawPayload) == 0


def test_webhook_for_an_unknown_channel_is_404(api: ApiServer, webhook_secret: str) -> None:
    r = api.webhook("nosuchshop", payload(order_json("W-5")))
    assert r.status == 404
    assert "nosuchshop" in r.json["detail"]


def test_oversized_body_is_413_json_and_stores_nothing(sqlite_oms: OMS, api: ApiServer, webhook_secret: str) -> None:
    body = b'{"external_id": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    r = api.webhook("json", body)
    assert r.status == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert f"{MAX_PAYLOAD_BYTES:,}" in r.json["detail"]
    assert count(sqlite_oms, RawPayload) == 0
    r = api.post("/api/callbacks/sim_wms", token=ADMIN, body=body)
    assert r.status == 413 and "detail" in r.json
    assert count(sqlite_oms, InboxMessage) == 0


def test_callback_is_accepted_then_applied_by_the_pipeline(oms: OMS, api_any: ApiServer) -> None:
    number = dispatched_order(oms)
    # The simulated WMS scheduled its own ACCEPTED report, but the simulated clock
    # stands still, so the only report the pipeline sees is the one posted here.
    r = api_any.post("/api/callbacks/sim_wms", token=INTEGRATION, json_body={"order_number": number,
                                                                             "status": "ACCEPTED"})
    assert r.status == 202
    inbox_id = r.json["inbox_id"]
    assert isinstance(inbox_id, int)
    assert status_of(oms, number) == "dispatched"  # stored, not applied yet
    oms.pipeline.run_until_idle()
    assert status_of(oms, number) == "accepted"
    shown = api_any.get(f"/api/orders/{number}", token=VIEWER).json
    assert [c["id"] for c in shown["callbacks"]] == [inbox_id]
    assert shown["callbacks"][0]["status"] == "applied"
    assert shown["history"][-1]["event"] == "wms_accept"


def test_admin_may_post_callbacks_too(sqlite_oms: OMS, api: ApiServer) -> None:
    r = api.post("/api/callbacks/sim_carrier", token=ADMIN, json_body={"order_number": "1", "status": "SIGNED"})
    assert r.status == 202
    assert count(sqlite_oms, InboxMessage) == 1


def test_callback_refusals(sqlite_oms: OMS, api: ApiServer) -> None:
    r = api.post("/api/callbacks/acme_wms", token=INTEGRATION, json_body={"order_number": "1", "status": "X"})
    assert r.status == 404
    assert "acme_wms" in r.json["detail"] and "sim_wms" in r.json["detail"]
    r = api.post("/api/callbacks/sim_wms", token=INTEGRATION, body=b'{"order_number": "1",')
    assert r.status == 400
    assert "malformed JSON" in r.json["detail"]
    r = api.post("/api/callbacks/sim_wms", token=INTEGRATION, body=b"")
    assert r.status == 400
    r = api.post("/api/callbacks/sim_wms", json_body={"order_number": "1", "status": "ACCEPTED"})
    assert r.status == 401
    assert count(sqlite_oms, InboxMessage) == 0


def test_an_unknown_parameter_is_a_400_naming_it_and_stores_nothing(
        sqlite_oms: OMS, api: ApiServer, webhook_secret: str) -> None:
    body = payload(order_json("Q-1"))
    inbox, raw = count(sqlite_oms, InboxMessage), count(sqlite_oms, RawPayload)
    for path, token, headers in [
            ("/api/webhooks/json?shop=north", None, sign_webhook(body, timestamp=T0)),
            ("/api/callbacks/sim_wms?retry=1", INTEGRATION, {"Content-Type": "application/json"}),
            ("/api/wms/WH-SH/callbacks?sig=x", None, {"Content-Type": "application/json"}),
            ("/api/carriers/SF/callbacks?sig=x", None, {"Content-Type": "application/json"})]:
        r = api.post(path, token=token, body=body, headers=headers)
        name = path.partition("?")[2].partition("=")[0]
        assert (r.status, r.headers["content-type"], r.json["field"]) == (400, "application/problem+json", name), \
            (path, r.json)
        assert r.json["detail"].startswith(f"unknown parameter '{name}'")
    assert (count(sqlite_oms, InboxMessage), count(sqlite_oms, RawPayload), order_count(sqlite_oms)) == (inbox, raw, 0)


def test_the_intake_routes_are_in_the_document_without_a_body_model(api: ApiServer) -> None:
    # Their bodies are the senders' own, signed as bytes: the document names the routes and their answers only.
    doc = api.get("/openapi.json").json
    for path, security in [("/api/webhooks/{channel}", []), ("/api/wms/{warehouse}/callbacks", []),
                           ("/api/carriers/{carrier}/callbacks", []), ("/api/callbacks/{source}", None)]:
        op = doc["paths"][path]["post"]
        assert "requestBody" not in op and op.get("security") == security, path
    assert doc["paths"]["/api/callbacks/{source}"]["post"]["x-roles"] == ["admin", "integration"]

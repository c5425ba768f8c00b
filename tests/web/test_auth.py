"""Who may do what: bearer tokens, roles, and the actor written into the history."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest
from flask import Flask

from oms_engine.config import ConfigError
from oms_engine.engine import OMS
from oms_engine.storage.models import History, InboxMessage
from oms_engine.web.app import create_app, parse_tokens
from tests.support.web import (
    ADMIN,
    INTEGRATION,
    SUPPORT,
    VIEWER,
    ApiServer,
    count,
    held_order,
    history_rows,
    status_of,
)


def test_health_is_anonymous(api: ApiServer) -> None:
    r = api.get("/health")
    assert (r.status, r.json) == (200, {"status": "ok"})


def test_anonymous_release_is_refused_and_changes_nothing(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    before = history_rows(oms, number)
    r = api_any.post(f"/api/orders/{number}/release")
    assert r.status == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Bearer" in r.json["detail"]
    assert status_of(oms, number) == "on_hold"
    assert history_rows(oms, number) == before


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer", f"Token {ADMIN}"])
def test_unknown_or_malformed_credentials_get_401(sqlite_oms: OMS, api: ApiServer, header: str) -> None:
    number = held_order(sqlite_oms)
    r = api.post(f"/api/orders/{number}/release", headers={"Authorization": header})
    assert r.status == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert status_of(sqlite_oms, number) == "on_hold"


def test_reads_need_a_token_too(api: ApiServer) -> None:
    for path in ("/api/orders", "/api/holds", "/api/stock", "/api/rules", "/api/orders/123"):
        assert api.get(path).status == 401, path


def test_viewer_reads_but_cannot_release(oms: OMS, api_any: ApiServer) -> None:
    number = held_order(oms)
    before = history_rows(oms, number)
    assert api_any.get(f"/api/orders/{number}", token=VIEWER).status == 200
    r = api_any.post(f"/api/orders/{number}/release", token=VIEWER)
    assert r.status == 403
    # 'support' is the old name of operator: the answer says the role's name now
    assert "viewer" in r.json["detail"] and "operator" in r.json["detail"]
    assert status_of(oms, number) == "on_hold"
    assert history_rows(oms, number) == before


def test_each_role_stays_in_its_lane(sqlite_oms: OMS, api: ApiServer) -> None:
    number = held_order(sqlite_oms)
    callbacks = count(sqlite_oms, InboxMessage)    # the tax platform's answer about the order's invoice
    # integration: callbacks only, no reading orders or acting on them
    assert api.get("/api/orders", token=INTEGRATION).status == 403
    assert api.post(f"/api/orders/{number}/cancel", token=INTEGRATION).status == 403
    # support acts on orders but neither reloads rules nor poses as the warehouse
    assert api.post("/api/rules/reload", token=SUPPORT).status == 403
    r = api.post("/api/callbacks/sim_wms", token=SUPPORT, json_body={"order_number": number, "status": "ACCEPTED"})
    assert r.status == 403
    assert count(sqlite_oms, InboxMessage) == callbacks
    # viewer cannot pay
    r = api.post(f"/api/orders/{number}/payments", token=VIEWER, json_body={"amount": "1.00", "transaction_id": "T"})
    assert r.status == 403
    assert status_of(sqlite_oms, number) == "on_hold"


def test_history_records_the_api_actor_never_the_token(sqlite_oms: OMS, api: ApiServer) -> None:
    number = held_order(sqlite_oms)
    r = api.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={"note": "customer called, verified"})
    assert r.status == 200, r.json
    expected = f"api:support:{hashlib.sha256(SUPPORT.encode()).hexdigest()[:6]}"
    event, to_state, actor = history_rows(sqlite_oms, number)[-1]
    assert (event, to_state, actor) == ("release", "paid", expected)
    shown = api.get(f"/api/orders/{number}", token=VIEWER).json
    assert shown["history"][-1]["actor"] == expected
    assert shown["history"][-1]["cause"] == "customer called, verified"
    assert SUPPORT not in r.body.decode() + str(shown)
    assert count(sqlite_oms, History) > 0


def test_tokens_come_from_the_configured_environment_variable(
        sqlite_oms: OMS, serve: Callable[[Flask], ApiServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sqlite_oms.config.api_tokens_env, " env-view=viewer , env-adm==admin,")
    server = serve(create_app(sqlite_oms))
    assert server.get("/api/orders", token="env-view").status == 200
    assert server.post("/api/rules/reload", token="env-view").status == 403
    # a token may end in '=' (base64): the role follows the last one
    assert server.post("/api/rules/reload", token="env-adm=").status == 200
    assert server.get("/api/orders", token=ADMIN).status == 401


def test_no_tokens_configured_means_every_protected_route_answers_401(
        sqlite_oms: OMS, serve: Callable[[Flask], ApiServer], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(sqlite_oms.config.api_tokens_env, raising=False)
    with caplog.at_level(logging.WARNING, logger="oms.api"):
        server = serve(create_app(sqlite_oms))
    # the warning says how to make one
    assert any("oms tokens create --role admin --name NAME" in r.getMessage() for r in caplog.records)
    assert server.get("/health").status == 200
    assert server.get("/api/orders", token="").status == 401
    assert server.get("/api/orders", token=ADMIN).status == 401


def test_bad_token_configuration_fails_at_start_without_echoing_the_token(sqlite_oms: OMS) -> None:
    with pytest.raises(ConfigError) as err:
        create_app(sqlite_oms, tokens={"s3cret-value": "superuser"})
    assert "superuser" in str(err.value) and "s3cret-value" not in str(err.value)
    with pytest.raises(ConfigError):
        parse_tokens("just-a-token")
    with pytest.raises(ConfigError):
        parse_tokens("a=admin,a=viewer")
    assert parse_tokens("a=admin, b=viewer ,") == {"a": "admin", "b": "viewer"}

"""API tokens kept in the database: made by ``oms tokens create`` or ``POST /api/tokens``, used over HTTP, listed
without ever showing the token, revoked and expired ones refused, only the hash stored; the roles' lanes."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select as sql_select
from sqlalchemy import update

from oms_engine.clock import utcnow
from oms_engine.engine import OMS
from oms_engine.storage.models import ApiToken, Base
from oms_engine.web import auth
from oms_engine.web.app import create_app
from oms_engine.web.auth import TokenTable
from oms_engine.web.tokens import TOUCH_EVERY, StoredTokens, TokenError, TokenNotFound, digest
from tests.support import ROOT
from tests.support.cli import Cli
from tests.support.web import (
    ADMIN,
    ApiServer,
    Reply,
    dispatched_order,
    held_order,
    history_rows,
    status_of,
)


def said(r: Reply) -> str:
    """The refusal's words, whichever shape the error document has."""
    doc = r.json
    return str(doc.get("detail", doc.get("error", "")))


def dump(oms: OMS) -> str:
    """Every row of every table, as text."""
    parts: list[str] = []
    with oms.db.read() as s:
        for table in Base.metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in s.execute(table.select()))
    return "\n".join(parts)


# --------------------------------------------------------------------------- from the command line to oms serve


def _get(port: int, path: str, token: str | None = None, method: str = "GET") -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers={"Authorization": f"Bearer {token}"} if token is not None else {})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@pytest.fixture
def oms_serve(cli: Cli) -> Iterator[tuple[int, Path]]:
    """A real ``oms serve`` over the ``cli`` fixture's database, with no token in its environment: its port and
    the file its stderr goes to."""
    env = {k: v for k, v in cli.env().items() if k != "OMS_API_TOKENS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    errors = cli.tmp_path / "serve.err"
    with errors.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", "from oms_engine.cli import main; main()", "serve",
                                 "--port", "0"], cwd=cli.tmp_path, env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        deadline, line = time.monotonic() + 60, b""
        while not line.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                line += proc.stdout.read1(1024)  # type: ignore[attr-defined]
        assert b"listening on http://127.0.0.1:" in line, (line, errors.read_text())
        yield int(line.split(b":")[-1]), errors
    finally:
        proc.kill()
        proc.wait(10)


def test_serve_without_tokens_says_how_to_make_one_and_a_token_made_then_works_until_revoked(
        cli: Cli, oms_serve: tuple[int, Path]) -> None:
    port, errors = oms_serve
    assert "oms tokens create --role admin --name NAME" in errors.read_text()
    assert _get(port, "/health").status == 200
    assert _get(port, "/api/orders", token="anything").status == 401

    made = cli("tokens", "create", "--role", "operator", "--name", "desk")
    token = made.stdout.strip()
    assert token.startswith("oms_") and len(token) > 40
    # the running server finds it at once: no restart
    assert _get(port, "/api/orders?limit=1", token=token).status == 200
    assert _get(port, "/api/rules/reload", token=token, method="POST").status == 403

    cli("tokens", "revoke", "desk")
    r = _get(port, "/api/orders?limit=1", token=token)
    assert r.status == 401 and said(r) == "unknown API token"


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def stored(sqlite_oms: OMS) -> StoredTokens:
    return StoredTokens(sqlite_oms.db)


def test_a_stored_token_acts_with_its_name_as_the_actor(oms: OMS, serve: Callable[[Flask], ApiServer]) -> None:
    """On both backends: the token works beside the environment's, and the history names it."""
    api = serve(create_app(oms, tokens={ADMIN: "admin"}))
    token, info = StoredTokens(oms.db).create("operator", "night-shift", actor="test")
    assert info["state"] == "live" and info["prefix"] == token[:8]
    number = held_order(oms)
    r = api.post(f"/api/orders/{number}/release", token=token, json_body={"note": "checked"})
    assert r.status == 200, r.body
    assert history_rows(oms, number)[-1] == ("release", "paid", "api:operator:night-shift")
    assert api.get("/api/orders?limit=1", token=ADMIN).status == 200


def test_revoked_and_expired_tokens_are_refused_like_unknown_ones(
        sqlite_oms: OMS, stored: StoredTokens, serve: Callable[[Flask], ApiServer]) -> None:
    api = serve(create_app(sqlite_oms, tokens={}))
    revoked, _ = stored.create("viewer", "old", actor="test")
    expired, _ = stored.create("viewer", "temp", actor="test", expires_days=1)
    live, _ = stored.create("viewer", "fine", actor="test", expires_days=1)
    for token in (revoked, expired, live):
        assert api.get("/api/holds", token=token).status == 200
    stored.revoke("old", actor="test")
    with sqlite_oms.db.session() as s:
        s.execute(update(ApiToken).where(ApiToken.name == "temp")
                  .values(expires_at=utcnow() - timedelta(days=2)))
    for token in (revoked, expired):
        r = api.get("/api/holds", token=token)
        assert (r.status, said(r)) == (401, "unknown API token")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/api/holds", token=live).status == 200
    states = {t["name"]: t["state"] for t in stored.listing()}
    assert states == {"old": "revoked", "temp": "expired", "fine": "live"}
    # a near miss is no token either
    assert api.get("/api/holds", token=live[:-1]).status == 401


def test_expiry_follows_the_clock_it_is_given(sqlite_oms: OMS) -> None:
    now = [datetime(2030, 1, 1, 12, 0)]
    stored = StoredTokens(sqlite_oms.db, now=lambda: now[0])
    token, info = stored.create("admin", "short", actor="test", expires_days=2)
    assert info["expires_at"] == "2030-01-03T12:00:00"
    assert stored.lookup(token) is not None
    now[0] += timedelta(days=2)
    assert stored.lookup(token) is None
    assert stored.live() == 0


def test_last_use_is_written_at_most_once_a_minute(sqlite_oms: OMS) -> None:
    now = [datetime(2030, 1, 1, 12, 0)]
    stored = StoredTokens(sqlite_oms.db, now=lambda: now[0])
    token, _ = stored.create("viewer", "busy", actor="test")

    def last_used() -> datetime | None:
        with sqlite_oms.db.read() as s:
            return s.scalar(sql_select(ApiToken.last_used_at).where(ApiToken.name == "busy"))

    assert last_used() is None
    principal = stored.lookup(token)
    assert principal is not None and (principal.role, principal.actor) == ("viewer", "api:viewer:busy")
    first = last_used()
    assert first == now[0]
    for _ in range(5):
        now[0] += timedelta(seconds=10)
        assert stored.lookup(token) is not None
    assert last_used() == first          # within the minute: nothing written
    now[0] += TOUCH_EVERY
    stored.lookup(token)
    assert last_used() == now[0]


def test_tokens_over_the_api_create_list_revoke(sqlite_oms: OMS, api: ApiServer) -> None:
    r = api.post("/api/tokens", token=ADMIN, json_body={"role": "viewer", "name": "reporting",
                                                              "expires_days": 30})
    assert r.status == 201, r.body
    assert r.headers["cache-control"] == "no-store"
    made = r.json
    token = made["token"]
    assert (made["name"], made["role"], made["state"], made["prefix"]) == ("reporting", "viewer", "live", token[:8])
    assert "not be shown again" in made["warning"]
    assert api.get("/api/holds", token=token).status == 200

    listed = api.get("/api/tokens", token=ADMIN)
    assert listed.status == 200
    [entry] = listed.json["tokens"]
    assert entry["name"] == "reporting" and entry["last_used_at"] is not None
    assert set(entry) == {"name", "role", "prefix", "state", "created_at", "created_by", "last_used_at",
                          "expires_at", "revoked_at", "revoked_by"}
    assert entry["created_by"].startswith("api:admin:")
    assert token not in listed.body.decode() and digest(token) not in listed.body.decode()

    again = api.post("/api/tokens", token=ADMIN, json_body={"role": "admin", "name": "reporting"})
    assert again.status == 409 and "exists already" in said(again)
    for body, words in (({"role": "support", "name": "x"}, "now called 'operator'"),
                        ({"role": "root", "name": "x"}, "unknown role 'root'"),
                        ({"role": "viewer", "name": "has space"}, "a token's name is"),
                        ({"role": "viewer", "name": "oms_lookalike"}, "would read like"),
                        ({"role": "viewer", "name": "x", "expires_days": "3"},
                         "'expires_days': Input should be a valid integer"),
                        ({"role": "viewer", "name": "x", "expires_days": 0}, "expiry must be"),
                        ({"role": "viewer", "name": "x", "token": "mine"}, "unknown field 'token'")):
        refused = api.post("/api/tokens", token=ADMIN, json_body=body)
        assert refused.status == 400 and words in said(refused), (body, refused.body)

    revoked = api.post("/api/tokens/reporting/revoke", token=ADMIN)
    assert revoked.status == 200 and revoked.json["state"] == "revoked"
    assert revoked.json["revoked_by"].startswith("api:admin:")
    assert api.get("/api/holds", token=token).status == 401
    assert api.post("/api/tokens/reporting/revoke", token=ADMIN).status == 409
    assert api.post("/api/tokens/nobody/revoke", token=ADMIN).status == 404
    # the name is free again once its token is revoked
    assert api.post("/api/tokens", token=ADMIN, json_body={"role": "viewer", "name": "reporting"}).status == 201


def test_the_database_holds_only_the_hash(oms: OMS, serve: Callable[[Flask], ApiServer]) -> None:
    """Made through the command's service and through the API, used, listed, revoked: the token's text is in no
    row of any table (the audit log included), on both backends; on SQLite, not in the file's bytes either."""
    api = serve(create_app(oms, tokens={ADMIN: "admin"}))
    by_service, _ = StoredTokens(oms.db).create("admin", "ops", actor="test")
    r = api.post("/api/tokens", token=by_service, json_body={"role": "operator", "name": "desk"})
    assert r.status == 201
    by_api = r.json["token"]
    assert api.get("/api/orders?limit=1", token=by_api).status == 200
    assert api.get("/api/tokens", token=by_service).status == 200
    assert api.post("/api/tokens/desk/revoke", token=by_service).status == 200
    rows = dump(oms)
    for token in (by_service, by_api):
        assert digest(token) in rows
        assert token not in rows and token[8:] not in rows
    url = oms.db.url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        with sqlite3.connect(path) as conn:
            text = "\n".join(conn.iterdump())
        for token in (by_service, by_api):
            assert token.encode() not in raw and token not in text


def test_support_in_the_environment_is_an_operator(
        sqlite_oms: OMS, serve: Callable[[Flask], ApiServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sqlite_oms.config.api_tokens_env, "legacy-tok=support,new-tok=operator,view-tok=viewer")
    api = serve(create_app(sqlite_oms))
    first, second = held_order(sqlite_oms, "A"), held_order(sqlite_oms, "B")
    assert api.post(f"/api/orders/{first}/release", token="legacy-tok").status == 200
    assert api.post(f"/api/orders/{second}/release", token="new-tok").status == 200
    legacy = history_rows(sqlite_oms, first)[-1][2]
    # the old token keeps the actor its history always had; the new one says operator
    assert legacy == f"api:support:{hashlib.sha256(b'legacy-tok').hexdigest()[:6]}"
    assert history_rows(sqlite_oms, second)[-1][2].startswith("api:operator:")
    r = api.post("/api/rules/reload", token="legacy-tok")
    assert r.status == 403 and "role 'operator'" in said(r)
    refused = api.post(f"/api/orders/{dispatched_order(sqlite_oms)}/release", token="view-tok")
    assert refused.status == 403 and "operator, admin" in said(refused) and "support" not in said(refused)


def test_each_role_and_the_new_endpoints(
        sqlite_oms: OMS, stored: StoredTokens, serve: Callable[[Flask], ApiServer]) -> None:
    tokens = {role: stored.create(role, f"t-{role.replace('_', '-')}", actor="test")[0]
              for role in ("viewer", "operator", "rules_admin", "admin", "integration")}
    api = serve(create_app(sqlite_oms, tokens={}))
    number = held_order(sqlite_oms)
    calls: list[tuple[str, str, Any]] = [("GET", "/api/tokens", None), ("GET", "/api/audit", None),
                                         ("POST", "/api/tokens", {"role": "viewer", "name": "z"}),
                                         ("POST", "/api/tokens/t-viewer/revoke", None)]
    for method, path, body in calls:
        r = api.request(method, path, json_body=body)
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer"), path
        for role in ("viewer", "operator", "rules_admin", "integration"):
            r = api.request(method, path, token=tokens[role], json_body=body)
            assert r.status == 403 and f"role '{role}'" in said(r), (path, role)
            assert "it needs one of: admin" in said(r)
    # rules_admin reads everything an operator reads, and acts on no order
    assert api.get(f"/api/orders/{number}", token=tokens["rules_admin"]).status == 200
    assert api.post(f"/api/orders/{number}/release", token=tokens["rules_admin"]).status == 403
    assert api.get("/api/orders", token=tokens["integration"]).status == 403
    assert status_of(sqlite_oms, number) == "on_hold"
    assert api.get("/api/tokens", token=tokens["admin"]).status == 200
    # the role sets each endpoint checks
    sets = {name: sorted(getattr(auth, name)) for name in ("READ", "ACT", "RULES", "ADMIN", "CALLBACK")}
    assert sets == {"READ": ["admin", "operator", "rules_admin", "viewer"], "ACT": ["admin", "operator"],
                    "RULES": ["admin", "rules_admin"], "ADMIN": ["admin"], "CALLBACK": ["admin", "integration"]}


def test_environment_tokens_may_name_every_role_and_the_alias_only() -> None:
    table = TokenTable({"a": "viewer", "b": "operator", "c": "rules_admin", "d": "admin", "e": "integration",
                        "f": "support"})
    assert len(table) == 6
    found = table.lookup("f")
    assert found is not None and found.role == "operator"


def test_the_service_refuses_clearly(sqlite_oms: OMS, stored: StoredTokens) -> None:
    stored.create("viewer", "dup", actor="test")
    with pytest.raises(TokenError, match="exists already") as err:
        stored.create("admin", "dup", actor="test")
    assert err.value.status == 409
    with pytest.raises(TokenError, match="environment token's actor"):
        stored.create("viewer", "a1b2c3", actor="test")
    with pytest.raises(TokenError, match="1 to 48"):
        stored.create("viewer", "n" * 49, actor="test")
    with pytest.raises(TokenNotFound):
        stored.revoke("nothing", actor="test")
    with pytest.raises(TokenError, match="name the token"):
        stored.revoke("  ", actor="test")
    # by prefix, or the whole token pasted in
    token, info = stored.create("viewer", "by-prefix", actor="test")
    assert stored.revoke(info["prefix"], actor="test")[1]["state"] == "revoked"
    token2, _ = stored.create("viewer", "pasted", actor="test")
    assert stored.revoke(token2, actor="test")[1]["name"] == "pasted"
    assert stored.lookup(token) is None and stored.lookup("not-ours") is None
    assert json.dumps(stored.listing()).count("oms_") == 3     # the three prefixes, nothing longer

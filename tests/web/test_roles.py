"""Every change the API takes refuses an anonymous caller and a caller whose role may not make it: one test per
route and method, from the app's own routes and the roles each declares (its OpenAPI ``x-roles``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask

from oms_engine.web.app import BLUEPRINTS, create_app
from oms_engine.web.auth import ROLES
from tests.conftest import build_oms
from tests.support.web import BY_ROLE, TOKENS, ApiServer

# Routes a caller proves itself on by a signature, not a token: their own tests refuse forgeries
# (tests/web/test_webhooks.py, tests/fulfilment/test_carrier_http.py).
SIGNED = ("/api/webhooks/", "/api/wms/", "/api/carriers/")
CHANGES = ("POST", "PUT", "PATCH", "DELETE")


def _changes() -> list[tuple[str, str]]:
    # The routes are the same for every app; an app over no database is enough to list them.
    app = Flask("routes")
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    return sorted({(method, rule.rule) for rule in app.url_map.iter_rules() for method in rule.methods or ()
                   if method in CHANGES and not rule.rule.startswith(SIGNED)})


def _path(rule: str) -> str:
    # Any value will do: the role is checked before anything is looked up.
    return re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", lambda m: "1" if "int:" in m.group(0) else "X-1", rule)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    # One server for the module: every request here is refused before it touches anything.
    path = tmp_path_factory.mktemp("roles")
    oms = build_oms(path, f"sqlite:///{path / 'oms.db'}")
    server = ApiServer(create_app(oms, tokens=TOKENS))
    yield server
    server.close()
    oms.close()


@pytest.fixture(scope="module")
def roles_of(api: ApiServer) -> dict[tuple[str, str], list[str]]:
    doc = api.get("/openapi.json").json
    return {(method.upper(), path): op.get("x-roles", []) for path, ops in doc["paths"].items()
            for method, op in ops.items()}


@pytest.mark.parametrize(("method", "rule"), _changes())
def test_a_change_refuses_anonymous_and_underprivileged_callers(
        api: ApiServer, roles_of: dict[tuple[str, str], list[str]], method: str, rule: str) -> None:
    path = _path(rule)
    allowed = roles_of[(method, re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule))]
    assert allowed, f"{method} {rule} declares no roles"
    anonymous = api.request(method, path, json_body={})
    assert anonymous.status == 401 and anonymous.headers["content-type"] == "application/problem+json", \
        (method, path, anonymous.status)
    assert "www-authenticate" in anonymous.headers
    for role in ROLES:
        if role in allowed:
            continue
        refused = api.request(method, path, token=BY_ROLE[role], json_body={})
        assert refused.status == 403, (method, path, role, refused.status, refused.body[:200])
        assert role in refused.json["detail"]

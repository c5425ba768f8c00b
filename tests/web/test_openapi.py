"""The API keeps to its own OpenAPI document: schemathesis generates requests from /openapi.json (valid ones and
broken ones) and checks every answer: no server error, only documented statuses and media types, bodies that match
their schemas, and broken requests refused."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from oms_engine.engine import OMS
from oms_engine.web.app import create_app
from tests.support.web import ADMIN, TOKENS, ApiServer, dispatched_order, held_order

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Enough examples a route to reach its refusals and its answers, few enough for the suite's ten minutes.
EXAMPLES = 8


def test_the_document_is_openapi_3_1_and_names_every_route(api: ApiServer) -> None:
    r = api.get("/openapi.json")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    doc = r.json
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "oms-engine admin API"
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    routes = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert ("GET", "/api/orders") in routes and ("POST", "/api/orders/{number}/release") in routes
    undocumented = sorted(
        (method, _openapi_path(rule.rule)) for rule in api.app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.rule.startswith("/api/") and (method, _openapi_path(rule.rule)) not in routes)
    assert undocumented == [], "every route of the API is in the document"
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def _openapi_path(rule: str) -> str:
    import re

    return re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule)


def test_the_docs_page_is_served_by_the_oms_itself(api: ApiServer) -> None:
    page = api.get("/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    assert "/openapi.json" in api.get("/docs/static/init.js").body.decode()
    # Nothing from outside: every script and style sheet is the OMS's own.
    assert "http://" not in html and "https://" not in html
    for asset in ("/docs/static/swagger-ui.css", "/docs/static/swagger-ui-bundle.js"):
        assert asset in html and api.get(asset).status == 200


def test_the_api_keeps_to_its_document(oms: OMS) -> None:
    # Real orders to act on, besides the numbers schemathesis makes up (which are 404s).
    real = {"number": [held_order(oms, "OAS-HELD"), dispatched_order(oms, "OAS-SENT"),
                       dispatched_order(oms, "OAS-SENT-2")]}
    app = create_app(oms, tokens=TOKENS)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for found in schema.get_all_operations():
        _exercise(found.ok(), real, failures, statuses)
    assert failures == []
    # It did reach the routes: answers, refusals of broken requests, and records not found.
    assert statuses[200] and statuses[400] and statuses[404], statuses


def _exercise(operation: Any, real: dict[str, list[str]], failures: list[str], statuses: Counter[int]) -> None:
    @given(case=operation.as_strategy(), pick=st.integers(0, 5))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def check(case: Any, pick: int) -> None:
        for name, values in real.items():
            if case.path_parameters and name in case.path_parameters and pick < len(values):
                case.path_parameters[name] = values[pick]
        try:
            response = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # every route's failures are reported together, the first of each
            if not any(f.startswith(f"{operation.label}: ") for f in failures):
                failures.append(f"{operation.label}: {str(exc)[:2000]}")

    check()

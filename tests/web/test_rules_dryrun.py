"""Candidate rulesets over the API: checked with their rule tests, dry-run on real orders' stored decisions,
stored as a version without being made active; admins only."""

from __future__ import annotations

from typing import Any

import pytest

from oms_engine.engine import OMS
from tests.support import ROOT, order_json, payload
from tests.support.web import ADMIN, SUPPORT, VIEWER, ApiServer

BLOCKING = (ROOT / "rules" / "blocking.yaml").read_text(encoding="utf-8")
LOWER = BLOCKING.replace("order.payable: {gt: 500000}", "order.payable: {gt: 300000}")
BAD_LINE = BLOCKING.splitlines().index("      customer.blacklisted: true") + 1
BROKEN = BLOCKING.replace("customer.blacklisted: true", "customer.blacklisted: {gt: yes-please}")
ENDPOINTS = ("/api/rules/candidates/check", "/api/rules/dry-run", "/api/rules/candidates")


def _oms(api: ApiServer) -> OMS:
    oms: OMS = api.app.extensions["oms"]
    return oms


def _screened(api: ApiServer) -> dict[str, str]:
    """A sofa (4,009.00) that passes screening, then a TV (6,510.00) held: first orders of new customers."""
    oms = _oms(api)
    orders = [order_json("sofa", [("SOFA-1", 1)], customer="C-SOFA"), order_json("tv", [("TV-1", 1)], customer="C-TV")]
    results = oms.intake.ingest("json", payload(*orders))
    oms.pipeline.run_until_idle()
    assert all(r.number for r in results), results
    return {o["external_id"]: str(r.number) for o, r in zip(orders, results, strict=True)}


def _body(text: str = LOWER, **extra: Any) -> dict[str, Any]:
    return {"ruleset_yaml": text, "file": "blocking.yaml", **extra}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_candidates_are_for_admins(api: ApiServer, path: str) -> None:
    assert api.post(path, json_body=_body()).status == 401
    assert api.post(path, token=VIEWER, json_body=_body()).status == 403
    assert api.post(path, token=SUPPORT, json_body=_body()).status == 403


def test_dry_run_lists_the_decisions_that_would_change(api_any: ApiServer) -> None:
    numbers = _screened(api_any)
    before = api_any.get("/api/rules/versions", token=VIEWER).json
    r = api_any.post("/api/rules/dry-run", token=ADMIN, json_body=_body(last=50))
    assert r.status == 200, r.json
    report = r.json
    assert report["ruleset"] == "blocking" and report["last"] == 50 and report["file"] == "blocking.yaml"
    assert report["counts"] == {"decisions": 2, "evaluated": 2, "changed": 1, "unchanged": 1, "errors": 0}
    [changed] = report["changed"]
    assert changed["order"] == numbers["sofa"]
    assert (changed["before"]["fired"], changed["before"]["outcome"]) == ([], {"hold": False, "reasons": []})
    assert changed["after"]["fired"] == ["big-first-order"] and changed["after"]["outcome"]["hold"] is True
    assert report["tests"]["failed"] == 1
    # nothing stored, nothing made active
    assert api_any.get("/api/rules/versions", token=VIEWER).json == before
    assert report["active_version"] == next(rs["version"] for rs in api_any.get("/api/rules", token=VIEWER)
                                            .json["rulesets"] if rs["name"] == "blocking")

    # `last` defaults to 100 and keeps to 1..10,000
    assert api_any.post("/api/rules/dry-run", token=ADMIN, json_body=_body()).json["last"] == 100
    for bad in (0, 10_001, "5", True, 2.5):
        r = api_any.post("/api/rules/dry-run", token=ADMIN, json_body=_body(last=bad))
        assert r.status == 400 and "last" in r.json["detail"], bad


def test_an_invalid_candidate_is_422_with_file_and_line(api: ApiServer) -> None:
    for path in ENDPOINTS:
        r = api.post(path, token=ADMIN, json_body=_body(BROKEN, last=10) if path.endswith("dry-run")
                     else _body(BROKEN))
        assert r.status == 422, (path, r.json)
        assert any(e["file"] == "blocking.yaml" and e["line"] == BAD_LINE and e["rule"] == "blacklisted-customer"
                   for e in r.json["errors"]), r.json
    r = api.post("/api/rules/candidates/check", token=ADMIN,
                 json_body={"ruleset_yaml": BLOCKING.replace("ruleset: blocking", "ruleset: blockng")})
    assert r.status == 422
    assert r.json["errors"][0]["file"] == "candidate.yaml" and r.json["errors"][0]["line"] == 1


def test_check_gives_validity_and_the_rule_tests(api: ApiServer) -> None:
    r = api.post("/api/rules/candidates/check", token=ADMIN, json_body=_body())
    assert r.status == 200, r.json
    assert r.json["valid"] is True and r.json["name"] == "blocking" and r.json["rules"] == 6
    assert r.json["version"] != r.json["active_version"]
    tests = r.json["tests"]
    assert tests["passed"] >= 5 and tests["failed"] == 1
    assert [t["case"] for t in tests["results"] if not t["passed"]] == ["exactly 5,000.00 is not over the threshold"]
    assert api.post("/api/rules/candidates/check", token=ADMIN, json_body=_body(BLOCKING)).json["tests"]["failed"] == 0


def test_requests_are_read_strictly(api: ApiServer) -> None:
    cases = [({"file": "blocking.yaml"}, "ruleset_yaml"), ({"ruleset_yaml": 7}, "ruleset_yaml"),
             ({"ruleset_yaml": "  \n"}, "ruleset_yaml"), ({**_body(), "lats": 5}, "lats"),
             ({**_body(), "file": 3}, "file")]
    for body, word in cases:
        r = api.post("/api/rules/dry-run", token=ADMIN, json_body=body)
        assert r.status == 400 and word in r.json["detail"], (body, r.json)


def test_a_stored_candidate_waits_to_be_activated(api: ApiServer) -> None:
    numbers = _screened(api)
    active = _oms(api).rulebook.version("blocking")
    r = api.post("/api/rules/candidates", token=ADMIN, json_body=_body())
    assert r.status == 201, r.json
    stored = r.json
    assert stored["ruleset"] == "blocking" and stored["stored"] is True and stored["active"] is False
    assert stored["author"].startswith("api:admin:") and stored["activated_by"] is None
    assert stored["activate"] == {"version": f"blocking@{stored['version']}"}
    again = api.post("/api/rules/candidates", token=ADMIN, json_body=_body())
    assert again.status == 200 and again.json["stored"] is False and again.json["version"] == stored["version"]

    listed = {v["version"]: v for v in api.get("/api/rules/versions?ruleset=blocking", token=VIEWER).json["versions"]}
    assert listed[stored["version"]]["active"] is False and listed[stored["version"]]["activated_at"] is None
    assert listed[active]["active"] is True and listed[active]["activated_by"] == "oms:start"
    assert _oms(api).rulebook.version("blocking") == active

    r = api.post("/api/rules/activate", token=ADMIN, json_body=stored["activate"])
    assert r.status == 200 and r.json["versions"] == {"blocking": {"from": active, "to": stored["version"]}}
    listed = {v["version"]: v for v in api.get("/api/rules/versions?ruleset=blocking", token=VIEWER).json["versions"]}
    assert listed[stored["version"]]["active"] is True
    assert listed[stored["version"]]["activated_by"].startswith("api:admin:")
    assert listed[stored["version"]]["activated_in"] == r.json["change"]
    # replayed now that it is in force, it still shows the decision the version before made otherwise
    report = api.post("/api/rules/dry-run", token=ADMIN, json_body=_body()).json
    assert report["active_version"] == stored["version"]
    assert [(c["order"], c["before"]["version"]) for c in report["changed"]] == [(numbers["sofa"], active)]

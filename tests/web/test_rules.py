"""Rules over the API: what is in force, and hot reload that refuses a broken edit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from oms_engine.engine import OMS
from oms_engine.web.app import create_app
from tests.support import build_oms, copy_rules
from tests.support.web import ADMIN, SUPPORT, TOKENS, VIEWER, ApiServer, held_order


@pytest.fixture
def own_rules(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[OMS, Path]]:
    """An OMS on a private copy of rules/ that the test may edit."""
    rules = copy_rules(tmp_path)
    oms = build_oms(tmp_path, sqlite_url, rules_dir=rules)
    yield oms, rules
    oms.close()


def test_rules_lists_each_ruleset_with_version_and_rule_count(api: ApiServer) -> None:
    r = api.get("/api/rules", token=VIEWER)
    assert r.status == 200
    by_name = {rs["name"]: rs for rs in r.json["rulesets"]}
    assert {"blocking", "split", "routing", "notifications"} <= set(by_name)
    assert by_name["blocking"]["rules"] == 6
    assert by_name["blocking"]["file"] == "blocking.yaml"
    assert len(by_name["blocking"]["version"]) >= 8


def test_broken_rules_are_refused_with_file_and_line_and_the_old_rules_stay(
        own_rules: tuple[OMS, Path], serve: Callable[[Flask], ApiServer]) -> None:
    oms, rules = own_rules
    api = serve(create_app(oms, tokens=TOKENS))
    before = api.get("/api/rules", token=VIEWER).json
    blocking = rules / "blocking.yaml"
    text = blocking.read_text(encoding="utf-8")
    broken_line = text.splitlines().index("      customer.blacklisted: true") + 1
    blocking.write_text(text.replace("customer.blacklisted: true", "customer.blacklisted: {gt: yes-please}"),
                        encoding="utf-8")

    r = api.post("/api/rules/reload", token=ADMIN)
    assert r.status == 422
    assert "unchanged" in r.json["detail"]
    errors = r.json["errors"]
    assert errors and all(set(e) == {"file", "line", "rule", "message"} for e in errors)
    assert any(e["file"].endswith("blocking.yaml") and e["line"] == broken_line
               and e["rule"] == "blacklisted-customer" for e in errors), errors

    assert api.get("/api/rules", token=VIEWER).json == before
    # the old blocking rules still hold blacklisted customers
    number = held_order(oms)
    decisions = api.get(f"/api/orders/{number}", token=VIEWER).json["decisions"]
    assert [f["rule"] for d in decisions if d["point"] == "blocking" for f in d["fired"]] == ["blacklisted-customer"]


def test_a_good_edit_is_hot_reloaded(own_rules: tuple[OMS, Path], serve: Callable[[Flask], ApiServer]) -> None:
    oms, rules = own_rules
    api = serve(create_app(oms, tokens=TOKENS))
    old = {rs["name"]: rs["version"] for rs in api.get("/api/rules", token=VIEWER).json["rulesets"]}
    blocking = rules / "blocking.yaml"
    blocking.write_text(blocking.read_text(encoding="utf-8").replace(
        "customer is on the blacklist", "blacklisted - call the risk desk"), encoding="utf-8")
    assert api.post("/api/rules/reload", token=SUPPORT).status == 403
    r = api.post("/api/rules/reload", token=ADMIN)
    assert r.status == 200, r.json
    assert r.json["changed"] == ["blocking"] and r.json["removed"] == []
    new = {rs["name"]: rs["version"] for rs in r.json["rulesets"]}
    assert new["blocking"] != old["blocking"]
    assert {k: v for k, v in new.items() if k != "blocking"} == {k: v for k, v in old.items() if k != "blocking"}
    number = held_order(oms)
    story = api.get(f"/api/orders/{number}", token=VIEWER).json
    assert story["hold_reason"] == "blacklisted - call the risk desk"
    assert [d["version"] for d in story["decisions"] if d["point"] == "blocking"] == [new["blocking"]]

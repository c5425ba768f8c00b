"""Dry-run: a candidate ruleset replayed on the stored facts of real orders' decisions, before and after, with
nothing stored or made active; and candidates stored as versions without being made active."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from oms_engine.decisions.dryrun import MAX_LAST, dry_run, load_candidate
from oms_engine.engine import OMS
from oms_engine.rules import RulesetInvalid
from oms_engine.storage.models import ActiveRule, DecisionRecord, Order, RuleChange, RuleVersion
from tests.support import ROOT, build_oms, copy_rules, order_json, payload
from tests.support.cli import Cli

BLOCKING = (ROOT / "rules" / "blocking.yaml").read_text(encoding="utf-8")
# The changed blocking rule: a first order is held from 3,000.00 on, not 5,000.00.
LOWER = BLOCKING.replace("order.payable: {gt: 500000}", "order.payable: {gt: 300000}")
# ... and saying so: an order held by the rule before is held for other words now.
LOWER_SAID = LOWER.replace('"new customer, order over 5,000.00"', '"new customer, order over 3,000.00"')


@dataclass
class Stored:
    oms: OMS
    numbers: dict[str, str]       # external id -> order number


def _ingest(oms: OMS, *orders: dict[str, Any]) -> dict[str, str]:
    results = oms.intake.ingest("json", payload(*orders))
    oms.pipeline.run_until_idle()
    numbers = {o["external_id"]: r.number for o, r in zip(orders, results, strict=True)}
    assert all(numbers.values()), results
    return numbers


def _screened(*external: str, prefix: str = "") -> list[dict[str, Any]]:
    """Orders the blocking rules decide, each from a customer of its own with no order before."""
    catalogue = {"sofa": [("SOFA-1", 1)], "tv": [("TV-1", 1)], "two-sofas": [("SOFA-1", 2)],
                 "tea": [("TEA-1", 2)], "blacklisted": [("TEA-1", 1)]}
    return [order_json(f"{prefix}{e}", catalogue[e], customer="C-BAD" if e == "blacklisted" else f"C-{prefix}{e}")
            for e in external]


@pytest.fixture
def stored(tmp_path: Path, db_url: str) -> Iterator[Stored]:
    """Real orders screened by the shipped blocking rules: the sofa (4,009.00) first and passed, then a TV
    (6,510.00, held), two sofas (held), tea (passed) and a blacklisted customer's tea (held)."""
    oms = build_oms(tmp_path, db_url)
    numbers = _ingest(oms, *_screened("sofa", "tv", "two-sofas", "tea", "blacklisted"))
    yield Stored(oms, numbers)
    oms.close()


def _rules_state(oms: OMS) -> tuple[Any, ...]:
    with oms.db.read() as s:
        return (oms.rulebook.version("blocking"), oms.rules.versions(),
                s.scalar(select(func.count()).select_from(RuleChange)),
                s.scalar(select(func.count()).select_from(RuleVersion)),
                sorted(s.execute(select(ActiveRule.ruleset, ActiveRule.version_id)).all()))


def test_a_lower_threshold_changes_exactly_the_orders_it_would_hold(stored: Stored) -> None:
    oms, n = stored.oms, stored.numbers
    before = _rules_state(oms)
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=LOWER, filename="blocking.yaml")

    assert (report.ruleset, report.active_version, report.last) == ("blocking", oms.rulebook.version("blocking"), 100)
    assert report.version != report.active_version
    assert report.to_dict()["counts"] == {"decisions": 5, "evaluated": 5, "changed": 1, "unchanged": 4, "errors": 0}
    [changed] = report.to_dict()["changed"]
    assert changed["order"] == n["sofa"]
    assert changed["before"] == {"version": report.active_version, "fired": [], "actions": [],
                                 "outcome": {"hold": False, "reasons": []}}
    reason = "new customer, order over 5,000.00"
    assert changed["after"] == {"version": report.version, "fired": ["big-first-order"],
                                "actions": [{"hold": {"reason": reason}}],
                                "outcome": {"hold": True, "reasons": [reason]}}
    with oms.db.read() as s:
        at = s.scalar(select(DecisionRecord.at).where(DecisionRecord.id == changed["decision"]))
    assert at is not None and changed["decided_at"] == at.isoformat(timespec="seconds")
    # the shipped rule tests run on the candidate: the one about the old threshold now fails, saying where
    tests = report.to_dict()["tests"]
    assert tests["failed"] == 1 and tests["passed"] >= 5
    [failed] = [t for t in tests["results"] if not t["passed"]]
    assert failed["case"] == "exactly 5,000.00 is not over the threshold"
    assert "rules/tests/blocking.yaml:" in failed["message"] and "big-first-order" in failed["message"]

    # a report only: the rules in force, the stored versions and the changes are as they were
    assert _rules_state(oms) == before
    with oms.db.read() as s:
        assert not s.scalar(select(func.count()).select_from(RuleVersion)
                            .where(RuleVersion.version == report.version))
    # and orders go on being decided by the rules in force: another sofa still passes
    more = _ingest(oms, *_screened("sofa", prefix="again-"))
    with oms.db.read() as s:
        assert s.scalar(select(Order.status).where(Order.number == more["again-sofa"])) != "on_hold"


def test_other_words_change_the_decisions_the_rule_made_too(stored: Stored) -> None:
    oms, n = stored.oms, stored.numbers
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=LOWER_SAID, filename="blocking.yaml")
    by_order = {c.order: c for c in report.changed}
    assert set(by_order) == {n["sofa"], n["tv"], n["two-sofas"]}
    tv = by_order[n["tv"]]
    assert tv.before.fired == tv.after.fired == ["big-first-order"]
    assert tv.before.outcome == {"hold": True, "reasons": ["new customer, order over 5,000.00"]}
    assert tv.after.outcome == {"hold": True, "reasons": ["new customer, order over 3,000.00"]}
    assert report.unchanged == 2 and not report.errors
    # newest first
    assert [c.order for c in report.changed] == [n["two-sofas"], n["tv"], n["sofa"]]


def test_last_n_reads_only_the_newest_decisions(stored: Stored) -> None:
    oms = stored.oms
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=LOWER, filename="blocking.yaml", last=4)
    # the sofa was decided first, so it is not among the latest four
    assert (report.decisions, report.evaluated, report.changed, report.errors) == (4, 4, [], [])
    for last in (0, MAX_LAST + 1):
        with pytest.raises(ValueError, match="last must be"):
            dry_run(db=oms.db, rulebook=oms.rulebook, text=LOWER, filename="blocking.yaml", last=last)


def test_the_rules_in_force_replayed_change_nothing(stored: Stored) -> None:
    """The replay is the production path: the version in force, replayed on its own decisions, changes none."""
    oms = stored.oms
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=BLOCKING, filename="blocking.yaml")
    assert report.version == report.active_version
    assert (report.evaluated, report.changed, report.errors) == (5, [], [])
    assert report.tests and report.tests_failed == 0


def test_refusals_and_bins_replay_as_the_screening_stage_records_them(tmp_path: Path, sqlite_url: str) -> None:
    """The outcome the dry-run gives a decision is the one pipeline/screen.py records for the same actions."""
    rules = copy_rules(tmp_path)
    edited = BLOCKING.replace("      - hold: {reason: customer is on the blacklist}",
                              "      - refuse: {reason: customer is on the blacklist}").replace(
        '      - hold: {reason: "new customer, order over 5,000.00"}',
        '      - bin: {reason: "new customer, order over 5,000.00"}')
    (rules / "blocking.yaml").write_text(edited, encoding="utf-8")
    oms = build_oms(tmp_path, sqlite_url, rules_dir=rules)
    try:
        _ingest(oms, *_screened("tv", "tea", "blacklisted"))
        with oms.db.read() as s:
            outcomes = list(s.scalars(select(DecisionRecord.outcome).where(DecisionRecord.point == "blocking")))
        assert {next(iter(o)) for o in outcomes} == {"bin", "hold", "refuse"}
        report = dry_run(db=oms.db, rulebook=oms.rulebook, text=edited, filename="blocking.yaml")
        assert (report.evaluated, report.changed, report.errors) == (3, [], [])
        # replayed with the shipped rules instead, the refusal and the bin become holds
        report = dry_run(db=oms.db, rulebook=oms.rulebook, text=BLOCKING, filename="blocking.yaml")
        assert sorted(next(iter(c.before.outcome or {})) for c in report.changed) == ["bin", "refuse"]
        assert all(c.after.outcome and c.after.outcome["hold"] for c in report.changed)
    finally:
        oms.close()


def test_decisions_that_cannot_be_replayed_are_counted_and_listed(stored: Stored) -> None:
    oms, n = stored.oms, stored.numbers
    # a field the version in force does not read was never stored with its decisions
    reads_more = LOWER.replace("ship_to.complete: false", "ship_to.country: FR")
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=reads_more, filename="blocking.yaml")
    assert (report.decisions, report.evaluated, len(report.errors)) == (5, 0, 5)
    assert {e.order for e in report.errors} == set(n.values())
    assert all("ship_to.country" in e.why and "never stored" in e.why for e in report.errors)

    # a decision stored without facts, and one made by a version the database does not hold
    with oms.db.session() as s:
        tea = s.scalar(select(DecisionRecord).join(Order, Order.id == DecisionRecord.order_id)
                       .where(Order.number == n["tea"], DecisionRecord.point == "blocking"))
        assert tea is not None
        tea.facts = None
        s.execute(update(DecisionRecord).where(DecisionRecord.id == tea.id - 1).values(version="0123456789abcdef"))
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=LOWER, filename="blocking.yaml")
    assert report.to_dict()["counts"] == {"decisions": 5, "evaluated": 4, "changed": 1, "unchanged": 3, "errors": 1}
    [error] = report.to_dict()["errors"]
    assert error["order"] == n["tea"] and "no facts stored" in error["why"]
    # the unknown version's facts hold every field the candidate reads: replayed
    report = dry_run(db=oms.db, rulebook=oms.rulebook, text=reads_more, filename="blocking.yaml")
    unknown = [e for e in report.errors if e.version == "0123456789abcdef"]
    assert len(unknown) == 1 and "is not stored" in unknown[0].why and "ship_to.country" in unknown[0].why


def test_an_invalid_candidate_names_file_line_and_rule(stored: Stored) -> None:
    oms = stored.oms
    bad_line = BLOCKING.splitlines().index("      customer.blacklisted: true") + 1
    cases = {
        "type": (BLOCKING.replace("customer.blacklisted: true", "customer.blacklisted: {gt: yes-please}"),
                 bad_line, "blacklisted-customer"),
        "yaml": (BLOCKING.replace("    priority: 20\n", "    priority: [20\n"), None, None),
        "point": (BLOCKING.replace("ruleset: blocking", "ruleset: blockng"), 1, None),
    }
    for case, (text, line, rule) in cases.items():
        with pytest.raises(RulesetInvalid) as caught:
            dry_run(db=oms.db, rulebook=oms.rulebook, text=text, filename="cand/blocking.yaml")
        errors = caught.value.errors
        assert errors and all(e.file == "cand/blocking.yaml" and e.line for e in errors), (case, errors)
        if line is not None:
            assert any(e.line == line and e.rule == rule for e in errors), (case, errors)
        assert "cand/blocking.yaml:" in str(caught.value)
    with pytest.raises(RulesetInvalid, match=r"x\.yaml:1: ruleset 'blockng' is not a decision point"):
        load_candidate(oms.rulebook, cases["point"][0], "x.yaml")


def test_a_candidate_is_stored_without_being_made_active(stored: Stored) -> None:
    oms = stored.oms
    active = oms.rulebook.version("blocking")
    [first] = oms.rules.versions("blocking")
    assert first["activated_by"] == "oms:start" and first["activated_at"] == first["created_at"]

    row = oms.rules.store(LOWER, filename="blocking.yaml", actor="ops:li")
    assert row["stored"] and not row["active"] and row["author"] == "ops:li"
    assert (row["activated_by"], row["activated_at"], row["activated_in"]) == (None, None, None)
    assert oms.rulebook.version("blocking") == active
    assert oms.rules.store(LOWER, filename="blocking.yaml", actor="ops:wang")["stored"] is False
    with pytest.raises(RulesetInvalid):
        oms.rules.store("ruleset: blocking\nrules: [\n", filename="blocking.yaml", actor="ops:li")

    oms.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    change = oms.rules.activate(f"blocking@{row['version'][:8]}", actor="ops:zhao")
    assert change.changed == {"blocking": (active, row["version"])}
    by_version = {v["version"]: v for v in oms.rules.versions("blocking")}
    assert by_version[row["version"]]["active"] and by_version[row["version"]]["activated_by"] == "ops:zhao"
    assert by_version[row["version"]]["activated_in"] == change.id
    assert by_version[row["version"]]["activated_at"] > by_version[row["version"]]["created_at"]
    assert not by_version[active]["active"] and by_version[active]["activated_by"] == "oms:start"
    # the stored candidate decides now: another sofa is held
    more = _ingest(oms, *_screened("sofa", prefix="after-"))
    with oms.db.read() as s:
        assert s.scalar(select(Order.status).where(Order.number == more["after-sofa"])) == "on_hold"


# -------------------------------------------------------------------------------------------------- the command
def _cli_orders(cli: Cli) -> dict[str, str]:
    oms = cli.oms()
    try:
        return _ingest(oms, *_screened("sofa", "tv", "tea"))
    finally:
        oms.close()


def test_oms_rules_dry_run(cli: Cli) -> None:
    numbers = _cli_orders(cli)
    candidate = cli.tmp_path / "candidate.yaml"
    candidate.write_text(LOWER, encoding="utf-8")

    p = cli("rules", "dry-run", str(candidate), "--last", "50")
    out = p.stdout
    assert "3 of the latest 50 blocking decisions read: 3 evaluated, 1 would change, 2 unchanged, 0 not replayed" \
        in " ".join(out.split())
    assert numbers["sofa"] in out and numbers["tv"] not in out    # the order number whole, on one line
    assert "big-first-order" in out and '"hold": true' in out and '"hold": false' in out
    assert "rule tests: 5 passed, 1 failed" in out and "exactly 5,000.00 is not over the threshold" in out

    data = json.loads(cli("rules", "dry-run", str(candidate), "--json").stdout)
    assert [c["order"] for c in data["changed"]] == [numbers["sofa"]]
    assert data["counts"]["changed"] == 1 and data["last"] == 100

    # nothing was stored or made active
    versions = json.loads(cli("rules", "versions", "blocking", "--json").stdout)
    assert len(versions) == 1 and versions[0]["version"] != data["version"]
    assert versions[0]["activated_by"] == "oms:start"

    # an invalid candidate: file:line, and a failure exit
    candidate.write_text(BLOCKING.replace("customer.blacklisted: true", "custmer.level: gold"), encoding="utf-8")
    line = BLOCKING.splitlines().index("      customer.blacklisted: true") + 1
    p = cli("rules", "dry-run", str(candidate), ok=False)
    assert f"{candidate}:{line}:" in p.stderr and "custmer.level" in p.stderr
    cli("rules", "dry-run", str(candidate), "--last", "0", ok=False)


def test_oms_rules_check_takes_one_candidate_file(cli: Cli) -> None:
    candidate = cli.tmp_path / "blocking-next.yaml"
    candidate.write_text(LOWER, encoding="utf-8")
    p = cli("rules", "check", str(candidate))
    assert f"{candidate}: ruleset 'blocking' ok, 6 rules, version" in p.stdout
    candidate.write_text(LOWER.replace("ruleset: blocking", "ruleset: blockng"), encoding="utf-8")
    p = cli("rules", "check", str(candidate), ok=False)
    assert f"{candidate}:1:" in p.stderr and "not a decision point" in p.stderr
    # the directory form still checks everything
    assert "ruleset 'routing' ok" in cli("rules", "check", str(ROOT / "rules")).stdout

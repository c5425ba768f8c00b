"""Ruleset versions live in the database: publish, activate, roll back, and every OMS on the database follows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.decisions.versions import RuleVersionError
from oms_engine.engine import OMS
from oms_engine.rules import RulesetInvalid
from oms_engine.storage.models import RuleChange
from tests.support import build_oms, copy_rules, order_json, payload
from tests.support.pipeline import status

PEN_RULE = """
  - name: pens-need-review
    priority: 1
    when:
      any_line: {sku: PEN-1}
    then:
      - hold: {reason: pens need review}
"""


def _add_pen_rule(rules: Path) -> None:
    path = rules / "blocking.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("rules:\n", "rules:\n" + PEN_RULE, 1), encoding="utf-8")


def _pen_order(oms: OMS, ext: str) -> str:
    [r] = oms.intake.ingest("json", payload(order_json(ext, [("PEN-1", 1)])))
    oms.pipeline.run_until_idle()
    assert r.number
    return r.number


@pytest.fixture
def edited(tmp_path: Path, db_url: str) -> tuple[OMS, Path]:
    rules = copy_rules(tmp_path)
    oms = build_oms(tmp_path, db_url, rules_dir=rules)
    yield oms, rules
    oms.close()


def test_the_first_process_publishes_the_rules_directory(edited: tuple[OMS, Path]) -> None:
    oms, _ = edited
    versions = oms.rules.versions()
    assert {v["ruleset"] for v in versions} == {"blocking", "split", "routing", "merging", "carriers", "notifications",
                                                "aftersales", "refunds", "commission", "freight", "stock"}
    assert all(v["active"] and v["author"] == "oms:start" for v in versions)
    assert {v["ruleset"]: v["version"] for v in versions} == {n: rs.version for n, rs in oms.rulebook.rulesets.items()}


def test_publish_then_rollback_then_activate(edited: tuple[OMS, Path]) -> None:
    oms, rules = edited
    old = oms.rulebook.version("blocking")
    assert status(oms, _pen_order(oms, "P-1")) == "dispatched"
    _add_pen_rule(rules)
    change = oms.rules.publish_dir(actor="ops:li", note="pens")
    new = oms.rulebook.version("blocking")
    assert change.changed == {"blocking": (old, new)}
    assert status(oms, _pen_order(oms, "P-2")) == "on_hold"

    undo = oms.rules.rollback(actor="ops:li")
    assert undo.changed == {"blocking": (new, old)} and oms.rulebook.version("blocking") == old
    assert status(oms, _pen_order(oms, "P-3")) == "dispatched"
    with oms.db.read() as s:
        rolled = s.scalar(select(RuleChange).where(RuleChange.id == change.id))
        assert rolled is not None and rolled.rolled_back_by == undo.id
    # nothing before the initial publication to go back to
    with pytest.raises(RuleVersionError, match="nothing before it"):
        oms.rules.rollback(actor="ops:li")

    again = oms.rules.activate(f"blocking@{new[:8]}", actor="ops:li")
    assert again.changed == {"blocking": (old, new)}
    assert status(oms, _pen_order(oms, "P-4")) == "on_hold"
    with pytest.raises(RuleVersionError, match="no stored ruleset version"):
        oms.rules.activate("ffffffff", actor="ops:li")


def test_a_broken_version_never_becomes_active(edited: tuple[OMS, Path]) -> None:
    oms, rules = edited
    before = {v["ruleset"]: v["version"] for v in oms.rules.versions() if v["active"]}
    teleport = "ruleset: routing\nrules:\n  - name: x\n    then: [{route: {strategy: teleport}}]\n"
    (rules / "routing.yaml").write_text(teleport, encoding="utf-8")
    with pytest.raises(RulesetInvalid, match="unknown routing strategy 'teleport'"):
        oms.rules.publish_dir(actor="ops")
    (rules / "routing.yaml").unlink()
    with pytest.raises(RulesetInvalid, match="the ruleset 'routing' is missing"):
        oms.rules.publish_dir(actor="ops")
    assert {v["ruleset"]: v["version"] for v in oms.rules.versions() if v["active"]} == before
    assert oms.rulebook.version("routing") == before["routing"]


def test_another_oms_on_the_database_picks_up_a_change_between_passes(tmp_path: Path, db_url: str) -> None:
    rules = copy_rules(tmp_path)
    first = build_oms(tmp_path, db_url, rules_dir=rules)
    second = OMS(first.config, clock=first.clock)
    try:
        _add_pen_rule(rules)
        first.rules.publish_dir(actor="ops")
        assert second.rulebook.version("blocking") != first.rulebook.version("blocking")
        assert status(second, _pen_order(second, "P-9")) == "on_hold"   # the pass refreshed the rules first
        assert second.rulebook.version("blocking") == first.rulebook.version("blocking")
    finally:
        second.close()
        first.close()


def test_an_order_stored_after_a_change_is_decided_by_it_even_in_a_pass_begun_before(
        tmp_path: Path, db_url: str) -> None:
    rules = copy_rules(tmp_path)
    first = build_oms(tmp_path, db_url, rules_dir=rules)
    worker = OMS(first.config, clock=first.clock)
    numbers: list[str] = []

    def meanwhile() -> None:
        # The worker's pass has looked for rule changes already; then operations publish and an order arrives.
        worker.pipeline.before_pass.remove(meanwhile)
        _add_pen_rule(rules)
        first.rules.publish_dir(actor="ops")
        [r] = first.intake.ingest("json", payload(order_json("P-10", [("PEN-1", 1)])))
        numbers.append(r.number or "")

    worker.pipeline.before_pass.append(meanwhile)
    try:
        old = worker.rulebook.version("blocking")
        worker.pipeline.run_pass()
        assert worker.rulebook.version("blocking") != old
        assert status(worker, numbers[0]) == "on_hold"
    finally:
        worker.close()
        first.close()


def test_decisions_store_the_facts_they_were_made_on(edited: tuple[OMS, Path]) -> None:
    oms, _ = edited
    number = _pen_order(oms, "F-1")
    with oms.db.read() as s:
        from oms_engine.orders.explain import explain
        story = explain(s, number)
    blocking = next(d for d in story["decisions"] if d["point"] == "blocking")
    assert blocking["facts"]["customer"]["blacklisted"] is False
    replay = oms.rulebook.decide("blocking", blocking["facts"])
    assert replay is not None and [f.name for f in replay.fired] == [f["rule"] for f in blocking["fired"]]


def test_a_decision_point_new_in_this_version_gets_its_ruleset_from_the_directory_once(tmp_path: Path,
                                                                                       db_url: str) -> None:
    """A database whose active rules predate a decision point (an upgrade): the first process to start
    publishes that point's ruleset from the rules directory, and leaves the others as they were."""
    from sqlalchemy import delete

    from oms_engine.storage.models import ActiveRule
    first = build_oms(tmp_path, db_url)
    blocking = first.rulebook.version("blocking")
    with first.db.session() as s:
        s.execute(delete(ActiveRule).where(ActiveRule.ruleset == "aftersales"))
    first.close()
    again = OMS(first.config, clock=first.clock)
    try:
        assert again.rulebook.version("aftersales") and again.rulebook.version("blocking") == blocking
        with again.db.read() as s:
            note = s.scalars(select(RuleChange.note).order_by(RuleChange.id.desc())).first()
        assert note is not None and note.startswith("new decision point(s) aftersales")
    finally:
        again.close()

"""The ``oms`` command line against a private config and database.

Commands run in this process (tests/support/cli.py); the installed console script, in processes of its own,
where that is the subject: a new database made by it, what its user sees of an error, several at once
(``Cli.many``). Each ``oms`` start costs about a second (imports, plugins, rules), so the tests combine steps of
one story and check database state through Python where the command's own output is not what is under test.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oms_engine.orders.machine import SHIPPED_OR_LATER, State
from oms_engine.orders.queries import get_order
from tests.support import ROOT, build_oms, order_json, payload
from tests.support.cli import Cli


@pytest.fixture
def pg_cli(tmp_path: Path, db_url: str) -> Iterator[Cli]:
    """The same on PostgreSQL (tests using it parametrize db_url to postgresql only)."""
    build_oms(tmp_path, db_url).close()
    yield Cli(tmp_path, db_url)


def status_of(c: Cli, number: str) -> str:
    oms = c.oms()
    try:
        with oms.db.session() as s:
            return get_order(s, number).status
    finally:
        oms.close()


# --------------------------------------------------------------------------- init and config


def test_init_creates_the_schema_and_is_repeatable(tmp_path: Path) -> None:
    c = Cli(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}")
    first = c("init", subprocess=True)      # the installed console script
    assert (tmp_path / "fresh.db").exists()
    second = c("init")
    rev = first.stdout.split("revision")[1].split()[0]
    assert rev and second.stdout.split("revision")[1].split()[0] == rev
    # the schema is complete: an order can be stored in it (held: the catalogue is empty)
    oms = c.oms()
    try:
        [r] = oms.intake.ingest("json", payload(order_json("INIT-1")))
        assert r.number and r.status == "on_hold"
    finally:
        oms.close()


def test_db_flag_beats_environment_beats_config(tmp_path: Path) -> None:
    c = Cli(tmp_path, f"sqlite:///{tmp_path / 'file.db'}")
    env = c.env(OMS_DATABASE_URL=f"sqlite:///{tmp_path / 'env.db'}")
    c("--db", f"sqlite:///{tmp_path / 'flag.db'}", "init", env=env)
    assert (tmp_path / "flag.db").exists()
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "file.db").exists()
    c("init", env=env)
    assert (tmp_path / "env.db").exists() and not (tmp_path / "file.db").exists()


def test_config_with_unknown_key_is_a_clear_error(tmp_path: Path) -> None:
    c = Cli(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    c.write_config(databse_url="sqlite:///typo.db")
    p = c("init", ok=False)
    assert p.returncode == 1
    assert "databse_url" in p.stderr


def test_no_rules_directory_is_a_clear_error(tmp_path: Path) -> None:
    """Run where there is no config.yaml and no rules/: one clear error line, not a traceback."""
    empty = tmp_path / "empty"
    empty.mkdir()
    c = Cli(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    env = {k: v for k, v in c.env().items() if k != "OMS_CONFIG"}
    p = c("--db", f"sqlite:///{tmp_path / 'x.db'}", "order", "list", env=env, cwd=empty, ok=None)
    assert "Traceback" not in p.stderr
    assert p.returncode != 0 and "rules" in p.stderr


def test_database_not_initialised_is_a_clear_error(tmp_path: Path) -> None:
    """`oms order list` before `oms init`: a short error, not a traceback."""
    c = Cli(tmp_path, f"sqlite:///{tmp_path / 'never-initialised.db'}")
    p = c("order", "list", ok=None, subprocess=True)   # all its stderr: what Python itself prints, too
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.returncode != 0
    assert 0 < len(p.stderr.strip().splitlines()) <= 3, p.stderr


# --------------------------------------------------------------------------- ingest, run, show, list


def test_ingest_run_show_list(cli: Cli) -> None:
    path = cli.write_orders("orders.json", order_json("CLI-1"), order_json("CLI-BAD", customer="C-BAD"),
                            order_json("CLI-UNM", [("NOT-IN-CATALOGUE", 1)]))
    results = cli.ingest(path)
    assert isinstance(results, list) and len(results) == 3
    for r in results:
        assert r["channel"] == "json" and r["number"] and r["status"] and "error" not in r
    assert [r["external_id"] for r in results] == ["CLI-1", "CLI-BAD", "CLI-UNM"]
    assert [r["status"] for r in results] == ["paid", "paid", "on_hold"]
    good, bad, unmapped = (r["number"] for r in results)

    assert cli("run").returncode == 0

    shown, text, listed, again = cli.many(
        (("order", "show", bad, "--json"), True), (("order", "show", bad), True),
        (("order", "list", "--status", "on_hold", "--json"), True),
        (("ingest", "--channel", "json", path, "--json"), True))

    held = json.loads(shown.stdout)
    assert held["number"] == bad and held["status"] == "on_hold" and "blacklist" in held["hold_reason"]
    assert [h["event"] for h in held["history"]] == ["create", "pay", "hold"]
    fired = [f["rule"] for d in held["decisions"] if d["point"] == "blocking" for f in d["fired"]]
    assert fired == ["blacklisted-customer"]

    out = text.stdout
    assert bad in out and "on_hold" in out
    assert "blacklisted-customer" in out  # the decision names the rule that fired
    for word in ("timeline", "decisions", "create", "pay", "hold", "blocking"):
        assert word in out

    assert sorted(o["number"] for o in json.loads(listed.stdout)) == sorted([bad, unmapped])
    unm = next(o for o in json.loads(listed.stdout) if o["number"] == unmapped)
    assert "unmapped SKU 'NOT-IN-CATALOGUE'" in unm["hold_reason"]

    # the same file again: the same numbers, nothing new
    assert [r["number"] for r in json.loads(again.stdout)] == [good, bad, unmapped]
    assert all(r.get("duplicate") for r in json.loads(again.stdout))
    assert status_of(cli, good) not in ("pending_payment", "paid")  # `oms run` took it on


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_ingest_run_show_on_postgresql(pg_cli: Cli) -> None:
    [r] = pg_cli.ingest(pg_cli.write_orders("o.json", order_json("PG-1")))
    assert r["status"] == "paid"
    pg_cli("run")
    shown = pg_cli.show(r["number"])
    assert [h["event"] for h in shown["history"]][:3] == ["create", "pay", "route"]
    assert {d["point"] for d in shown["decisions"]} >= {"blocking", "split", "routing"}


def test_ingest_malformed_reports_error_and_exits_1(cli: Cli) -> None:
    bad = order_json("MAL-1")
    bad["lines"][0]["quantity"] = -2
    mixed = cli.write_orders("bad.json", bad, order_json("MAL-OK"))
    garbage = cli.tmp_path / "garbage.json"
    garbage.write_text("{this is not json", encoding="utf-8")
    as_json = cli("ingest", "--channel", "json", mixed, str(garbage), "--json", ok=False)
    as_text = cli("ingest", "--channel", "json", str(garbage), ok=False)
    assert as_json.returncode == 1
    results = json.loads(as_json.stdout)
    by_id = {r.get("external_id"): r for r in results}
    assert "lines.0.quantity" in by_id["MAL-1"]["error"] and "number" not in by_id["MAL-1"]
    assert by_id["MAL-OK"]["number"] and "error" not in by_id["MAL-OK"]  # the good one is still stored
    [garbage_entry] = [r for r in results if r["file"] == str(garbage)]
    assert "invalid JSON" in garbage_entry["error"]
    assert as_text.returncode == 1 and "invalid JSON" in as_text.stderr


def test_unknown_channel_and_unknown_order_are_clear_errors(cli: Cli) -> None:
    path = cli.write_orders("o.json", order_json("CH-1"))
    channel = cli("ingest", "--channel", "nosuch", path, ok=False)
    show = cli("order", "show", "2611020000000000000", ok=False)
    assert "nosuch" in channel.stderr
    assert "2611020000000000000" in show.stderr


# --------------------------------------------------------------------------- actions


def _ship(c: Cli, number: str) -> str:
    """Drive an order through the simulated warehouse until it has shipped."""
    oms = c.oms()
    try:
        for _ in range(30):
            oms.pipeline.run_until_idle()
            with oms.db.session() as s:
                status = get_order(s, number).status
            if State(status) in SHIPPED_OR_LATER:
                return status
            due = oms.pipeline.next_due()
            assert due is not None, f"order stuck in {status}"
            oms.clock.advance_to(due)  # type: ignore[attr-defined]
        raise AssertionError("order never shipped")
    finally:
        oms.close()


def _ingest(c: Cli, *orders: dict[str, Any]) -> list[str]:
    oms = c.oms()
    try:
        results = oms.intake.ingest("json", payload(*orders))
    finally:
        oms.close()
    assert all(r.number for r in results), results
    return [r.number for r in results if r.number]


def test_cancel_a_shipped_order_is_refused_in_one_line(cli: Cli) -> None:
    [number] = _ingest(cli, order_json("SHIP-1"))
    status = _ship(cli, number)
    p = cli("order", "cancel", number, ok=False)
    assert p.returncode == 1
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert number in lines[0] and "cancel" in lines[0] and status in lines[0]
    assert status_of(cli, number) == status


def test_pay_and_cancel(cli: Cli) -> None:
    unpaid, other = _ingest(cli, order_json("PAY-1", [("TEA-1", 2)], paid=False),
                            order_json("CAN-1", paid=False))
    negative, decimals, short, cancel = cli.many(
        (("order", "pay", unpaid, "--amount=-128.00", "--txn", "T-NEG"), False),
        (("order", "pay", unpaid, "--amount=128.001", "--txn", "T-DEC"), False),
        (("order", "pay", unpaid, "--amount=100.00", "--txn", "T-SHORT", "--method", "gift_card"), True),
        (("order", "cancel", other), True))
    assert "negative" in negative.stderr
    assert "decimals" in decimals.stderr
    assert "pending_payment" in short.stdout       # paid in part: 28.00 still owed
    assert "cancelled" in cancel.stdout and status_of(cli, other) == "cancelled"
    assert status_of(cli, unpaid) == "pending_payment"
    # 2 x 59.00 + 10.00 freight
    p = cli("order", "pay", unpaid, "--amount", "28.00", "--txn", "T-OK", "--method", "card")
    assert "paid" in p.stdout
    oms = cli.oms()
    try:
        with oms.db.session() as s:
            order = get_order(s, unpaid)
            assert (order.status, order.paid_amount, order.payment_txn) == ("paid", 12800, "T-SHORT")
    finally:
        oms.close()
    shown = cli("order", "show", unpaid, "--json")
    assert [(p["serial"], p["method"], p["amount"]) for p in json.loads(shown.stdout)["payments"]] == [
        (f"{unpaid}-P01", "gift_card", 10000), (f"{unpaid}-P02", "card", 2800)]
    table = cli("order", "show", unpaid).stdout
    assert "payments" in table and f"{unpaid}-P02" in table and "gift_card" in table


# --------------------------------------------------------------------------- rules


def test_rules_check_project_rules(cli: Cli) -> None:
    p = cli("rules", "check")
    for name in ("blocking", "split", "routing", "notifications"):
        assert f"ruleset '{name}' ok" in p.stdout


BROKEN = {
    "bad-yaml": ("routing.yaml", "    priority: 20\n", "    priority: [20\n", None),
    "unknown-field": ("blocking.yaml", "customer.blacklisted: true", "custmer.level: gold", "custmer.level"),
    "unknown-strategy": ("split.yaml", "strategy: by_merchant", "strategy: by_merchnt", "by_merchnt"),
}


def _broken_copy(tmp_path: Path, case: str) -> Path:
    file, old, new, _ = BROKEN[case]
    rules = tmp_path / f"rules-{case}"
    shutil.copytree(ROOT / "rules", rules)
    text = (rules / file).read_text(encoding="utf-8")
    assert old in text
    (rules / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    return rules


def _assert_file_line(stderr: str, rules: Path, file: str, lines: tuple[int, ...]) -> None:
    assert f"{rules / file}:" in stderr or f"{file}:" in stderr, stderr
    loc = stderr.split(f"{file}:")[1].split(":")[0]
    assert loc.isdigit() and int(loc) in lines, stderr


def test_rules_check_broken_copies(cli: Cli) -> None:
    copies = {case: _broken_copy(cli.tmp_path, case) for case in BROKEN}
    outs = [cli("rules", "check", str(copies[case]), ok=False) for case in BROKEN]
    for case, p in zip(BROKEN, outs, strict=True):
        file, _old, new, word = BROKEN[case]
        assert p.returncode == 1, case
        text = (copies[case] / file).read_text(encoding="utf-8")
        line = text[:text.index(new)].count("\n") + 1
        # a YAML parser may only notice the unclosed bracket on the next line
        _assert_file_line(p.stderr, copies[case], file, (line, line + 1) if case == "bad-yaml" else (line,))
        if word:
            assert word in p.stderr
    # and through config.yaml's rules_dir, as an operator runs it
    cli.write_config(rules_dir=str(copies["unknown-field"]))
    p = cli("rules", "check", ok=False)
    assert "custmer.level" in p.stderr and "blocking.yaml:" in p.stderr


def test_rules_check_finds_a_broken_template(cli: Cli) -> None:
    """Templates are checked with the rules: a misspelt variable is found before any SMS is due."""
    templates = cli.tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "shipped.sms.j2").write_text("Order {{ order.numbr }} has shipped.\n", encoding="utf-8")
    cli.write_config(templates_dir=str(templates))
    p = cli("rules", "check", ok=False)
    assert "shipped" in p.stderr


RULE_CASES = """\
ruleset: blocking
cases:
  - name: blacklisted customer is held
    facts:
      customer: {blacklisted: true, order_count: 3, orders_last_24h: 1}
      order: {payable: 1000}
      ship_to: {complete: true}
      risk: {po_box: false, disposable_email: false, large_quantity: false}
    expect:
      fired: [blacklisted-customer]
      actions: [{hold: {reason: customer is on the blacklist}}]
  - name: a regular customer passes
    facts:
      customer: {blacklisted: false, order_count: 3, orders_last_24h: 1}
      order: {payable: 1000}
      ship_to: {complete: true}
      risk: {po_box: false, disposable_email: false, large_quantity: false}
    expect:
      fired: []
"""


def test_rules_test(cli: Cli) -> None:
    good = cli.tmp_path / "rules-good"
    bad = cli.tmp_path / "rules-bad"
    for d, cases in ((good, RULE_CASES), (bad, RULE_CASES.replace("fired: []", "fired: [po-box]"))):
        shutil.copytree(ROOT / "rules", d)
        shutil.rmtree(d / "tests", ignore_errors=True)
        (d / "tests").mkdir()
        (d / "tests" / "blocking_cli.yaml").write_text(cases, encoding="utf-8")
    project = cli("rules", "test", ok=None)
    passing = cli("rules", "test", str(good))
    failing = cli("rules", "test", str(bad), ok=False)
    assert "2 passed, 0 failed" in passing.stdout
    assert failing.returncode == 1 and "1 passed, 1 failed" in failing.stdout
    assert "a regular customer passes" in failing.stdout and "blocking_cli.yaml:" in failing.stdout
    # the project's own cases
    if sorted((ROOT / "rules" / "tests").glob("*.y*ml")):
        assert project.returncode == 0, project.stdout + project.stderr
        assert " 0 failed" in project.stdout and "FAIL" not in project.stdout
    else:
        # no cases yet: the command says so and fails, so a CI job cannot pass vacuously
        assert project.returncode == 1
        assert "0 passed, 0 failed" in project.stdout

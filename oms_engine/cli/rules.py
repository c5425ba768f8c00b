"""``oms rules ...``: check and test the YAML files, dry-run a candidate, publish them, and manage the versions in
force."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..rules import RuleError, RulesetInvalid
from .root import Ctx, console, errors_to_exit, main


@main.group()
def rules() -> None:
    """Check, test and publish the YAML rules; list, activate and roll back versions."""


def _rulebook(c: Ctx, directory: Path | None):  # type: ignore[no-untyped-def]
    """A rulebook with the configured plugins, without a database: for checking files."""
    from ..decisions.rulebook import Rulebook
    from ..plugin.manager import load_plugins
    from ..plugin.registry import PluginRegistry
    cfg = c.config
    registry = PluginRegistry(load_plugins(cfg.plugins, base_dir=cfg.path(".")).pm, cfg)
    return Rulebook(directory or cfg.path(cfg.rules_dir), registry)


@rules.command("check")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
@errors_to_exit
def rules_check(c: Ctx, path: Path | None) -> None:
    """Validate every ruleset, the status map and the templates (errors name file, line and rule).

    PATH is a rules directory (default: config.yaml's rules_dir), or one candidate ruleset file, validated for the
    decision point it names.
    """
    from ..fulfilment.status_map import load_status_map
    from ..messaging.templates import check
    if path is not None and not path.is_dir():
        from ..decisions.dryrun import load_candidate
        rs = load_candidate(_rulebook(c, None), _read_candidate(path), str(path))
        console.print(f"{rs.path}: ruleset '{rs.name}' ok, {len(rs.rules)} rules, version {rs.version}",
                      highlight=False)
        return
    book = _rulebook(c, path)
    loaded = book.validate_dir()
    load_status_map(book.dir / "maps" / "status.yaml")
    for name, rs in sorted(loaded.items()):
        console.print(f"{rs.path}: ruleset '{name}' ok, {len(rs.rules)} rules, version {rs.version}",
                      highlight=False)
    for name, template in book.plugins.templates.items():
        check(template.body, name=name, origin=template.origin)
        check(template.subject, name=name, origin=template.origin)
    console.print(f"{len(book.plugins.templates.names())} templates ok", highlight=False)


def _read_candidate(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesetInvalid([RuleError(str(path), None, None, f"file is not UTF-8: {exc}")]) from None


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
@errors_to_exit
def rules_test(c: Ctx, directory: Path | None) -> None:
    """Run the rule tests in DIR/tests (default rules/tests)."""
    from ..rules import run_rule_tests
    book = _rulebook(c, directory)
    results = run_rule_tests(book.dir, book.dir / "tests", schemas=book.schemas, actions=book.catalogs)
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {r.file}: {r.case}" + (f"\n     {r.message}" if not r.passed else ""), highlight=False)
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed or not results:
        sys.exit(1)


def _side(side: dict[str, Any]) -> Text:
    """One side of a decision for a table cell: the rules fired, then the outcome (or the actions)."""
    fired = ", ".join(side["fired"]) or "(no rule fired)"
    shown = side["outcome"] if side["outcome"] is not None else side["actions"]
    # Text, not markup: reasons are the rules' own words and may hold square brackets.
    return Text(f"{fired}\n{json.dumps(shown, ensure_ascii=False, sort_keys=True)}")


@rules.command("dry-run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--last", default=100, show_default=True, type=click.IntRange(1, 10_000),
              help="replay this many of the decision point's latest decisions")
@click.option("--tests", "tests_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="the rule tests to run on it (default: FILE's folder's tests/, else the rules directory's)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def rules_dry_run(c: Ctx, file: Path, last: int, tests_dir: Path | None, as_json: bool) -> None:
    """Replay a candidate ruleset FILE on the stored facts of its decision point's latest decisions.

    Shows which decisions would change, order by order, before and after, and runs the candidate's rule tests.
    Nothing is stored or made active; the exit status is 0 whatever changes (it is a report), 1 if FILE is invalid.
    """
    from ..decisions.dryrun import dry_run
    text = _read_candidate(file)
    oms = c.oms()
    try:
        if tests_dir is None:
            tests_dir = file.parent / "tests" if (file.parent / "tests").is_dir() else oms.rulebook.dir / "tests"
        report = dry_run(db=oms.db, rulebook=oms.rulebook, text=text, filename=str(file), last=last,
                         tests_dir=tests_dir)
    finally:
        oms.close()
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    n = data["counts"]
    active = report.active_version or "none"
    same = " (the version in force)" if report.version == report.active_version else ""
    console.print(f"{file}: ruleset '{report.ruleset}' version {report.version}{same}; in force: {active}",
                  highlight=False)
    console.print(f"{n['decisions']} of the latest {last} {report.ruleset} decisions read: {n['evaluated']} "
                  f"evaluated, {n['changed']} would change, {n['unchanged']} unchanged, {n['errors']} not replayed",
                  highlight=False)
    if report.changed:
        t = Table("order", "decided at", "before", "after", title="decisions that would change", show_lines=True)
        t.columns[0].no_wrap = True    # what a person copies: never cut or folded
        t.columns[1].no_wrap = True
        for ch in data["changed"]:
            t.add_row(ch["order"], ch["decided_at"], _side(ch["before"]), _side(ch["after"]))
        console.print(t)
    if report.errors:
        t = Table("order", "decided at", "version", "why not replayed", title="decisions not replayed")
        t.columns[0].no_wrap = True
        for e in data["errors"]:
            t.add_row(e["order"], e["decided_at"], e["version"], Text(e["why"]))
        console.print(t)
    tests = data["tests"]
    for r in tests["results"]:
        if not r["passed"]:
            console.print(Text(f"FAIL {r['file']}: {r['case']}\n     {r['message']}"))
    if tests["results"]:
        console.print(f"rule tests: {tests['passed']} passed, {tests['failed']} failed ({tests_dir})", highlight=False)
    else:
        console.print(f"rule tests: none for ruleset '{report.ruleset}' in {tests_dir}", highlight=False)


def _print_change(change) -> None:  # type: ignore[no-untyped-def]
    if change.id is None:
        console.print("nothing changed: the rules in force are these already")
        return
    console.print(f"change {change.id} is active everywhere within a pass:", highlight=False)
    for name, (before, after) in sorted(change.changed.items()):
        console.print(f"  {name}: {before or '-'} -> {after or '-'}", highlight=False)


@rules.command("publish")
@click.option("--note", default="", help="why, for the history")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def rules_publish(c: Ctx, note: str, actor: str) -> None:
    """Validate the rules directory and make it the active rules of every process."""
    oms = c.oms(require_rules=False)
    try:
        _print_change(oms.rules.publish_dir(actor=actor, note=note))
    finally:
        oms.close()


@rules.command("versions")
@click.argument("ruleset", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def rules_versions(c: Ctx, ruleset: str | None, as_json: bool) -> None:
    """Every stored version (newest first per ruleset); the active ones are marked."""
    oms = c.oms()
    try:
        rows = oms.rules.versions(ruleset)
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    t = Table("ruleset", "version", "active", "author", "stored at", "last activated by", "at")
    for i in (1, 4, 6):   # a hash and times, copied or compared whole
        t.columns[i].no_wrap = True
    for r in rows:
        t.add_row(r["ruleset"], r["version"], "*" if r["active"] else "", r["author"], r["created_at"],
                  r["activated_by"] or "(never active)", r["activated_at"] or "")
    console.print(t)


@rules.command("activate")
@click.argument("version")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def rules_activate(c: Ctx, version: str, actor: str) -> None:
    """Make a stored version active again: its hash (a prefix will do), or RULESET@HASH."""
    oms = c.oms(require_rules=False)
    try:
        _print_change(oms.rules.activate(version, actor=actor))
    finally:
        oms.close()


@rules.command("rollback")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def rules_rollback(c: Ctx, actor: str) -> None:
    """Undo the latest rules change (run it again to undo the one before)."""
    oms = c.oms(require_rules=False)
    try:
        _print_change(oms.rules.rollback(actor=actor))
    finally:
        oms.close()


@rules.command("history")
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
@errors_to_exit
def rules_history(c: Ctx, limit: int) -> None:
    """The latest rules changes: who, when, what moved from which version to which."""
    oms = c.oms()
    try:
        rows = oms.rules.changes(limit)
    finally:
        oms.close()
    t = Table("change", "at", "actor", "rulesets", "note")
    for r in rows:
        moved = ", ".join(f"{k} {a or '-'}->{b or '-'}" for k, (a, b) in sorted(r["entries"].items()))
        undone = f" (rolled back by {r['rolled_back_by']})" if r["rolled_back_by"] else ""
        t.add_row(str(r["id"]), r["at"], r["actor"], moved, r["note"] + undone)
    console.print(t)

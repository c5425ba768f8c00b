"""``oms rules ...``: check and test the YAML files, publish them, and manage the versions in force."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

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
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
@errors_to_exit
def rules_check(c: Ctx, directory: Path | None) -> None:
    """Validate every ruleset, the status map and the templates (errors name file, line and rule)."""
    from ..fulfilment.status_map import load_status_map
    from ..messaging.templates import check
    book = _rulebook(c, directory)
    loaded = book.validate_dir()
    load_status_map(book.dir / "maps" / "status.yaml")
    for name, rs in sorted(loaded.items()):
        console.print(f"{rs.path}: ruleset '{name}' ok, {len(rs.rules)} rules, version {rs.version}",
                      highlight=False)
    for name, template in book.plugins.templates.items():
        check(template.body, name=name, origin=template.origin)
        check(template.subject, name=name, origin=template.origin)
    console.print(f"{len(book.plugins.templates.names())} templates ok", highlight=False)


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
    t = Table("ruleset", "version", "active", "author", "stored at")
    for r in rows:
        t.add_row(r["ruleset"], r["version"], "*" if r["active"] else "", r["author"], r["created_at"])
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

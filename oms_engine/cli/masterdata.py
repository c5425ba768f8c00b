"""``oms products|warehouses|carriers|services|suppliers|skus ...`` and ``oms blacklist``: master data.

Every entity has the same commands: ``import FILE`` (CSV or JSON; a file
with a bad row imports nothing, or with ``--skip-bad`` everything else, and
every problem is reported with its file, row and field), ``list``, ``show``
(with the record's history), ``set`` (change some fields), ``deactivate``
and ``activate``; each takes ``--json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from ..masterdata.entities import ENTITIES, Entity
from ..masterdata.files import Row, _nest
from ..masterdata.service import ImportRefused, Report, key_parts
from .render import Col, Listing, emit, num, print_json, progress, prose, when, wide_option
from .root import Ctx, console, errors_to_exit, main


def print_report(report: Report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(report.summary())
        for e in report.errors:
            click.echo(f"  {e}", err=True)


def print_import(report: Report, as_json: bool) -> None:
    """What an import did, as a summary table (its bad rows on stderr, each with its file, row and field)."""
    if as_json:
        print_json(report.to_dict())
        return
    t = Listing("outcome", num("rows"), title=f"{report.entity}s from {report.source}")
    for outcome, n in (("created", len(report.created)), ("updated", len(report.updated)),
                       ("deactivated", len(report.deactivated)), ("unchanged", report.unchanged)):
        t.add_row(outcome, n)
    if report.errors:
        t.add_row("bad, skipped" if report.applied else "bad (nothing imported)", len(report.errors))
    t.print()
    for e in report.errors:
        click.echo(f"  {e}", err=True)


def _refused(exc: ImportRefused, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(exc.report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.secho("error: ", fg="red", err=True, nl=False)
        click.echo(exc.report.summary(), err=True)
        for e in exc.report.errors:
            click.echo(f"  {e}", err=True)
    sys.exit(1)


def _key(key: str | tuple[str, ...]) -> tuple[str, ...]:
    # click gives one argument as a string, several as a tuple.
    return (key,) if isinstance(key, str) else tuple(key)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value)     # capabilities, regions: words, not JSON
    if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        return ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
                         for k, v in value.items())     # attributes: key: value, as a person writes them
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _columns(ent: Entity, rows: list[dict[str, Any]]) -> list[Col]:
    """A listing's columns: the keys always, whole; a name wraps; the other fields go when the terminal is
    narrow, the later ones first and those holding records (attributes, capabilities...) before any."""
    cols: list[Col] = []
    others = [c for c in ent.columns if c not in ent.keys]
    for col in ent.columns:
        if col in ent.keys:
            cols.append(Col(col))
        elif col == "name":
            cols.append(prose(col, least=12))
        elif any(isinstance(r.get(col), dict | list) for r in rows):
            cols.append(prose(col, drop=len(others) + 1 + others.index(col), least=12))
        else:
            cols.append(Col(col, drop=1 + others.index(col)))
    return cols


def _example_prefix(ent: Entity) -> str:
    return {"products": "TEA", "warehouses": "WH-", "carriers": "SF", "services": "SF", "suppliers": "SUP-",
            "skus": "json", "freight-templates": "STD"}.get(ent.plural, "A")


def _entity_group(ent: Entity) -> click.Group:
    keys = " ".join(k.upper() for k in ent.keys)

    @main.group(ent.plural, help=f"Master data: {ent.plural} (import, list, show, set, deactivate, activate).")
    def group() -> None:
        pass

    @group.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--skip-bad", is_flag=True, help="import the good rows and report the bad ones")
    @click.option("--actor", default="cli", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    @errors_to_exit
    def import_(c: Ctx, path: Path, skip_bad: bool, actor: str, as_json: bool) -> None:
        oms = c.oms(require_rules=False)
        try:
            with progress(f"importing {ent.plural} from {path.name}"):
                report = oms.masterdata.import_file(ent.plural, path, actor=actor, skip_bad=skip_bad)
        except ImportRefused as exc:
            _refused(exc, as_json)
        finally:
            oms.close()
        print_import(report, as_json)

    import_.help = (f"Create or update {ent.plural} from a CSV or JSON file; importing it again changes nothing."
                    f"\n\n\b\nExamples:\n  oms {ent.plural} import {ent.plural}.csv\n"
                    f"  oms {ent.plural} import {ent.plural}.json --skip-bad --json")

    @group.command("list")
    @click.option("--status", type=click.Choice(["active", "inactive", "all"]), default="active", show_default=True)
    @click.option("--prefix", default=None, help=f"{ent.keys[0]} starts with this")
    @click.option("--after", default=None, help=f"the last {'/'.join(k.upper() for k in ent.keys)} of the page before")
    @click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
    @click.option("--json", "as_json", is_flag=True, help="the records as a JSON list")
    @wide_option
    @click.pass_obj
    @errors_to_exit
    def list_(c: Ctx, status: str, prefix: str | None, after: str | None, limit: int, as_json: bool,
              wide: bool) -> None:
        active = {"active": True, "inactive": False, "all": None}[status]
        oms = c.oms(require_rules=False)
        try:
            rows = oms.masterdata.list(ent.plural, active=active, prefix=prefix, limit=limit,
                                       after=key_parts(ent, after) if after else None)
        finally:
            oms.close()
        if as_json:
            print_json(rows)
            return
        t = Listing(*_columns(ent, rows), title=f"{ent.plural} ({len(rows)})")
        for r in rows:
            t.add_row(*(_cell(r[col]) for col in ent.columns))
        t.print(wide=wide)

    list_.help = (f"List {ent.plural}, in key order.\n\n\b\nExamples:\n  oms {ent.plural} list\n"
                  f"  oms {ent.plural} list --status all --prefix {_example_prefix(ent)} --wide\n"
                  f"  oms {ent.plural} list --json")

    @group.command("show")
    @click.argument("key", nargs=len(ent.keys))
    @click.option("--json", "as_json", is_flag=True)
    @wide_option
    @click.pass_obj
    @errors_to_exit
    def show(c: Ctx, key: tuple[str, ...], as_json: bool, wide: bool) -> None:
        oms = c.oms(require_rules=False)
        try:
            record = oms.masterdata.get(ent.plural, _key(key))
        finally:
            oms.close()
        if as_json:
            print_json(record)
            return
        history = record.pop("history")
        for name, value in record.items():
            line = Text()
            line.append(name, style="bold")
            line.append(f": {when(value) if name.endswith('_at') else _cell(value)}")
            emit(line, console.width)
        t = Listing("at", "action", num("version", drop=3), Col("actor", drop=1), prose("source", drop=2, least=10),
                    prose("changes"), title="history")
        for h in history:
            t.add_row(when(h["at"]), h["action"], h["version"], h["actor"], h["source"],
                      "; ".join(f"{k}: {_cell(v[0])} -> {_cell(v[1])}" for k, v in h["changes"].items()))
        t.print(wide=wide)

    show.help = f"One {ent.name} ({keys}) and its history."

    @group.command("set")
    @click.argument("key", nargs=len(ent.keys))
    @click.argument("changes", nargs=-1, required=True)
    @click.option("--actor", default="cli", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    @errors_to_exit
    def set_(c: Ctx, key: tuple[str, ...], changes: tuple[str, ...], actor: str, as_json: bool) -> None:
        names, values = [], []
        for change in changes:
            name, sep, value = change.partition("=")
            if not sep or not name:
                raise click.BadParameter(f"{change!r}: a change is FIELD=VALUE", param_hint="CHANGES")
            names.append(name.strip())
            values.append(value)
        data = {**dict(zip(ent.keys, _key(key), strict=True)), **_nest(names, values)}
        oms = c.oms(require_rules=False)
        try:
            report = oms.masterdata.apply(ent.plural, [Row("command line", data)], actor=actor, source="cli",
                                          merge=True)
        except ImportRefused as exc:
            _refused(exc, as_json)
        finally:
            oms.close()
        print_report(report, as_json)

    set_.help = (f"Create a {ent.name} or change some of its fields: {keys} FIELD=VALUE... "
                 "(nested fields as attributes.category=frozen, lists as a;b).")

    for verb, active in (("deactivate", False), ("activate", True)):
        def make(verb: str = verb, active: bool = active) -> None:
            @group.command(verb, help=f"{verb.title()} a {ent.name} ({keys}); its history records who did.")
            @click.argument("key", nargs=len(ent.keys))
            @click.option("--actor", default="cli", show_default=True)
            @click.option("--json", "as_json", is_flag=True)
            @click.pass_obj
            @errors_to_exit
            def toggle(c: Ctx, key: tuple[str, ...], actor: str, as_json: bool) -> None:
                oms = c.oms(require_rules=False)
                try:
                    report = oms.masterdata.set_active(ent.plural, _key(key), active, actor=actor, source="cli")
                finally:
                    oms.close()
                print_report(report, as_json)
        make()
    return group


for _ent in ENTITIES.values():
    _group = _entity_group(_ent)

skus_group = main.commands["skus"]


@skus_group.command("map")   # type: ignore[attr-defined]
@click.argument("channel")
@click.argument("channel_sku")
@click.argument("sku")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def skus_map(c: Ctx, channel: str, channel_sku: str, sku: str, actor: str, as_json: bool) -> None:
    """Map a channel's SKU to a catalogue SKU; orders held for it go on by themselves."""
    oms = c.oms(require_rules=False)
    try:
        report = oms.masterdata.apply("skus", [Row("command line", {"channel": channel, "channel_sku": channel_sku,
                                                                    "sku": sku})], actor=actor, source="cli")
    except ImportRefused as exc:
        _refused(exc, as_json)
    finally:
        oms.close()
    print_report(report, as_json)


@main.group()
def blacklist() -> None:
    """Customers whose orders are held for review (the blocking rules read customer.blacklisted)."""


@blacklist.command("add")
@click.argument("customer")
@click.option("--reason", required=True, help="why, kept with the change")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def blacklist_add(c: Ctx, customer: str, reason: str, actor: str) -> None:
    """Blacklist a customer by reference (a customer not seen yet is created for it)."""
    oms = c.oms(require_rules=False)
    try:
        changed = oms.blacklist.add(customer, reason=reason, actor=actor)
    finally:
        oms.close()
    click.echo(f"{customer}: blacklisted" + ("" if changed else " (already)"))


@blacklist.command("remove")
@click.argument("customer")
@click.option("--reason", required=True)
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def blacklist_remove(c: Ctx, customer: str, reason: str, actor: str) -> None:
    """Take a customer off the blacklist."""
    oms = c.oms(require_rules=False)
    try:
        changed = oms.blacklist.remove(customer, reason=reason, actor=actor)
    finally:
        oms.close()
    click.echo(f"{customer}: not blacklisted" + ("" if changed else " (was not)"))


@blacklist.command("list")
@click.option("--json", "as_json", is_flag=True, help="the customers as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def blacklist_list(c: Ctx, as_json: bool, wide: bool) -> None:
    """The blacklisted customers, with why, who and when.

    \b
    Examples:
      oms blacklist list
      oms blacklist list --json | jq -r '.[].ref'
    """
    oms = c.oms(require_rules=False)
    try:
        rows = oms.blacklist.list()
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing("customer", prose("name", drop=2, least=10), prose("reason"), Col("since", drop=1),
                Col("by", drop=3), title=f"blacklist ({len(rows)})")
    for r in rows:
        t.add_row(r["ref"], r["name"], r["reason"], when(r["since"]), r["actor"])
    t.print(wide=wide)

"""``oms stock ...``: opening balances, goods in and out by hand, balances, the ledger, its verification, and the
damaged goods kept apart (listed, scrapped or regraded)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from ..masterdata.service import ImportRefused
from ..stock.movements import Movement
from .masterdata import _refused, print_import
from .render import Col, Listing, num, print_json, progress, prose, when, wide_option
from .root import Ctx, errors_to_exit, fail, main


@main.group()
def stock() -> None:
    """Stock per warehouse and SKU, and the ledger of every movement."""


@stock.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="post the good rows and report the bad ones")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def stock_import(c: Ctx, path: Path, skip_bad: bool, actor: str, as_json: bool) -> None:
    """Opening balances (warehouse, sku, quantity, unit_cost), posted as ledger rows; once per warehouse and SKU.

    \b
    Examples:
      oms stock import examples/data/stock.csv
      oms stock import opening.csv --skip-bad --json
    """
    oms = c.oms(require_rules=False)
    try:
        with progress(f"posting opening stock from {path.name}"):
            report = oms.openings.import_file(path, actor=actor, skip_bad=skip_bad)
    except ImportRefused as exc:
        _refused(exc, as_json)
    finally:
        oms.close()
    print_import(report, as_json)


def _print_posted(p: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(p, indent=2))
    else:
        click.echo(f"{p['kind']} {p['quantity']} {p['sku']} at {p['warehouse']}: on hand {p['on_hand']}, "
                   f"available {p['available']}")


_MANUAL = {"receive": Movement.PURCHASE_RECEIPT, "return-in": Movement.CUSTOMER_RETURN,
           "return-to-vendor": Movement.RETURN_TO_VENDOR}


def _movement_command(name: str, kind: Movement) -> None:
    @stock.command(name, help=f"Post a {kind.value} movement: WAREHOUSE SKU QUANTITY.")
    @click.argument("warehouse")
    @click.argument("sku")
    @click.argument("quantity", type=click.IntRange(1))
    @click.option("--document", required=True, help="the source document: a purchase order, a return...")
    @click.option("--cost", default=None, help="what a unit cost, in the product's currency (goods in)")
    @click.option("--lot", default=None, help="the lot, for a product kept in lots")
    @click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="the lot's expiry date, for goods coming into a new lot")
    @click.option("--note", default="")
    @click.option("--actor", default="cli", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    @errors_to_exit
    def command(c: Ctx, warehouse: str, sku: str, quantity: int, document: str, cost: str | None,
                lot: str | None, expires: datetime | None, note: str, actor: str, as_json: bool) -> None:
        oms = c.oms(require_rules=False)
        try:
            posted = oms.stock.post(kind, warehouse, sku, quantity, document=document, actor=actor, note=note,
                                    unit_cost=cost, lot=lot, expires_on=expires.date() if expires else None)
        finally:
            oms.close()
        _print_posted(posted.to_dict(), as_json)


for _name, _kind in _MANUAL.items():
    _movement_command(_name, _kind)


@stock.command("adjust")
@click.argument("warehouse")
@click.argument("sku")
@click.argument("delta", type=int)
@click.option("--reason", required=True, help="why: damaged, found, written off...")
@click.option("--document", default="adjustment", show_default=True)
@click.option("--lot", default=None, help="the lot, for a product kept in lots")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="the lot's expiry date, for goods coming into a new lot")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def stock_adjust(c: Ctx, warehouse: str, sku: str, delta: int, reason: str, document: str, lot: str | None,
                 expires: datetime | None, actor: str, as_json: bool) -> None:
    """Change on hand by DELTA (negative: fewer) with a reason; never below what is reserved."""
    oms = c.oms(require_rules=False)
    try:
        posted = oms.stock.post(Movement.ADJUSTMENT, warehouse, sku, delta, document=document, actor=actor,
                                note=reason, lot=lot, expires_on=expires.date() if expires else None)
    finally:
        oms.close()
    _print_posted(posted.to_dict(), as_json)


@stock.command("transfer")
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(1))
@click.argument("source")
@click.argument("target")
@click.option("--document", required=True)
@click.option("--lot", default=None, help="the lot, for a product kept in lots")
@click.option("--note", default="")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def stock_transfer(c: Ctx, sku: str, quantity: int, source: str, target: str, document: str, lot: str | None,
                   note: str, actor: str, as_json: bool) -> None:
    """Move QUANTITY of SKU from SOURCE to TARGET warehouse, with its value (and its lot, with its expiry)."""
    oms = c.oms(require_rules=False)
    try:
        posted = oms.stock.transfer(sku, quantity, source, target, document=document, actor=actor, note=note,
                                    lot=lot)
    finally:
        oms.close()
    _print_posted(posted.to_dict(), as_json)


@stock.command("count")
@click.argument("warehouse")
@click.argument("sku")
@click.argument("counted", type=click.IntRange(0))
@click.option("--document", default="stocktake", show_default=True)
@click.option("--lot", default=None, help="the lot, for a product kept in lots")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="the lot's expiry date, for goods coming into a new lot")
@click.option("--note", default="")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def stock_count(c: Ctx, warehouse: str, sku: str, counted: int, document: str, lot: str | None,
                expires: datetime | None, note: str, actor: str, as_json: bool) -> None:
    """A stocktake: on hand becomes COUNTED (of the --lot, for a product kept in lots); the difference is
    posted."""
    oms = c.oms(require_rules=False)
    try:
        posted = oms.stock.count(warehouse, sku, counted, document=document, actor=actor, note=note, lot=lot,
                                 expires_on=expires.date() if expires else None)
    finally:
        oms.close()
    _print_posted(posted.to_dict(), as_json)


def _clear_damaged_command(name: str, kind: Movement, help_text: str) -> None:
    @stock.command(name, help=help_text)
    @click.argument("warehouse")
    @click.argument("sku")
    @click.argument("quantity", type=click.IntRange(1))
    @click.option("--note", required=True, help="why: written off, sent back, repaired, found sellable...")
    @click.option("--document", default=kind.value, show_default=True)
    @click.option("--lot", default=None, help="the lot the units go into, for a product kept in lots (regrade)")
    @click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="the lot's expiry date, for units going into a new lot (regrade)")
    @click.option("--actor", default="cli", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    @errors_to_exit
    def command(c: Ctx, warehouse: str, sku: str, quantity: int, note: str, document: str, lot: str | None,
                expires: datetime | None, actor: str, as_json: bool) -> None:
        oms = c.oms(require_rules=False)
        try:
            posted = oms.stock.clear_damaged(kind, warehouse, sku, quantity, document=document, actor=actor,
                                             note=note, lot=lot, expires_on=expires.date() if expires else None)
        finally:
            oms.close()
        p = posted.to_dict()
        if as_json:
            click.echo(json.dumps(p, indent=2))
        else:
            click.echo(f"{p['kind']} {p['quantity']} {p['sku']} at {p['warehouse']}: damaged {p['damaged']}, "
                       f"on hand {p['on_hand']}, available {p['available']}")


_clear_damaged_command("scrap", Movement.SCRAP,
                       "Write off QUANTITY damaged units of SKU at WAREHOUSE (thrown away, or sent back): WAREHOUSE "
                       "SKU QUANTITY --note TEXT. Never more than are damaged.")
_clear_damaged_command("regrade", Movement.REGRADE,
                       "Put QUANTITY damaged units of SKU at WAREHOUSE back on hand, sellable, at the current "
                       "average cost (repaired, or found sound): WAREHOUSE SKU QUANTITY --note TEXT. Never more "
                       "than are damaged.")


@stock.command("damaged")
@click.option("--warehouse", default=None)
@click.option("--sku", default=None)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="the rows as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def stock_damaged(c: Ctx, warehouse: str | None, sku: str | None, limit: int, as_json: bool, wide: bool) -> None:
    """Goods back from customers damaged, kept apart from on hand (never available), per SKU and warehouse.

    \b
    Examples:
      oms stock damaged --warehouse WH-SH
      oms stock damaged --json
    """
    oms = c.oms(require_rules=False)
    try:
        rows = oms.stock.damaged(warehouse=warehouse, sku=sku, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing("sku", "warehouse", num("damaged"))
    for r in rows:
        t.add_row(r["sku"], r["warehouse"], r["quantity"])
    t.print(wide=wide)


@stock.command("list")
@click.option("--warehouse", default=None)
@click.option("--sku", default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="the rows as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def stock_list(c: Ctx, warehouse: str | None, sku: str | None, limit: int, as_json: bool, wide: bool) -> None:
    """On hand, reserved, available and value, per SKU and warehouse.

    \b
    Examples:
      oms stock list --warehouse WH-SH
      oms stock list --sku TEA-LJ-250 --json
    """
    oms = c.oms(require_rules=False)
    try:
        rows = oms.stock.balances(warehouse=warehouse, sku=sku, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing("sku", "warehouse", num("on hand"), num("reserved", drop=1), num("available"),
                num("value (minor units)", drop=2))
    for r in rows:
        t.add_row(r["sku"], r["warehouse"], r["on_hand"], r["reserved"], r["available"], r["value"])
    t.print(wide=wide)


@stock.command("ledger")
@click.option("--warehouse", default=None)
@click.option("--sku", default=None)
@click.option("--kind", type=click.Choice([m.value for m in Movement]), default=None)
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="movements of this day (UTC)")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="the rows as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def stock_ledger(c: Ctx, warehouse: str | None, sku: str | None, kind: str | None, day: datetime | None,
                 limit: int, as_json: bool, wide: bool) -> None:
    """Ledger rows, newest first.

    \b
    Examples:
      oms stock ledger --sku TEA-LJ-250 --limit 20
      oms stock ledger --day 2026-12-06 --kind purchase_receipt
      oms stock ledger --warehouse WH-SH --wide     # every column: damaged, value, who, note
    """
    since = until = None
    if day is not None:
        since = datetime.combine(date(day.year, day.month, day.day), datetime.min.time())
        until = since + timedelta(days=1)
    oms = c.oms(require_rules=False)
    try:
        rows = oms.stock.ledger(warehouse=warehouse, sku=sku, kind=kind, since=since, until=until, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    # What moved, where and by how much stays; with a long SKU at 80 columns even the time goes (the id, which
    # orders the rows, comes back when there is room for it).
    t = Listing(num("id", drop=3), Col("at", drop=1), "kind", Col("warehouse", drop=2), "sku", num("on hand"),
                num("reserved", drop=7), num("damaged", drop=8), num("value", drop=6), Col("document", drop=4),
                Col("by", drop=9), prose("note", drop=5, least=12))
    for r in rows:
        t.add_row(r["id"], when(r["at"]), r["kind"], r["warehouse"], r["sku"], f"{r['on_hand_delta']:+d}",
                  f"{r['reserved_delta']:+d}", f"{r['damaged_delta']:+d}", f"{r['value_delta']:+d}", r["document"],
                  r["actor"], r["note"])
    t.print(wide=wide)


@stock.command("verify")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def stock_verify(c: Ctx, as_json: bool) -> None:
    """Recompute on hand, reserved, value and damaged from the ledger; exit 1 when a stored figure differs."""
    oms = c.oms(require_rules=False)
    try:
        result = oms.stock.verify()
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "stock_rows": result.rows, "movements": result.movements,
                               "differences": [d.to_dict() for d in result.differences]}, indent=2))
    elif result.ok:
        click.echo(f"stock verified: {result.rows} balances agree with {result.movements} ledger rows")
    else:
        click.echo(f"{len(result.differences)} difference(s) between the stock table and its ledger:", err=True)
        for d in result.differences:
            click.echo(f"  {d}", err=True)
    if not result.ok:
        sys.exit(1)


@stock.command("reconcile")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--post", is_flag=True, help="post a compensating adjustment for each unexplained difference")
@click.option("--partial", is_flag=True, help="the snapshot lists some SKUs only (by default it is complete "
                                               "for each warehouse it names)")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@wide_option
@click.pass_obj
@errors_to_exit
def stock_reconcile(c: Ctx, path: Path, post: bool, partial: bool, actor: str, as_json: bool, wide: bool) -> None:
    """Compare a WMS stock snapshot (warehouse, sku, quantity) with the OMS: each difference with its likely
    cause; exit 1 while any is unexplained and not posted.

    \b
    Examples:
      oms stock reconcile wms-stock.csv
      oms stock reconcile wms-stock.csv --post      # adjust what no cause explains
    """
    from ..masterdata.files import read_rows
    oms = c.oms(require_rules=False)
    try:
        with progress(f"reconciling {path.name}"):
            result = oms.reconciler.run(read_rows(path), source=str(path), partial=partial, post=post, actor=actor)
    except ImportRefused as exc:
        _refused(exc, as_json)
    finally:
        oms.close()
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(f"{result.compared} balances of {', '.join(result.warehouses)} compared: "
                   f"{len(result.differences)} difference(s), {len(result.unexplained)} unexplained")
        if result.differences:
            t = Listing(Col("warehouse", drop=1), "sku", num("OMS"), num("WMS"), num("diff"), "cause",
                        prose("detail", drop=2, least=12), Col("posted", drop=3))
            causes: dict[str, list[int]] = {}
            for d in result.differences:
                posted = f"{d.to_post:+d}" if d.posted else (d.refused or ("" if not d.to_post else "no"))
                t.add_row(d.warehouse, d.sku, d.oms, d.wms, f"{d.difference:+d}", d.cause, d.detail, posted)
                tally = causes.setdefault(d.cause, [0, 0, 0])
                tally[0] += 1
                tally[1] += d.difference
                tally[2] += 1 if d.posted else 0
            t.print(wide=wide)
            summary = Listing("cause", num("differences"), num("units"), num("posted"), title="by cause")
            for cause, (n, units, posted_n) in sorted(causes.items()):
                summary.add_row(cause, n, f"{units:+d}", posted_n)
            summary.print(wide=wide)
    if result.unexplained:
        sys.exit(1)


@stock.command("close")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="the day (UTC) whose closing to take; default yesterday")
@click.option("--json", "as_json", is_flag=True)
@wide_option
@click.pass_obj
@errors_to_exit
def stock_close(c: Ctx, day: datetime | None, as_json: bool, wide: bool) -> None:
    """Take a day's closing stock per warehouse and SKU, valued (oms worker takes each finished day's once)."""
    from ..stock.closing import totals
    oms = c.oms(require_rules=False)
    try:
        when_ = day.date() if day else oms.clock.now().date() - timedelta(days=1)
        try:
            rows = oms.closings.close(when_)
        except ValueError as exc:
            fail(str(exc))
    finally:
        oms.close()
    if as_json:
        print_json({"day": when_.isoformat(), "stock": rows})
        return
    t = Listing("warehouse", num("SKUs"), num("on hand"), num("value (minor units)"),
                title=f"closing stock of {when_.isoformat()}")
    for w, tot in totals(rows).items():
        t.add_row(w, tot["skus"], tot["on_hand"], tot["value"])
    t.print(wide=wide)


@stock.command("export")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), required=True, help="the day (UTC)")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the CSV here (default: standard output)")
@click.option("--all", "everything", is_flag=True, help="reservations too, not only goods in and out")
@click.pass_obj
@errors_to_exit
def stock_export(c: Ctx, day: datetime, out: Path | None, everything: bool) -> None:
    """The day's stock movements as CSV, with what each moved in value: finance's daily export."""
    oms = c.oms(require_rules=False)
    try:
        text = oms.closings.movements_csv(day.date(), goods_only=not everything)
    finally:
        oms.close()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"{text.count(chr(10)) - 1} movements of {day.date().isoformat()} written to {out}")

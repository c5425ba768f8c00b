"""The ``oms`` command line."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .config import Config, ConfigError, load_config
from .money import format_minor

console = Console()
err = Console(stderr=True)


class Ctx:
    def __init__(self, config_path: str | None, db: str | None) -> None:
        self.config_path, self.db = config_path, db
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, database_url=self.db)
        return self._config

    def oms(self, **kw: Any) -> Any:
        from .app import OMS
        return OMS(self.config, **kw)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    sys.exit(code)


def _errors_to_exit(fn: Any) -> Any:
    """Known failures print one clear line and exit non-zero, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        from .app import DatabaseNotReady
        from .commands import CommandError
        from .extensions import RegistryError
        from .pluginmanager import PluginError
        from .rules import RulesetInvalid
        from .states import IllegalTransition
        from .status_map import StatusMapError
        from .templating import TemplateProblem
        try:
            return fn(*a, **kw)
        except (ConfigError, RulesetInvalid, StatusMapError, PluginError, RegistryError, IllegalTransition,
                CommandError, LookupError, DatabaseNotReady, TemplateProblem) as exc:
            fail(str(exc).strip("'\""))
    return wrapper


@click.group()
@click.option("--config", "config_path", envvar="OMS_CONFIG", default=None, help="config.yaml path")
@click.option("--db", default=None, help="database URL (overrides config.yaml and OMS_DATABASE_URL)")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, db: str | None) -> None:
    """oms-engine: order management for retail e-commerce."""
    ctx.obj = Ctx(config_path, db)


@main.command()
@click.pass_obj
@_errors_to_exit
def init(c: Ctx) -> None:
    """Create or upgrade the database schema."""
    from .db import make_engine
    from .migrate import current, upgrade
    engine = make_engine(c.config.resolved_database_url())
    upgrade(engine)
    console.print(f"database ready at revision {current(engine)} ({engine.url.render_as_string()})")
    engine.dispose()


@main.command()
@click.option("--orders", default=2000, show_default=True, help="orders to generate")
@click.option("--skus", default=1200, show_default=True, help="catalogue size")
@click.option("--seed", default=7, show_default=True)
@click.option("--fresh/--keep", default=True, help="start from an empty database (default)")
@click.pass_obj
@_errors_to_exit
def demo(c: Ctx, orders: int, skus: int, seed: int, fresh: bool) -> None:
    """Seed a catalogue, generate orders and drive them through their whole life."""
    from .demo import run_demo
    run_demo(c.config, orders=orders, skus=skus, seed=seed, fresh=fresh, console=console)


@main.command()
@click.option("--channel", required=True, help="channel adapter name, e.g. json")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of results")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@_errors_to_exit
def ingest(c: Ctx, channel: str, as_json: bool, paths: tuple[Path, ...]) -> None:
    """Take in order payload files: prints the order number each became, or its error."""
    from .intake import PayloadTooLarge
    from .intake import ingest as do_ingest
    oms = c.oms()
    results: list[dict[str, Any]] = []
    try:
        for path in paths:
            try:
                rs = do_ingest(oms, channel, path.read_bytes(), source=str(path))
            except PayloadTooLarge as exc:
                results.append({"channel": channel, "file": str(path), "error": str(exc)})
                continue
            for r in rs:
                results.append({"file": str(path), **r.to_dict()})
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for r in results:
            ident = r.get("external_id") or r["file"]
            if "error" in r:
                err.print(f"{ident}: [red]error[/red] {r['error']}", highlight=False)
            else:
                dup = " (already received)" if r.get("duplicate") else ""
                console.print(f"{ident}: {r['number']} {r['status']}{dup}", highlight=False)
    if any("error" in r for r in results):
        sys.exit(1)


@main.command()
@click.pass_obj
@_errors_to_exit
def run(c: Ctx) -> None:
    """Process all pending work (timers, callbacks, screening, split, route, outbox), then exit."""
    from .pipeline import run_until_idle
    oms = c.oms()
    try:
        done = run_until_idle(oms)
    finally:
        oms.close()
    console.print(" ".join(f"{k}={v}" for k, v in done.items()))


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="seconds to sleep when idle")
@click.option("--max-seconds", default=0.0, help="stop after this long (0: run until stopped)")
@click.pass_obj
@_errors_to_exit
def worker(c: Ctx, interval: float, max_seconds: float) -> None:
    """Keep processing work and timers (payment timeout, auto-confirm) until stopped."""
    from .pipeline import run_until_idle
    oms = c.oms()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    started = time.monotonic()
    try:
        while not stop["now"]:
            done = run_until_idle(oms)
            if any(done.values()):
                console.print(" ".join(f"{k}={v}" for k, v in done.items() if v))
            if max_seconds and time.monotonic() - started > max_seconds:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        oms.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.pass_obj
@_errors_to_exit
def serve(c: Ctx, host: str, port: int) -> None:
    """Run the admin API."""
    from .api import create_app
    app = create_app(c.oms())
    app.run(host=host, port=port, threaded=False)


@main.group()
def order() -> None:
    """Look at and act on orders."""


@order.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_errors_to_exit
def order_show(c: Ctx, number: str, as_json: bool) -> None:
    """An order's timeline and every decision, with the rules that fired."""
    from .explain import explain
    oms = c.oms()
    try:
        with oms.db.read() as s:
            data = explain(oms, s, number)
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_order(data)


def _print_order(d: dict[str, Any]) -> None:
    cur = d["currency"]
    console.print(f"[bold]Order {d['number']}[/bold]  {d['status']}"
                  + (f"  (held: {d['hold_reason']})" if d.get("hold_reason") else ""), highlight=False)
    console.print(f"channel {d['channel']} / {d['external_id'] or '-'}   customer {d['customer']}   "
                  f"placed {d['placed_at']}   shard {d['shard']}"
                  + (f"   parent {d['parent']}" if d.get("parent") else ""), highlight=False)
    console.print("amounts: " + ", ".join(f"{k} {v}" for k, v in d["amounts_text"].items() if d["amounts"][k]),
                  highlight=False)
    if d["warehouse"] or d["tracking_no"]:
        console.print(f"warehouse {d['warehouse'] or '-'}   carrier {d['carrier'] or '-'}   "
                      f"tracking {d['tracking_no'] or '-'}", highlight=False)
    t = Table("#", "sku", "name", "qty", "price", "discount", "merchant", title="lines")
    for ln in d["lines"]:
        t.add_row(str(ln["line_no"]), ln["sku"], ln["name"], str(ln["quantity"]),
                  format_minor(ln["unit_price"], cur), format_minor(ln["discount"], cur), ln["merchant"])
    console.print(t)
    if d["children"]:
        t = Table("child", "status", "warehouse", "payable", title="children")
        for ch in d["children"]:
            t.add_row(ch["number"], ch["status"], ch["warehouse"] or "-", format_minor(ch["payable"], cur))
        console.print(t)
    t = Table("at", "event", "from", "to", "actor", "cause", title="timeline")
    for h in d["history"]:
        t.add_row(h["at"], h["event"], h["from"] or "", h["to"], h["actor"], h["cause"])
    console.print(t)
    t = Table("at", "point", "ruleset@version", "rules fired", "outcome", title="decisions")
    for dec in d["decisions"]:
        fired = ", ".join(f"{f['rule']} (p{f['priority']})" for f in dec["fired"]) or "(none)"
        t.add_row(dec["at"], dec["point"], f"{dec['ruleset']}@{dec['version'][:12]}", fired,
                  json.dumps(dec["outcome"], ensure_ascii=False)[:160])
    console.print(t)
    if d["messages"]:
        t = Table("id", "kind", "to", "topic", "status", title="outbox")
        for m in d["messages"]:
            t.add_row(str(m["id"]), m["kind"], m["target"], m["topic"], m["status"])
        console.print(t)


@order.command("list")
@click.option("--status", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_errors_to_exit
def order_list(c: Ctx, status: str | None, limit: int, as_json: bool) -> None:
    """List orders, newest first."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from .explain import order_summary
    from .models import Order
    from .states import State
    if status is not None and status not in {s.value for s in State}:
        fail(f"unknown status '{status}' (known: {', '.join(s.value for s in State)})")
    oms = c.oms()
    try:
        with oms.db.read() as s:
            stmt = select(Order).options(selectinload(Order.customer)) \
                .order_by(Order.id.desc()).limit(limit)
            if status:
                stmt = stmt.where(Order.status == status)
            rows = [order_summary(o) for o in s.scalars(stmt)]
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    t = Table("number", "status", "channel", "external id", "customer", "payable", "warehouse", "hold reason")
    for r in rows:
        t.add_row(r["number"], r["status"], r["channel"], r["external_id"] or "", r["customer"] or "",
                  format_minor(r["payable"], r["currency"]), r["warehouse"] or "", r["hold_reason"] or "")
    console.print(t)


def _order_action(name: str, help_text: str) -> None:
    @order.command(name, help=help_text)
    @click.argument("number")
    @click.option("--actor", default="cli", show_default=True)
    @click.option("--note", default="")
    @click.pass_obj
    @_errors_to_exit
    def action(c: Ctx, number: str, actor: str, note: str) -> None:
        from . import commands
        oms = c.oms()
        try:
            fn = getattr(commands, name)
            status = fn(oms, number, actor=actor, **({"reason": note} if name in ("cancel", "intercept")
                                                      else {"note": note}))
        finally:
            oms.close()
        console.print(f"{number}: {status}")


_order_action("release", "Release an order on hold.")
_order_action("reject", "Reject an order on hold (cancel, refund if paid).")
_order_action("cancel", "Cancel an order (before picking), or request interception after.")
_order_action("intercept", "Ask the warehouse to stop an order that is being picked or packed.")


@order.command("pay")
@click.argument("number")
@click.option("--amount", required=True, help="decimal amount, e.g. 129.90")
@click.option("--txn", required=True, help="payment transaction serial number")
@click.pass_obj
@_errors_to_exit
def order_pay(c: Ctx, number: str, amount: str, txn: str) -> None:
    """Record a payment."""
    from . import commands
    from .money import MoneyError, to_minor
    oms = c.oms()
    try:
        with oms.db.session() as s:
            currency = oms.get_order(s, number).currency
        try:
            minor = to_minor(amount, currency)
        except MoneyError as exc:
            fail(str(exc))
        status = commands.pay(oms, number, minor, txn, actor="cli")
    finally:
        oms.close()
    console.print(f"{number}: {status}")


@main.group()
def rules() -> None:
    """Check and test the YAML rules."""


def _rulebook(c: Ctx, directory: Path | None) -> Any:
    from .extensions import Extensions
    from .pluginmanager import build_plugin_manager
    from .rulebook import Rulebook
    cfg = c.config
    ext = Extensions(build_plugin_manager(cfg.plugins), cfg)
    return Rulebook(directory or cfg.path(cfg.rules_dir), ext)


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
@_errors_to_exit
def rules_check(c: Ctx, directory: Path | None) -> None:
    """Validate every ruleset (errors name file, line and rule)."""
    from .status_map import load_status_map
    from .templating import check
    book = _rulebook(c, directory)
    load_status_map((directory or c.config.path(c.config.rules_dir)) / "maps" / "status.yaml")
    for name, rs in sorted(book.rulesets.items()):
        console.print(f"{rs.path}: ruleset '{name}' ok, {len(rs.rules)} rules, version {rs.version}",
                      highlight=False)
    for name, template in book.ext.templates.items():
        check(template.body, name=name)
        check(template.subject, name=name)
    console.print(f"{len(book.ext.templates.names())} templates ok", highlight=False)


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
@_errors_to_exit
def rules_test(c: Ctx, directory: Path | None) -> None:
    """Run the rule tests in DIR/tests (default rules/tests)."""
    from .rules import run_rule_tests
    book = _rulebook(c, directory)
    results = run_rule_tests(book.dir, book.dir / "tests", schemas=book.schemas, actions=book.catalogs)
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {r.file}: {r.case}" + (f"\n     {r.message}" if not r.passed else ""), highlight=False)
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed or not results:
        sys.exit(1)


if __name__ == "__main__":
    main()

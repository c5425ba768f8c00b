"""``oms init``, ``ingest``, ``run``, ``worker``, ``serve``: setting up and doing the work."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from .. import heap
from ..errors import OmsError
from ..pipeline.runner import WORKER_READY
from .holds import hold_line, next_steps, step_lines
from .render import Listing, num, print_json, progress, prose
from .root import Ctx, console, err, errors_to_exit, fail, main

log = logging.getLogger("oms.worker")


@main.command()
@click.pass_obj
@errors_to_exit
def init(c: Ctx) -> None:
    """Create or upgrade the database schema."""
    from ..storage.db import make_engine
    from ..storage.migrate import current, upgrade
    engine = make_engine(c.config.resolved_database_url())
    upgrade(engine)
    console.print(f"database ready at revision {current(engine)} ({engine.url.render_as_string()})")
    engine.dispose()


@main.command()
@click.option("--channel", required=True,
              help="channel account or adapter name, e.g. json, shopify, shop-eu (docs/channels.md)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of results")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@errors_to_exit
def ingest(c: Ctx, channel: str, as_json: bool, paths: tuple[Path, ...]) -> None:
    """Take in order payload files: prints the order number each became, or its error.

    Standard output has one line per order, EXTERNAL_ID: NUMBER STATUS, for scripts. Standard error has what a
    person needs besides: why an order is on hold and what to do next, the errors, and for several files a
    progress bar (at a terminal) and a summary.

    \b
    Examples:
      oms ingest --channel json orders.json
      oms ingest --channel shopify drops/*.json
      oms ingest --channel json a.json b.json --json
    """
    from ..orders.intake import PayloadTooLarge
    oms = c.oms()
    results: list[dict[str, Any]] = []
    try:
        with progress(f"taking in {len(paths)} file(s)", total=len(paths)) as step:
            for path in paths:
                step(0, description=f"taking in {path.name}")
                # A file that cannot be taken in is reported and the next one goes on: never abandon the rest.
                try:
                    rs = oms.intake.ingest(channel, path.read_bytes(), source=str(path))
                except PayloadTooLarge as exc:
                    results.append({"channel": channel, "file": str(path), "error": str(exc)})
                    continue
                except OmsError:
                    raise  # the command itself is wrong (an unknown channel): one clear line
                except Exception as exc:
                    results.append({"channel": channel, "file": str(path),
                                    "error": f"not taken in ({type(exc).__name__}); send it again: {exc}"[:500]})
                    continue
                finally:
                    step()
                for r in rs:
                    results.append({"file": str(path), **r.to_dict()})
        held = _holds(oms, [r["number"] for r in results if r.get("status") == "on_hold" and r.get("number")])
    finally:
        oms.close()
    for r in results:
        if r.get("number") in held:
            r["hold_reason"] = held[r["number"]]["hold_reason"]
    if as_json:
        print_json(results)
    else:
        for r in results:
            ident = r.get("external_id") or r["file"]
            if "error" in r:
                click.echo(f"{ident}: error {r['error']}", err=True)
                continue
            dup = " (already received)" if r.get("duplicate") else ""
            if r.get("content_differs"):
                dup = " (already received, with different content: the stored order is unchanged)"
            # One line, whatever the width: scripts read it (rich would wrap it at 80 columns in a pipe).
            click.echo(f"{ident}: {r['number']} {r['status']}{dup}")
            why = held.get(r["number"])
            if why is not None:
                # Why, and what to do, for the person: on stderr, so the line above stays the whole result.
                click.echo(f"  {ident}: {hold_line('on_hold', why['hold_stage'], why['hold_reason'])}", err=True)
                for line in step_lines(next_steps(r["number"], "on_hold", why["hold_stage"], why["hold_reason"],
                                                  why["channel"])):
                    click.echo(f"    {line}", err=True)
        if len(paths) > 1:
            _ingest_summary(paths, results)
    if any("error" in r for r in results):
        sys.exit(1)


def _holds(oms: Any, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """Why each of these orders is held (stage, reason, channel), read in chunks."""
    from sqlalchemy import select

    from ..storage.models import Order
    out: dict[str, dict[str, Any]] = {}
    with oms.db.read() as s:
        for i in range(0, len(numbers), 500):
            for number, stage, reason, channel in s.execute(
                    select(Order.number, Order.hold_stage, Order.hold_reason, Order.channel)
                    .where(Order.number.in_(numbers[i:i + 500]))):
                out[number] = {"hold_stage": stage, "hold_reason": reason or "", "channel": channel}
    return out


def _kind_of(reason: str) -> str:
    """A hold reason without its particulars: the names quoted in it and the amounts."""
    return re.sub(r"'[^']*'|\d[\d,.]*", lambda m: "'...'" if m[0].startswith("'") else "...", reason)


def _ingest_summary(paths: tuple[Path, ...], results: list[dict[str, Any]]) -> None:
    """What several files came to, on stderr: orders new, repeated, held (by reason), refused."""
    taken = [r for r in results if "error" not in r]
    new = [r for r in taken if not r.get("duplicate")]
    t = Listing("outcome", num("orders"), title=f"{len(paths)} files taken in")
    t.add_row("new", len(new))
    for status, n in Counter(r["status"] for r in new).most_common():
        t.add_row(f"  {status}", n)
    t.add_row("already received", len(taken) - len(new))
    t.add_row("not taken in (errors)", sum(1 for r in results if "error" in r))
    t.print(err)
    # Held for the same kind of thing, whatever the SKU or amount: one row ("unmapped SKU '...'": 40 orders).
    reasons = Counter(_kind_of(part) for r in new if r["status"] == "on_hold"
                      for part in dict.fromkeys((r.get("hold_reason") or "-").split("; ")))
    if reasons:
        h = Listing(prose("held for", least=20), num("orders"), title="new orders on hold")
        for reason, n in reasons.most_common(20):
            h.add_row(reason, n)
        h.print(err)


@main.command()
@click.pass_obj
@errors_to_exit
def run(c: Ctx) -> None:
    """Process all pending work (timers, callbacks, screening, split, route, outbox), then exit.

    At a terminal a progress line counts the passes as they go; at the end a table says what each stage did.

    \b
    Examples:
      oms run
      oms run && oms order holds      # then what is left for a person
    """
    oms = c.oms()
    heap.settle()     # a backlog can be hours of work
    passes = 0
    started = time.monotonic()
    try:
        with progress("working through the backlog") as step:
            total: Counter[str] = Counter()

            def on_pass(done: dict[str, int]) -> None:
                nonlocal passes
                passes += 1
                total.update(done)
                step(sum(done.values()), description=f"pass {passes}: {sum(total.values()):,} unit(s) of work done")

            oms.updates.apply_pending()
            done = oms.pipeline.run_until_idle(on_pass=on_pass)
    finally:
        oms.close()
    worked = {k: v for k, v in done.items() if v}
    if not worked:
        click.echo("nothing to do")
        return
    t = Listing("stage", num("done"),
                title=f"{sum(worked.values()):,} unit(s) of work in {passes} pass(es), "
                      f"{time.monotonic() - started:.1f} s")
    for stage, n in worked.items():
        t.add_row(stage, n)
    t.print()


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic's checks of the schema at start-up say nothing an operator needs (a wrong schema is an error anyway).
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="seconds to sleep when idle")
@click.option("--max-seconds", default=0.0, help="stop after this long (0: run until stopped)")
@click.pass_obj
@errors_to_exit
def worker(c: Ctx, interval: float, max_seconds: float) -> None:
    """Keep processing work and timers (payment timeout, auto-confirm), pulling the channel accounts that have a
    schedule (config channel_accounts: pull_every_seconds) and pushing their stock to those that take it
    (push_stock), until stopped."""
    _log_to_stderr()
    oms = c.oms()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    heap.settle()
    log.info("%s: pid %d, database %s", WORKER_READY, os.getpid(), oms.db.engine.url.render_as_string())
    started = time.monotonic()
    try:
        while not stop["now"]:
            try:
                oms.closings.close_due()   # finance's closing stock of the day that ended, once
                oms.updates.apply_pending()   # a channel's updates an ingest stopped before applying
                for name in oms.pulling.due():
                    # A channel that fails is recorded on its cursor and tried again at its next turn.
                    report = oms.pulling.pull(name)
                    if report.pages:
                        log.info("pulled %s: %d new order(s), %d known%s", name, report.orders, report.repeated,
                                 f"; stopped: {report.error}" if report.error else "")
                for name in oms.stock_push.due():
                    # What the account may sell of each SKU that moved since its last sweep, coalesced.
                    oms.stock_push.sweep(name)
                done = oms.pipeline.run_until_idle()
            except Exception:
                # Not one order's fault (that is set aside by the pipeline): the database
                # went away, say. Wait and try again rather than die.
                log.exception("pass failed; retrying in %.1f s", max(interval, 1.0))
                time.sleep(max(interval, 1.0))
                continue
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
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="0: any free port (the one chosen is printed)")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(2, 256),
              help="worker threads; requests other than /health still run one at a time, and past threads - 1 "
                   "of them in hand the answer is 503, so /health always has a thread")
@click.option("--channel-timeout", default=30, show_default=True, type=click.IntRange(1, 3600),
              help="seconds an idle or stalled connection is kept open")
@click.option("--connection-limit", default=100, show_default=True, type=click.IntRange(1, 10000),
              help="connections open at once; past it new ones wait")
@click.option("--webhook-rate", default=10.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="webhook deliveries a second per channel, sustained")
@click.option("--webhook-burst", default=20, show_default=True, type=click.IntRange(1),
              help="webhook deliveries per channel at once")
@click.option("--webhook-tolerance", default=300, show_default=True, type=click.IntRange(1, 86400),
              help="seconds a webhook's X-OMS-Timestamp may be from this server's clock")
@click.pass_obj
@errors_to_exit
def serve(c: Ctx, host: str, port: int, threads: int, channel_timeout: int, connection_limit: int,
          webhook_rate: float, webhook_burst: int, webhook_tolerance: int) -> None:
    """Run the admin API (waitress) until SIGTERM or Ctrl-C."""
    from ..web.app import create_app
    from ..web.server import AdminServer
    from ..web.tokens import no_tokens_message
    from ..web.webhooks import WebhookPolicy
    _log_to_stderr()
    oms = c.oms()
    try:
        app = create_app(oms, webhooks=WebhookPolicy(tolerance=webhook_tolerance, rate=webhook_rate,
                                                     burst=webhook_burst), max_in_flight=threads - 1,
                         warn_without_tokens=False)
        if not app.extensions["oms_api_tokens"].any_live():
            # Plain, on stderr, before the address: the first thing a new installation needs to be told.
            click.secho("warning: ", fg="yellow", err=True, nl=False)
            click.echo(no_tokens_message(c.config.api_tokens_env), err=True)
        try:
            server = AdminServer(app, host, port, threads=threads, channel_timeout=channel_timeout,
                                 connection_limit=connection_limit)
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        for signum in (signal.SIGTERM, signal.SIGINT):
            # The handler only raises a flag: the server finishes what it has in hand, then stops.
            signal.signal(signum, lambda *_: server.stop())
        for where, bound in server.addresses:
            shown = f"[{where}]" if ":" in where else where
            # Plain echo, flushed: scripts and tests read the port from this line.
            click.echo(f"admin API listening on http://{shown}:{bound}")
        # What start-up made (modules, the rules engine, the app) lives as long as the process: out of the
        # collector's sight, a full collection scans only what requests make, not 100 ms worth of it.
        heap.settle()
        server.serve_forever()
        click.echo("admin API stopped")
    finally:
        oms.close()

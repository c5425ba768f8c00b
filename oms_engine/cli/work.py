"""``oms init``, ``ingest``, ``run``, ``worker``, ``serve``: setting up and doing the work."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from .. import heap
from ..errors import OmsError
from ..pipeline.runner import WORKER_READY
from .root import Ctx, console, errors_to_exit, fail, main

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
    """Take in order payload files: prints the order number each became, or its error."""
    from ..orders.intake import PayloadTooLarge
    oms = c.oms()
    results: list[dict[str, Any]] = []
    try:
        for path in paths:
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
                click.echo(f"{ident}: error {r['error']}", err=True)
            else:
                dup = " (already received)" if r.get("duplicate") else ""
                if r.get("content_differs"):
                    dup = " (already received, with different content: the stored order is unchanged)"
                console.print(f"{ident}: {r['number']} {r['status']}{dup}", highlight=False)
    if any("error" in r for r in results):
        sys.exit(1)


@main.command()
@click.pass_obj
@errors_to_exit
def run(c: Ctx) -> None:
    """Process all pending work (timers, callbacks, screening, split, route, outbox), then exit."""
    oms = c.oms()
    heap.settle()     # a backlog can be hours of work
    try:
        oms.updates.apply_pending()
        done = oms.pipeline.run_until_idle()
    finally:
        oms.close()
    console.print(" ".join(f"{k}={v}" for k, v in done.items()))


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="seconds to sleep when idle")
@click.option("--max-seconds", default=0.0, help="stop after this long (0: run until stopped)")
@click.pass_obj
@errors_to_exit
def worker(c: Ctx, interval: float, max_seconds: float) -> None:
    """Keep processing work and timers (payment timeout, auto-confirm), pulling the channel accounts that have a
    schedule (config channel_accounts: pull_every_seconds) and pushing their stock to those that take it
    (push_stock), until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    from ..web.webhooks import WebhookPolicy
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    oms = c.oms()
    try:
        app = create_app(oms, webhooks=WebhookPolicy(tolerance=webhook_tolerance, rate=webhook_rate,
                                                     burst=webhook_burst), max_in_flight=threads - 1)
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

"""``oms init``, ``ingest``, ``run``, ``worker``, ``serve``: setting up and doing the work."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from .root import Ctx, console, err, errors_to_exit, main

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
@click.option("--channel", required=True, help="channel adapter name, e.g. json")
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
            try:
                rs = oms.intake.ingest(channel, path.read_bytes(), source=str(path))
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
@errors_to_exit
def run(c: Ctx) -> None:
    """Process all pending work (timers, callbacks, screening, split, route, outbox), then exit."""
    oms = c.oms()
    try:
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
    """Keep processing work and timers (payment timeout, auto-confirm) until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    oms = c.oms()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    started = time.monotonic()
    try:
        while not stop["now"]:
            try:
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
@click.option("--port", default=8080, show_default=True)
@click.pass_obj
@errors_to_exit
def serve(c: Ctx, host: str, port: int) -> None:
    """Run the admin API."""
    from ..web.app import create_app
    app = create_app(c.oms())
    app.run(host=host, port=port, threaded=False)

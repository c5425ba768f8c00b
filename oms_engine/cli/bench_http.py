"""``oms bench http``: signed webhook deliveries at a fixed rate against a real ``oms serve``, latency and losses."""

from __future__ import annotations

import json
import sys

import click

from .bench import bench
from .render import Listing, prose
from .root import Ctx, errors_to_exit


@bench.command("http")
@click.option("--rate", default=200.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="deliveries a second, each one order")
@click.option("--duration", default=60.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="seconds of load")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0),
              help="'oms worker' processes running the pipeline during the load (0: intake alone)")
@click.option("--db", "db_url", default=None,
              help="database URL (default: a fresh SQLite file of the benchmark's own); must hold no orders")
@click.option("--skus", default=100_000, show_default=True, type=click.IntRange(1), help="catalogue size")
@click.option("--customers", default=20_000, show_default=True, type=click.IntRange(1))
@click.option("--threads", default=32, show_default=True, type=click.IntRange(1, 1000),
              help="sender threads, each with its own keep-alive connection")
@click.option("--servers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="'oms serve' processes, the senders shared out among them as by a load balancer")
@click.option("--server-threads", default=8, show_default=True, type=click.IntRange(2, 256),
              help="'oms serve --threads': past threads - 1 requests in hand it answers 503")
@click.option("--seed", default=11, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_obj
@errors_to_exit
def bench_http(c: Ctx, rate: float, duration: float, workers: int, db_url: str | None, skus: int, customers: int,
               threads: int, servers: int, server_threads: int, seed: int, as_json: bool) -> None:
    """Load POST /api/webhooks/json of a real 'oms serve' with signed one-order deliveries, open loop.

    Delivery i is due at start + i/rate; its latency runs from then to the whole
    answer, so a stall counts in full. Exits 1 when a delivery failed or an
    accepted order was lost or stored twice.
    """
    if threads < servers:
        raise click.BadParameter(f"{threads} sender threads cannot share out among {servers} servers",
                                 param_hint="--threads")
    from ..bench.http import run_http
    result = run_http(c.config, rate=rate, duration=duration, workers=workers, threads=threads,
                      servers=servers, server_threads=server_threads, db_url=db_url or c.db, skus=skus,
                      customers=customers, seed=seed)
    figures = result.figures()
    if as_json:
        click.echo(json.dumps(figures))
    else:
        t = Listing("figure", prose("value"),
                    title=f"oms bench http: {rate:g}/s for {duration:g} s, {figures['backend']}, "
                          f"{servers} server{'' if servers == 1 else 's'}, "
                          f"{workers} worker{'' if workers == 1 else 's'}")
        for key, value in figures.items():
            t.add_row(key, value)
        t.print()
    if result.failed:
        click.echo(f"failed: {figures['requests'] - figures['ok']} deliveries not answered 2xx with their order "
                   f"({figures['stored_unanswered']} of them stored all the same), {figures['lost']} accepted but "
                   f"not stored, {figures['stored_twice']} stored twice", err=True)
        sys.exit(1)

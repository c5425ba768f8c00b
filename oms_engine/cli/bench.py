"""``oms bench``: orders per second through the real pipeline, latency, memory, and a storage baseline."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
from rich.table import Table

from .root import Ctx, console, errors_to_exit, main


@main.command()
@click.option("--orders", default=2000, show_default=True, help="orders to push through")
@click.option("--workers", default=0, show_default=True,
              help="0: everything in this process; K: this process ingests, K 'oms worker' processes work")
@click.option("--skus", default=100_000, show_default=True, help="catalogue size")
@click.option("--customers", default=20_000, show_default=True)
@click.option("--payload", "payload_size", default=200, show_default=True, help="orders per intake payload")
@click.option("--seed", default=11, show_default=True)
@click.option("--no-baseline", is_flag=True, help="skip the sqlite3 baseline")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_obj
@errors_to_exit
def bench(c: Ctx, orders: int, workers: int, skus: int, customers: int, payload_size: int, seed: int,
          no_baseline: bool, as_json: bool) -> None:
    """Run a synthetic load (5 warehouses, a large catalogue, orders of 1 to 10 lines) through the pipeline.

    It uses a fresh SQLite database of its own unless --db names one, which must hold no orders.
    """
    from ..bench.runner import prepare, run_single, run_workers
    from ..demo.driver import DemoRefused, _holds_other_orders
    with tempfile.TemporaryDirectory() as tmp:
        url = c.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if c.db and _holds_other_orders(url, any_orders=True):
            raise DemoRefused(f"the database {url} holds orders: the benchmark needs an empty one")
        config = c.config.model_copy(update={"database_url": url, "outbox_dir": str(Path(tmp) / "outbox")})
        catalogue, people = prepare(config, skus=skus, customers=customers, seed=seed)
        if workers:
            result = run_workers(config, catalogue, people, orders=orders, payload_size=payload_size, seed=seed,
                                 workers=workers)
        else:
            result = run_single(config, catalogue, people, orders=orders, payload_size=payload_size, seed=seed,
                                baseline=not no_baseline)
    figures = result.figures()
    if as_json:
        click.echo(json.dumps(figures))
        return
    t = Table("figure", "value", title=f"oms bench: {orders:,} orders, {result.backend}, "
                                       f"{workers or 1} worker{'s' if workers > 1 else ''}")
    for key, value in figures.items():
        t.add_row(key, str(value))
    console.print(t)

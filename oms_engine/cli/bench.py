"""``oms bench``: orders per second through the real pipeline, latency, memory, and a storage baseline."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from .render import Listing, prose
from .root import Ctx, console, errors_to_exit, main

TEMPLATE_ORDERS = 500   # orders the pipeline writes to be copied when --stored asks for history


@main.group(invoke_without_command=True)
@click.option("--orders", default=2000, show_default=True, help="orders to push through")
@click.option("--workers", default=0, show_default=True,
              help="0: everything in this process; K: this process ingests, K 'oms worker' processes work")
@click.option("--db", "db_url", default=None,
              help="database URL (default: a fresh SQLite file of the benchmark's own); must hold no orders")
@click.option("--skus", default=100_000, show_default=True, help="catalogue size")
@click.option("--customers", default=0, show_default=True,
              help="customers (0: at least 20,000, as many as orders plus a fifth of --stored, so few place five "
                   "orders in a day and trip the burst rule)")
@click.option("--payload", "payload_size", default=200, show_default=True, help="orders per intake payload")
@click.option("--lines", "lines", default="1-10", show_default=True, callback=lambda _c, _p, v: _lines(v),
              help="lines per order: N, or LEAST-MOST drawn evenly")
@click.option("--rules", "rules_total", default=0, show_default=True,
              help="rules in the blocking ruleset (0: the rules directory as it is); more are generated")
@click.option("--stored", default=0, show_default=True,
              help="orders already stored before the run starts (finished orders spread over a year)")
@click.option("--memory-every", default=0, show_default=True,
              help="note resident memory every that many orders (one process only)")
@click.option("--seed", default=11, show_default=True)
@click.option("--backlog", is_flag=True,
              help="with --workers: take every order in first, then time the workers alone (not capped by the "
                   "one ingesting process)")
@click.option("--no-baseline", is_flag=True, help="skip the sqlite3 baseline")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
@errors_to_exit
def bench(ctx: click.Context, orders: int, workers: int, db_url: str | None, skus: int, customers: int,
          payload_size: int, lines: tuple[int, int], rules_total: int, stored: int, memory_every: int, seed: int,
          backlog: bool, no_baseline: bool, as_json: bool) -> None:
    """Run a synthetic load (5 warehouses, a large catalogue, orders of 1 to 10 lines) through the pipeline.

    It uses a fresh SQLite database of its own unless --db (here or before the
    command) names one: a SQLite file must hold no orders; in a PostgreSQL
    database it makes a schema of its own and drops it afterwards. See
    docs/performance.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    c: Ctx = ctx.obj
    if backlog and not workers:
        raise click.UsageError("--backlog times worker processes: give --workers too")
    figures = run_bench(c, orders=orders, workers=workers, db_url=db_url or c.db, skus=skus, customers=customers,
                        payload_size=payload_size, lines=lines, rules_total=rules_total, stored=stored,
                        memory_every=memory_every, seed=seed, baseline=not no_baseline, backlog=backlog)
    if as_json:
        click.echo(json.dumps(figures))
        return
    t = Listing("figure", prose("value"), title=f"oms bench: {orders:,} orders, {figures['backend']}, "
                                                f"{workers or 1} worker{'s' if workers > 1 else ''}")
    for key, value in figures.items():
        t.add_row(key, value)
    t.print()


def run_bench(c: Ctx, *, orders: int, workers: int, db_url: str | None, skus: int, customers: int,
              payload_size: int, lines: tuple[int, int], rules_total: int, stored: int, memory_every: int, seed: int,
              baseline: bool, backlog: bool = False) -> dict[str, Any]:
    from ..bench.runner import (
        at_real_pace,
        prepare,
        private_schema,
        run_single,
        run_workers,
        sigterm_as_exit,
        with_blocking_rules,
    )
    from ..bench.stored import copy_history
    from ..demo.driver import DemoRefused, _holds_other_orders
    from ..storage.db import Database
    with sigterm_as_exit(), tempfile.TemporaryDirectory() as tmp, \
            private_schema(db_url or f"sqlite:///{Path(tmp) / 'bench.db'}") as url:
        if db_url and _holds_other_orders(url, any_orders=True):
            raise DemoRefused(f"the database {url} holds orders: the benchmark needs an empty one")
        config = at_real_pace(c.config.model_copy(update={"database_url": url,
                                                          "outbox_dir": str(Path(tmp) / "outbox")}))
        # Stored history averages five orders a customer; the run's orders rarely meet a customer twice.
        customers = customers or max(20_000, orders + stored // 5)
        catalogue, people = prepare(config, skus=skus, customers=customers, seed=seed)
        if rules_total:
            config = with_blocking_rules(config, rules_total, Path(tmp), catalogue, people, seed)
        extra: dict[str, Any] = {}
        if stored:
            run_single(config, catalogue, people, orders=min(stored, TEMPLATE_ORDERS), payload_size=payload_size,
                       seed=seed + 100, baseline=False, prefix="BT")
            db = Database(url)
            try:
                extra["stored"] = stored
                extra["storing_seconds"] = round(copy_history(db, stored), 1)
            finally:
                db.dispose()
            baseline = False   # the baseline replays every row: with history stored it is not the run's
        if workers:
            result = run_workers(config, catalogue, people, orders=orders, payload_size=payload_size, seed=seed,
                                 workers=workers, lines=lines, backlog=backlog)
        else:
            result = run_single(config, catalogue, people, orders=orders, payload_size=payload_size, seed=seed,
                                baseline=baseline, memory_every=memory_every, lines=lines)
    result.extra.update(extra)
    if rules_total:
        result.extra["blocking_rules"] = rules_total
    result.extra["lines"] = f"{lines[0]}-{lines[1]}" if lines[0] != lines[1] else str(lines[0])
    return result.figures()


def _lines(value: str) -> tuple[int, int]:
    try:
        least, _, most = value.partition("-")
        bounds = (int(least), int(most or least))
    except ValueError:
        raise click.BadParameter(f"'{value}': give N or LEAST-MOST, e.g. 1-10") from None
    if not 1 <= bounds[0] <= bounds[1] <= 200:
        raise click.BadParameter(f"'{value}': between 1 and 200 lines, least first")
    return bounds


@bench.command("sweep", context_settings={"ignore_unknown_options": True})
@click.argument("parameter", type=click.Choice(["rules", "workers", "lines", "stored", "orders"]))
@click.argument("values")
@click.option("--out", default="docs/perf", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="where PARAMETER.json and PARAMETER.png go")
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 20),
              help="runs per value; the median one is kept")
@click.option("--title", default="", help="the plot's title")
@click.argument("bench_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@errors_to_exit
def sweep_cmd(c: Ctx, parameter: str, values: str, out: Path, repeat: int, title: str,
              bench_args: tuple[str, ...]) -> None:
    """Run 'oms bench' once per value of PARAMETER (VALUES: comma-separated), then plot orders/s against it.

    Options after VALUES that are not the sweep's own go to every 'oms bench' run, e.g.
    'oms bench sweep rules 10,100,500 --orders 3000'.
    """
    from ..bench.sweep import sweep, write
    try:
        numbers = [int(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"'{values}': comma-separated whole numbers", param_hint="VALUES") from None
    oms_args = [*(["--config", c.config_path] if c.config_path else []), *(["--db", c.db] if c.db else [])]
    points = sweep(parameter, numbers, oms_args=oms_args, bench_args=bench_args, repeat=repeat,
                   progress=lambda line: console.print(line, markup=False))
    data, image = write(parameter, points, out, title=title)
    click.echo(f"wrote {data} and {image}")

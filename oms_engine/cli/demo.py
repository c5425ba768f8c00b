"""``oms demo``: the main job, on a database of its own unless told otherwise."""

from __future__ import annotations

import click

from .root import Ctx, console, errors_to_exit, main


@main.command()
@click.option("--orders", default=2000, show_default=True, help="orders to generate")
@click.option("--skus", default=1200, show_default=True, help="catalogue size")
@click.option("--seed", default=7, show_default=True)
@click.option("--fresh/--keep", default=True, help="start from an empty database (default)")
@click.option("--force", is_flag=True, help="reset the database even if it holds orders the demo did not make")
@click.option("--db", "db_here", default=None, help="database URL (as oms --db)")
@click.pass_obj
@errors_to_exit
def demo(c: Ctx, orders: int, skus: int, seed: int, fresh: bool, force: bool, db_here: str | None) -> None:
    """Seed a catalogue, generate orders and drive them through their whole life.

    It uses its own database, var/demo.db next to config.yaml, unless --db
    names one; it refuses to reset a database holding orders it did not make.
    """
    from ..demo.driver import demo_config, run_demo
    db = db_here or c.db
    if db_here:
        c = Ctx(c.config_path, db_here)     # the config read with this database, as `oms --db URL demo` reads it
    run_demo(demo_config(c.config, db), orders=orders, skus=skus, seed=seed, fresh=fresh, force=force,
             console=console)

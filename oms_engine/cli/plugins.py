"""``oms plugins list``: every plugin, where it came from, and the hooks it implements."""

from __future__ import annotations

import json

import click
from rich.table import Table

from .root import Ctx, console, errors_to_exit, main


@main.group()
def plugins() -> None:
    """Look at the plugins in use."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def plugins_list(c: Ctx, as_json: bool) -> None:
    """Each plugin loaded with this configuration: its name, origin, file and hooks."""
    from ..plugin.manager import load_plugins
    cfg = c.config
    info = load_plugins(cfg.plugins, base_dir=cfg.path(".")).info
    rows = [{"name": p.name, "origin": p.origin, "location": p.location, "hooks": list(p.hooks)}
            for p in info.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    t = Table("plugin", "from", "hooks", "file")
    for r in rows:
        t.add_row(r["name"], r["origin"], "\n".join(r["hooks"]), r["location"])
    console.print(t)

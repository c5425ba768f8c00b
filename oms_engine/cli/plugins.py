"""``oms plugins list``: every plugin, where it came from, and the hooks it implements."""

from __future__ import annotations

import click

from .render import Col, Listing, print_json, wide_option
from .root import Ctx, errors_to_exit, main


@main.group()
def plugins() -> None:
    """Look at the plugins in use."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="the plugins as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def plugins_list(c: Ctx, as_json: bool, wide: bool) -> None:
    """Each plugin loaded with this configuration: the name it is registered under (the name OMS_LOAD_PLUGINS
    and OMS_BLOCK_PLUGINS take), its origin, file and hooks.

    \b
    Examples:
      oms plugins list
      oms plugins list --wide          # with where each came from and its file
      OMS_BLOCK_PLUGINS=oms_plugins.channels.amazon oms plugins list --json
    """
    from ..plugin.manager import load_plugins
    cfg = c.config
    info = load_plugins(cfg.plugins, base_dir=cfg.path(".")).info
    rows = [{"name": p.name, "origin": p.origin, "location": p.location, "hooks": list(p.hooks)}
            for p in info.values()]
    if as_json:
        print_json(rows)
        return
    # The name is what a person types into OMS_LOAD_PLUGINS: never left out, never cut.
    t = Listing("plugin", Col("from", drop=2), Col("hooks", drop=1), Col("file", drop=3))
    for r in rows:
        t.add_row(r["name"], r["origin"], "\n".join(r["hooks"]), r["location"])
    t.print(wide=wide)

"""``oms channels ...``: the channel accounts (shops on channels) and pulling their orders (channels/)."""

from __future__ import annotations

import json

import click

from ..errors import CommandError
from .render import Col, Listing, num, print_json, prose, when, wide_option
from .root import Ctx, console, errors_to_exit, main


@main.group("channels")
def channels_group() -> None:
    """Channel accounts, where their pulls stand, and pulling their orders now."""


@channels_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="the accounts as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def channels_list(c: Ctx, as_json: bool, wide: bool) -> None:
    """Every channel account (configured, and each adapter's own), its adapter and its last pull.

    \b
    Examples:
      oms channels list
      oms channels list --json | jq -r '.[] | select(.last_error != "") | .account'
    """
    oms = c.oms()
    try:
        rows = []
        for name in oms.accounts.names():
            acc = oms.config.channel_accounts.get(name)
            cur = oms.pulling.cursor(name)
            rows.append({"account": name, "adapter": oms.accounts.adapter_name(name),
                         "pulls": oms.pulling.can_pull(name) and acc is not None and bool(acc.url),
                         "every_seconds": acc.pull_every_seconds if acc else 0, "url": acc.url if acc else "",
                         "cursor": cur.cursor if cur else None,
                         "pulled_at": cur.pulled_at.isoformat() + "Z" if cur and cur.pulled_at else None,
                         "orders": cur.orders if cur else 0, "last_error": cur.last_error if cur else ""})
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing("account", Col("adapter", drop=3), Col("pulled", drop=4), Col("every", drop=5),
                Col("last pull", drop=2), num("orders", drop=1), prose("last error", least=12),
                title="channel accounts")
    for r in rows:
        t.add_row(r["account"], r["adapter"], "yes" if r["pulls"] else "-",
                  f"{r['every_seconds']:g} s" if r["every_seconds"] else "-", when(r["pulled_at"]) or "-",
                  r["orders"], r["last_error"] or "")
    t.print(wide=wide)


@channels_group.command("pull")
@click.argument("name")
@click.option("--pages", default=100, show_default=True, type=click.IntRange(1, 10_000),
              help="stop after this many pages even if the channel has more")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def channels_pull(c: Ctx, name: str, pages: int, as_json: bool) -> None:
    """Fetch account NAME's new and changed orders from its channel, from where the last pull stopped.

    Exits 1 when the channel could not be reached or answered nonsense (the cursor stays where it was).
    """
    oms = c.oms()
    try:
        report = oms.pulling.pull(name, max_pages=pages)
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        console.print(f"{name}: {report.pages} page(s), {report.orders} new order(s), {report.repeated} known, "
                      f"{len(report.refused)} unreadable; cursor {report.cursor or '(start)'}", highlight=False)
        for why in report.refused:
            console.print(f"  refused {why}", highlight=False)
    if report.error:
        raise CommandError(f"pull of {name} stopped: {report.error}")


@channels_group.command("stock")
@click.argument("name")
@click.option("--full", is_flag=True, help="every SKU the account lists, not only those whose stock moved")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def channels_stock(c: Ctx, name: str, full: bool, as_json: bool) -> None:
    """Queue for account NAME what it may sell of each SKU whose stock moved since the last push (config
    channel_accounts: push_stock; the shares are rules/stock.yaml's). The outbox delivers it.

    \b
    Examples:
      oms channels stock shop-eu            # what changed since the worker's last look
      oms channels stock shop-eu --full     # every SKU it lists, after a shop lost count
    """
    oms = c.oms()
    try:
        report = oms.stock_push.sweep(name, full=full)
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    console.print(f"{name}: {report.skus} SKU(s) looked at, {report.changed} changed, {report.reports} new "
                  "report(s) queued", highlight=False)
    if report.levels:
        t = Listing("channel SKU", num("may sell"), title=f"queued for {name}")
        for sku, quantity in sorted(report.levels.items()):
            t.add_row(sku, quantity)
        t.print()

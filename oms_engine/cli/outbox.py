"""``oms outbox dead`` and ``oms outbox retry ID``: messages given up, and sending one again."""

from __future__ import annotations

import click

from .render import Col, Listing, num, print_json, prose, wide_option
from .root import Ctx, errors_to_exit, main


@main.group()
def outbox() -> None:
    """Messages leaving the OMS: the dead letters, and sending one again."""


@outbox.command("dead")
@click.option("--target", default=None, help="a connector or medium")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="the messages as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def outbox_dead(c: Ctx, target: str | None, limit: int, as_json: bool, wide: bool) -> None:
    """Messages given up after every retry, newest first, with their last error.

    \b
    Examples:
      oms outbox dead
      oms outbox dead --target wms_json --json
      oms outbox retry 42          # send one of them again
    """
    oms = c.oms(require_rules=False)
    try:
        rows = oms.dead_letters.list(target=target, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing(num("id"), "order", Col("to", drop=2), Col("topic", drop=1), num("tries", drop=3),
                prose("last error"), title=f"dead letters ({len(rows)})")
    for r in rows:
        t.add_row(r["id"], r["order_number"], r["target"], r["topic"], r["attempts"], r["last_error"])
    t.print(wide=wide)


@outbox.command("retry")
@click.argument("message_id", type=int)
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def outbox_retry(c: Ctx, message_id: int, actor: str) -> None:
    """Send a dead message again (the same message: its receiver recognises it)."""
    oms = c.oms(require_rules=False)
    try:
        m = oms.dead_letters.requeue(message_id, actor=actor)
    finally:
        oms.close()
    click.echo(f"outbox message {m['id']} ({m['topic']} to {m['target']}) is pending again")

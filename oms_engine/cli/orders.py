"""``oms order ...``: look at orders and act on them."""

from __future__ import annotations

from typing import Any

import click

from ..money import format_minor
from .holds import reason_cell
from .render import Col, Listing, num, print_json, print_order, prose, when, wide_option
from .root import Ctx, errors_to_exit, fail, main


@main.group()
def order() -> None:
    """Look at and act on orders."""


@order.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="the whole story as JSON (with the messages' bodies)")
@wide_option
@click.pass_obj
@errors_to_exit
def order_show(c: Ctx, number: str, as_json: bool, wide: bool) -> None:
    """An order's timeline and every decision, with the rules that fired; a held order says what to do next.

    \b
    Examples:
      oms order show 2611020712345678903
      oms order show 2611020712345678903 --json | jq .decisions
    """
    from ..orders.explain import explain
    oms = c.oms()
    try:
        with oms.db.read() as s:
            data = explain(s, number)
    finally:
        oms.close()
    if as_json:
        print_json(data)
        return
    print_order(data, wide=wide)


def _orders_table(rows: list[dict[str, Any]], *, title: str | None = None, since: bool = False) -> Listing:
    # The number is what a person copies and the reason what they read: never left out. The rest goes, least
    # needed first, when the terminal is narrow.
    t = Listing("number", "status", *([Col("held since", drop=1)] if since else []), Col("channel", drop=4),
                Col("external id", drop=3), Col("customer", drop=2), num("payable"), Col("warehouse", drop=5),
                Col("placed", drop=6), prose("reason", least=20), title=title)
    for r in rows:
        status = str(r["status"])
        t.add_row(r["number"], status, *([when(r["held_since"])] if since else []), r["channel"],
                  r["external_id"] or "", r["customer"] or "", format_minor(r["payable"], r["currency"]),
                  r["warehouse"] or "", when(r["placed_at"]), reason_cell(status, r["hold_reason"]))
    return t


@order.command("list")
@click.option("--status", default=None, help="a state, e.g. on_hold, dispatched, cancelled")
@click.option("--customer", default=None, help="customer reference")
@click.option("--channel", default=None)
@click.option("--q", default=None, help="order number or external id prefix")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="the rows as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def order_list(c: Ctx, status: str | None, customer: str | None, channel: str | None, q: str | None, limit: int,
               as_json: bool, wide: bool) -> None:
    """List orders, newest first.

    \b
    Examples:
      oms order list --status on_hold
      oms order list --customer C-1042 --channel shopify
      oms order list --q 2611 --wide          # every column, however wide
      oms order list --json | jq -r '.[].number'
    """
    from ..orders.machine import State
    from ..orders.queries import OrderSearch, search_orders
    if status is not None and status not in {s.value for s in State}:
        fail(f"unknown status '{status}' (known: {', '.join(s.value for s in State)})")
    oms = c.oms()
    try:
        with oms.db.read() as s:
            rows, _ = search_orders(s, OrderSearch(status=State(status) if status else None, customer=customer,
                                                   channel=channel, q=q, limit=limit))
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    _orders_table(rows).print(wide=wide)


@order.command("holds")
@click.option("--reason", default=None, help="words of the hold reason, e.g. unmapped")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="the rows as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def order_holds(c: Ctx, reason: str | None, limit: int, as_json: bool, wide: bool) -> None:
    """The review queue: orders on hold, longest waiting first, with why (oms order show NUMBER says what to do).

    \b
    Examples:
      oms order holds
      oms order holds --reason "insufficient stock"
      oms order holds --json | jq -r '.[] | [.number, .hold_reason] | @tsv'
    """
    from ..orders.queries import hold_queue
    oms = c.oms()
    try:
        with oms.db.read() as s:
            rows, total, _ = hold_queue(s, limit, reason=reason)
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    _orders_table(rows, title=f"on hold ({total})", since=True).print(wide=wide)


def _order_action(name: str, help_text: str) -> None:
    @order.command(name, help=help_text)
    @click.argument("number")
    @click.option("--actor", default="cli", show_default=True)
    @click.option("--note", default="")
    @click.pass_obj
    @errors_to_exit
    def action(c: Ctx, number: str, actor: str, note: str) -> None:
        oms = c.oms()
        try:
            fn = getattr(oms.commands, name)
            status = fn(number, actor=actor, **({"reason": note} if name in ("cancel", "intercept")
                                                      else {"note": note}))
        finally:
            oms.close()
        click.echo(f"{number}: {status}")


@order.command("move")
@click.argument("number")
@click.argument("warehouse")
@click.option("--actor", default="cli", show_default=True)
@click.option("--note", default="", help="why (kept with the move)")
@click.pass_obj
@errors_to_exit
def order_move(c: Ctx, number: str, warehouse: str, actor: str, note: str) -> None:
    """Send a routed order to another warehouse (one being picked is stopped at the first one first)."""
    oms = c.oms()
    try:
        outcome = oms.commands.move(number, warehouse, actor=actor, reason=note)
    finally:
        oms.close()
    click.echo(outcome)


_order_action("release", "Release an order on hold.")
_order_action("reject", "Reject an order on hold (cancel, refund if paid).")
_order_action("bin", "Put an order in the recycle bin (its stock freed); cancelled when its time there ends.")
_order_action("restore", "Take an order out of the recycle bin, back to the review queue.")
_order_action("cancel", "Cancel an order (before picking), or request interception after.")
_order_action("intercept", "Ask the warehouse to stop an order that is being picked or packed.")


@order.command("pay")
@click.argument("number")
@click.option("--amount", required=True, help="decimal amount, e.g. 129.90")
@click.option("--txn", required=True, help="payment transaction serial number")
@click.option("--method", default="", help="card, wallet, gift_card, points, cod, bank_transfer (or the provider's "
                                            "own name for it)")
@click.pass_obj
@errors_to_exit
def order_pay(c: Ctx, number: str, amount: str, txn: str, method: str) -> None:
    """Record a payment: paid in full, the order goes on; money it may not keep is recorded and owed back."""
    from ..money import MoneyError, to_minor
    from ..orders.queries import get_order
    oms = c.oms()
    try:
        with oms.db.read() as s:
            currency = get_order(s, number).currency
        try:
            minor = to_minor(amount, currency)
        except MoneyError as exc:
            fail(str(exc))
        status = oms.commands.pay(number, minor, txn, method=method, actor="cli")
    finally:
        oms.close()
    click.echo(f"{number}: {status}")




@order.command("tracking-link")
@click.argument("number")
@click.pass_obj
@errors_to_exit
def order_tracking_link(c: Ctx, number: str) -> None:
    """The signed link to an order's tracking page, to send to its customer (docs/operations.md).

    \b
    Examples:
      oms order tracking-link 2611020712345678903
    """
    from ..orders.queries import get_order
    from ..orders.tracking_page import TrackingSecret, link
    oms = c.oms()
    try:
        with oms.db.read() as s:
            get_order(s, number)
        url = link(TrackingSecret(oms.db, oms.config.tracking_secret_env), number, oms.config.public_url)
    finally:
        oms.close()
    click.echo(url)

"""``oms order ...``: look at orders and act on them."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..money import format_minor
from .render import print_order
from .root import Ctx, console, errors_to_exit, fail, main


@main.group()
def order() -> None:
    """Look at and act on orders."""


@order.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def order_show(c: Ctx, number: str, as_json: bool) -> None:
    """An order's timeline and every decision, with the rules that fired."""
    from ..orders.explain import explain
    oms = c.oms()
    try:
        with oms.db.read() as s:
            data = explain(s, number)
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    print_order(data)


@order.command("list")
@click.option("--status", default=None)
@click.option("--customer", default=None, help="customer reference")
@click.option("--channel", default=None)
@click.option("--q", default=None, help="order number or external id prefix")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def order_list(c: Ctx, status: str | None, customer: str | None, channel: str | None, q: str | None, limit: int,
               as_json: bool) -> None:
    """List orders, newest first."""
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
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    t = Table("number", "status", "channel", "external id", "customer", "payable", "warehouse", "hold reason")
    for r in rows:
        t.add_row(r["number"], r["status"], r["channel"], r["external_id"] or "", r["customer"] or "",
                  format_minor(r["payable"], r["currency"]), r["warehouse"] or "", r["hold_reason"] or "")
    console.print(t)


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
        console.print(f"{number}: {status}")


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
    console.print(outcome, highlight=False)


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
    console.print(f"{number}: {status}")



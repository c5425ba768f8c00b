"""``oms wallets ...``: the gift cards and points the OMS keeps the balance of (payments/wallets.py)."""

from __future__ import annotations

import click
from rich.text import Text

from ..errors import CommandError
from ..money import MoneyError, currency_digits, to_minor
from ..payments import wallets
from .render import Col, Listing, emit, num, print_json, prose, when, wide_option
from .root import Ctx, console, errors_to_exit, main

KIND = click.Choice(list(wallets.KINDS))


@main.group("wallets")
def wallets_group() -> None:
    """Gift cards (by code) and points (by customer reference) with their balances and movements."""


def _minor(amount: str, currency: str, *, signed: bool) -> int:
    try:
        currency_digits(currency)
        return to_minor(amount, currency, signed=signed)
    except (MoneyError, ValueError) as e:
        raise CommandError(f"amount {amount!r}: {e}") from None


def _change(c: Ctx, kind: str, holder: str, amount: str, currency: str, note: str, actor: str, *,
            adjust: bool) -> None:
    oms = c.oms()
    try:
        minor = _minor(amount, currency, signed=adjust)
        with oms.db.session() as s:
            wallets.credit(s, kind, holder, currency, minor, oms.clock.now(), actor=actor, note=note, adjust=adjust)
        with oms.db.read() as s:
            account = wallets.account(s, kind, holder, currency)
    finally:
        oms.close()
    click.echo(f"{kind} {holder}: balance {account['balance_text']}")


@wallets_group.command("credit")
@click.argument("kind", type=KIND)
@click.argument("holder")
@click.argument("amount")
@click.option("--currency", default="CNY", show_default=True)
@click.option("--note", default="")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def wallets_credit(c: Ctx, kind: str, holder: str, amount: str, currency: str, note: str, actor: str) -> None:
    """Issue a gift card HOLDER (its code) or grant points to customer HOLDER: AMOUNT onto its balance."""
    _change(c, kind, holder, amount, currency, note, actor, adjust=False)


@wallets_group.command("adjust")
@click.argument("kind", type=KIND)
@click.argument("holder")
@click.argument("amount")
@click.option("--currency", default="CNY", show_default=True)
@click.option("--note", required=True, help="why: it is kept with the movement")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def wallets_adjust(c: Ctx, kind: str, holder: str, amount: str, currency: str, note: str, actor: str) -> None:
    """Correct the balance of an account by AMOUNT, saying why; a negative AMOUNT takes off and follows
    ``--``: oms wallets adjust points C-1 --note "..." -- -5.00"""
    _change(c, kind, holder, amount, currency, note, actor, adjust=True)


@wallets_group.command("show")
@click.argument("kind", type=KIND)
@click.argument("holder")
@click.option("--currency", default=None, help="when the account is kept in several")
@click.option("--json", "as_json", is_flag=True)
@wide_option
@click.pass_obj
@errors_to_exit
def wallets_show(c: Ctx, kind: str, holder: str, currency: str | None, as_json: bool, wide: bool) -> None:
    """An account's balance and every movement of it.

    \b
    Examples:
      oms wallets show gift_card GC-1234
      oms wallets show points C-1042 --json
    """
    oms = c.oms()
    try:
        with oms.db.read() as s:
            account = wallets.account(s, kind, holder, currency)
    finally:
        oms.close()
    if as_json:
        print_json(account)
        return
    head = Text()
    head.append(f"{kind} {holder}", style="bold")
    head.append(f"  balance {account['balance_text']}")
    emit(head, console.width)
    t = Listing("at", "movement", num("amount"), num("balance", drop=2), Col("payment", drop=1),
                Col("actor", drop=3), prose("note", drop=4, least=12))
    for m in account["movements"]:
        t.add_row(when(m["at"]), m["kind"], m["amount"], m["balance_after"], m["payment"] or "", m["actor"],
                  m["note"])
    t.print(wide=wide)

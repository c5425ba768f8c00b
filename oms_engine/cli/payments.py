"""``oms payments ...``: what a person does about a payment or refund (the ledger itself is in oms order show)."""

from __future__ import annotations

import click

from .root import Ctx, errors_to_exit, main


@main.group()
def payments() -> None:
    """Payments and refunds: oms order show NUMBER lists an order's, with their serial numbers."""


@payments.command("retry")
@click.argument("serial")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def payments_retry(c: Ctx, serial: str, actor: str) -> None:
    """Send the refund SERIAL, which the payment provider refused, to it once more."""
    oms = c.oms()
    try:
        status = oms.commands.retry_refund(serial, actor=actor)
    finally:
        oms.close()
    click.echo(f"{serial}: {status}")

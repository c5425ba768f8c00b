"""``oms invoices show``: an invoice or credit note as kept, as the e-invoice a tax platform takes, and how it
stands with the platform; ``oms invoices submit``: those not at the platform, sent to it."""

from __future__ import annotations

import json

import click

from .root import Ctx, errors_to_exit, main


@main.group()
def invoices() -> None:
    """Invoices and credit notes (oms order show NUMBER lists an order's)."""


@invoices.command("show")
@click.argument("number")
@click.option("--format", "fmt", default=None, help="the e-invoice format (default: config einvoice_format)")
@click.option("--einvoice", "only", is_flag=True, help="print the rendered e-invoice alone (XML as it is)")
@click.pass_obj
@errors_to_exit
def invoices_show(c: Ctx, number: str, fmt: str | None, only: bool) -> None:
    """Invoice or credit note NUMBER and its e-invoice."""
    oms = c.oms()
    try:
        shown = oms.invoices.einvoice(number, fmt)
    finally:
        oms.close()
    if only:
        rendered = shown["einvoice"]
        click.echo(rendered if isinstance(rendered, str) else json.dumps(rendered, indent=2, ensure_ascii=False))
        return
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@invoices.command("submit")
@click.argument("numbers", nargs=-1)
@click.option("--all-unsubmitted", "everything", is_flag=True,
              help="every invoice and credit note never submitted (issued before submission existed, or with no "
                   "tax connector set)")
@click.pass_obj
@errors_to_exit
def invoices_submit(c: Ctx, numbers: tuple[str, ...], everything: bool) -> None:
    """Submit invoices NUMBERS (each unsubmitted, or refused by the platform) to the tax platform, through the
    outbox: the next `oms run` or worker pass sends them."""
    if bool(numbers) == everything:
        raise click.UsageError("name the invoices to submit, or give --all-unsubmitted")
    oms = c.oms()
    try:
        if everything:
            n = oms.invoices.submit_unsubmitted()
            click.echo(f"{n} invoices and credit notes queued for the tax platform")
            return
        for number, state in oms.invoices.submit(list(numbers)).items():
            click.echo(f"{number}: {state}")
    finally:
        oms.close()

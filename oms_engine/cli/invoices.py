"""``oms invoices show``: an invoice or credit note as kept, and as the e-invoice a tax platform takes."""

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

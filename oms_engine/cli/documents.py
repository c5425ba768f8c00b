"""``oms documents ...``: purchase orders, returns to vendors and customer returns for a warehouse to work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.text import Text

from ..fulfilment.stock_documents import DocKind, parse_line
from .render import Col, Listing, emit, num, print_json, prose, when, wide_option
from .root import Ctx, console, errors_to_exit, main


@main.group()
def documents() -> None:
    """Goods-in and goods-out documents: the warehouse reports what it received or sent, and that moves the stock."""


def _print(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    head = Text()
    head.append(str(doc["number"]), style="bold")
    head.append(f" {doc['kind']} at {doc['warehouse']}: {doc['status']}"
                + (f", supplier {doc['supplier']}" if doc.get("supplier") else "")
                + (f", order {doc['order_number']}" if doc.get("order_number") else ""))
    emit(head, console.width)
    t = Listing(num("#"), "sku", num("quantity"), num("done"), num("unit cost (minor units)", drop=1))
    for ln in doc["lines"]:
        t.add_row(ln["line_no"], ln["sku"], ln["quantity"], ln["done"], ln["unit_cost"])
    t.print()


_LINES = click.option("--line", "lines", multiple=True, required=True,
                      help="SKU:QUANTITY (a purchase order: SKU:QUANTITY:UNIT_COST), once per line")


@documents.command("po")
@click.argument("warehouse")
@click.option("--supplier", required=True)
@_LINES
@click.option("--expected", type=click.DateTime(["%Y-%m-%d"]), default=None, help="when the goods are due")
@click.option("--note", default="")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def documents_po(c: Ctx, warehouse: str, supplier: str, lines: tuple[str, ...], expected: datetime | None, note: str,
                 actor: str, as_json: bool) -> None:
    """A purchase order: goods expected at WAREHOUSE from a supplier; its receipt posts what arrived, at cost."""
    oms = c.oms(require_rules=False)
    try:
        doc = oms.documents.create(DocKind.PURCHASE_ORDER, warehouse, [parse_line(x) for x in lines], actor=actor,
                                   supplier=supplier, expected_at=expected, note=note)
    finally:
        oms.close()
    _print(doc, as_json)


@documents.command("rtv")
@click.argument("warehouse")
@click.option("--supplier", required=True)
@_LINES
@click.option("--note", default="")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def documents_rtv(c: Ctx, warehouse: str, supplier: str, lines: tuple[str, ...], note: str, actor: str,
                  as_json: bool) -> None:
    """A return to a vendor: goods WAREHOUSE sends back to a supplier; posted when the warehouse says they left."""
    oms = c.oms(require_rules=False)
    try:
        doc = oms.documents.create(DocKind.RETURN_TO_VENDOR, warehouse, [parse_line(x) for x in lines], actor=actor,
                                   supplier=supplier, note=note)
    finally:
        oms.close()
    _print(doc, as_json)


@documents.command("rma")
@click.argument("order_number")
@click.option("--warehouse", required=True, help="where the goods come back to")
@_LINES
@click.option("--note", default="")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def documents_rma(c: Ctx, order_number: str, warehouse: str, lines: tuple[str, ...], note: str, actor: str,
                  as_json: bool) -> None:
    """A customer return: goods of ORDER_NUMBER expected back; the warehouse's receipt posts them."""
    oms = c.oms(require_rules=False)
    try:
        doc = oms.documents.create(DocKind.CUSTOMER_RETURN, warehouse, [parse_line(x) for x in lines], actor=actor,
                                   order_number=order_number, note=note)
    finally:
        oms.close()
    _print(doc, as_json)


@documents.command("list")
@click.option("--kind", type=click.Choice([k.value for k in DocKind]), default=None)
@click.option("--status", default=None)
@click.option("--warehouse", default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="the documents as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def documents_list(c: Ctx, kind: str | None, status: str | None, warehouse: str | None, limit: int,
                   as_json: bool, wide: bool) -> None:
    """Documents, newest first.

    \b
    Examples:
      oms documents list --kind purchase_order --status sent
      oms documents list --warehouse WH-SH --json
    """
    oms = c.oms(require_rules=False)
    try:
        rows = oms.documents.list(kind=kind, status=status, warehouse=warehouse, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(rows)
        return
    t = Listing("number", Col("kind", drop=2), Col("warehouse", drop=3), "status", Col("supplier / order", drop=1),
                prose("lines", least=12), Col("updated", drop=4))
    for r in rows:
        t.add_row(r["number"], r["kind"], r["warehouse"], r["status"], r["supplier"] or r["order_number"] or "",
                  ", ".join(f"{ln['sku']} {ln['done']}/{ln['quantity']}" for ln in r["lines"]), when(r["updated_at"]))
    t.print(wide=wide)


@documents.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def documents_show(c: Ctx, number: str, as_json: bool) -> None:
    """One document and what the warehouse did of it."""
    oms = c.oms(require_rules=False)
    try:
        doc = oms.documents.get(number)
    finally:
        oms.close()
    _print(doc, as_json)


@documents.command("cancel")
@click.argument("number")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def documents_cancel(c: Ctx, number: str, actor: str) -> None:
    """Cancel a document nothing was done on yet."""
    oms = c.oms(require_rules=False)
    try:
        doc = oms.documents.cancel(number, actor=actor)
    finally:
        oms.close()
    click.echo(f"{doc['number']}: {doc['status']}")

"""``oms settlement``: what each merchant sold, had refunded and owes in commission over a period."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..fulfilment.timeliness import Period
from ..money import format_minor
from ..settlement.commission import CommissionRates
from ..settlement.statements import statements
from .root import Ctx, console, errors_to_exit, main


@main.command("settlement")
@click.argument("merchant", required=False)
@click.option("--since", default=None, help="documents issued from this date or time (UTC unless it says "
                                           "otherwise); default a week before --until")
@click.option("--until", default=None, help="... up to this date (the whole day) or time; default now")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def settlement(c: Ctx, merchant: str | None, since: str | None, until: str | None, as_json: bool) -> None:
    """The settlement statement of MERCHANT over the period (with its invoices and credit notes), or one line
    per merchant and the period's totals they add up to."""
    oms = c.oms()
    try:
        period = Period.parse(since, until, now=oms.clock.now(), names=("--since", "--until"))
        with oms.db.read() as s:
            data = statements(s, period, CommissionRates(oms.rulebook), merchant=merchant)
    finally:
        oms.close()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    console.print(f"settlement from {data['since']} until {data['until']} (UTC)", highlight=False)
    t = Table("merchant", "currency", "orders", "sales", "freight", "tax", "refunds", "commission", "payout")
    for st in data["statements"]:
        cur = st["currency"]
        t.add_row(st["merchant"] or "-", cur, str(st["orders"]), format_minor(st["sales"], cur),
                  format_minor(st["freight"], cur), format_minor(st["sales_tax"] + st["freight_tax"], cur),
                  format_minor(st["refunds"], cur), format_minor(st["commission"], cur), st["payout_text"])
    console.print(t)
    for cur, tot in sorted(data["totals"].items()):
        console.print(f"{cur}: invoiced {format_minor(tot['invoiced'], cur)}, credited "
                      f"{format_minor(tot['credited'], cur)}", highlight=False)
    if merchant:
        for st in data["statements"]:
            d = Table("rate", "category", "channel", "net sales", "commission", "rule", title="commission")
            for r in st["commission_by_rate"]:
                d.add_row(f"{r['rate_bp'] / 100:.2f} %", r["category"] or "-", r["channel"],
                          format_minor(r["net_sales"], st["currency"]), format_minor(r["commission"], st["currency"]),
                          r["rule"] or "-")
            console.print(d)
            docs = Table("document", "kind", "order", "at", "amount", title="documents")
            for doc in st["documents"]:
                docs.add_row(doc["document"], doc["kind"], doc["order"], doc["at"],
                             format_minor(doc["amount"], st["currency"]))
            console.print(docs)

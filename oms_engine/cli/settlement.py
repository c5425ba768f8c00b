"""``oms settlement``: what each merchant sold, had refunded and owes in commission over a period."""

from __future__ import annotations

import click
from rich.text import Text

from ..fulfilment.timeliness import Period
from ..money import format_minor
from ..settlement.commission import CommissionRates
from ..settlement.statements import statements
from .render import Col, Listing, emit, num, print_json, when, wide_option
from .root import Ctx, console, errors_to_exit, main


@main.command("settlement")
@click.argument("merchant", required=False)
@click.option("--since", default=None, help="documents issued from this date or time (UTC unless it says "
                                           "otherwise); default a week before --until")
@click.option("--until", default=None, help="... up to this date (the whole day) or time; default now")
@click.option("--json", "as_json", is_flag=True)
@wide_option
@click.pass_obj
@errors_to_exit
def settlement(c: Ctx, merchant: str | None, since: str | None, until: str | None, as_json: bool,
               wide: bool) -> None:
    """The settlement statement of MERCHANT over the period (with its invoices and credit notes), or one line
    per merchant and the period's totals they add up to.

    \b
    Examples:
      oms settlement --since 2026-11-01 --until 2026-11-30
      oms settlement M-03 --since 2026-11-01 --until 2026-11-30 --json
    """
    oms = c.oms()
    try:
        period = Period.parse(since, until, now=oms.clock.now(), names=("--since", "--until"))
        with oms.db.read() as s:
            data = statements(s, period, CommissionRates(oms.rulebook), merchant=merchant)
    finally:
        oms.close()
    if as_json:
        print_json(data)
        return
    emit(Text(f"settlement from {when(data['since'])} until {when(data['until'])}"), console.width)
    t = Listing("merchant", Col("currency", drop=8), num("orders", drop=7), num("sales"), num("freight", drop=4),
                num("tax", drop=5), num("refunds", drop=3), num("commission", drop=2), num("payout"))
    for st in data["statements"]:
        cur = st["currency"]
        t.add_row(st["merchant"] or "-", cur, st["orders"], format_minor(st["sales"], cur),
                  format_minor(st["freight"], cur), format_minor(st["sales_tax"] + st["freight_tax"], cur),
                  format_minor(st["refunds"], cur), format_minor(st["commission"], cur), st["payout_text"])
    t.print(wide=wide)
    for cur, tot in sorted(data["totals"].items()):
        click.echo(f"{cur}: invoiced {format_minor(tot['invoiced'], cur)}, credited "
                   f"{format_minor(tot['credited'], cur)}")
    if merchant:
        for st in data["statements"]:
            d = Listing(num("rate"), "category", Col("channel", drop=2), num("net sales"), num("commission"),
                        Col("rule", drop=1), title="commission")
            for r in st["commission_by_rate"]:
                d.add_row(f"{r['rate_bp'] / 100:.2f} %", r["category"] or "-", r["channel"],
                          format_minor(r["net_sales"], st["currency"]), format_minor(r["commission"], st["currency"]),
                          r["rule"] or "-")
            d.print(wide=wide)
            docs = Listing("document", Col("kind", drop=2), "order", Col("at", drop=1), num("amount"),
                           title="documents")
            for doc in st["documents"]:
                docs.add_row(doc["document"], doc["kind"], doc["order"], when(doc["at"]),
                             format_minor(doc["amount"], st["currency"]))
            docs.print(wide=wide)

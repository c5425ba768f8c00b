"""``oms aftersales ...``: after-sales cases on orders customers received (refund only, return and refund,
exchange)."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from .render import Col, Listing, emit, num, print_json, prose, when, wide_option
from .root import Ctx, console, errors_to_exit, fail, main


@main.group()
def aftersales() -> None:
    """After-sales cases: opened on a shipped order, decided by rules/aftersales.yaml or a person."""


def _print(case: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(case)
        return
    head = Text()
    head.append(case["number"], style="bold")
    head.append(f"  {case['kind']}  {case['status']}  worth {case['amount_text']}"
                + (f"  ({case['decision']})" if case["decision"] else ""))
    emit(head, console.width)
    emit(Text("lines: " + ", ".join(f"#{ln['line_no']} x{ln['quantity']}" for ln in case["lines"])
              + (f"; goods back on {case['return_document']}" if case["return_document"] else "")
              + (f"; replacement {case['replacement']}" if case.get("replacement") else "")
              + ("; refunds " + ", ".join(f"{r['serial']} {r['status']}" for r in case["refunds"])
                 if case["refunds"] else "")), console.width)
    t = Listing("at", "event", Col("from", drop=3), Col("to", drop=1), Col("actor", drop=2),
                prose("cause", least=14), title="history")
    for h in case["history"]:
        t.add_row(when(h["at"]), h["event"], h["from"] or "", h["to"], h["actor"], h["cause"])
    t.print()


def _lines(texts: tuple[str, ...]) -> dict[int, int]:
    out: dict[int, int] = {}
    for text in texts:
        no, _, qty = text.partition(":")
        if not no.strip().isdigit() or not qty.strip().isdigit():
            fail(f"--line takes LINE_NO:QUANTITY, e.g. 1:2; got {text!r}")
        out[int(no)] = out.get(int(no), 0) + int(qty)
    return out


@aftersales.command("open")
@click.argument("number")
@click.option("--kind", type=click.Choice(["refund_only", "return_refund", "exchange"]), required=True)
@click.option("--line", "lines", multiple=True, help="LINE_NO:QUANTITY, once per line (none: every unit not in a "
                                                     "case yet)")
@click.option("--to", "swaps", multiple=True, help="LINE_NO:SKU, an exchange's other product for the line at the "
                                                   "same price (none: the same SKU)")
@click.option("--reason", default="", help="the customer's words")
@click.option("--actor", default="cli", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def aftersales_open(c: Ctx, number: str, kind: str, lines: tuple[str, ...], swaps: tuple[str, ...], reason: str,
                    actor: str, as_json: bool) -> None:
    """Open a case on order NUMBER; the rules approve it, leave it to a person or deny it at once."""
    wanted = _lines(lines)
    exchange_to: dict[int, str] = {}
    for text in swaps:
        no, _, sku = text.partition(":")
        if not no.strip().isdigit() or not sku.strip():
            fail(f"--to takes LINE_NO:SKU, e.g. 1:TEA-2; got {text!r}")
        exchange_to[int(no)] = sku.strip()
    oms = c.oms()
    try:
        case = oms.aftersales.open(number, kind, wanted or None, reason, actor=actor, exchange_to=exchange_to)
    finally:
        oms.close()
    _print(case, as_json)


_HELP = {"approve": "Approve CASE: a refund is owed at once, or the goods are asked back first.",
         "deny": "Deny CASE, saying why (--note); the customer may appeal once.",
         "appeal": "The customer disputes the denial of CASE: the rules, then a person, look again.",
         "cancel": "The customer withdraws CASE; its units may be claimed again.",
         "receive": "The goods of CASE came back and the warehouse did not say: record the rest of its return "
                    "document received (the stock comes back, the case moves on); --damaged SKU:N for units "
                    "that came back damaged (kept apart from sellable stock).",
         "refund": "Pay CASE back now (an exchange whose replacement went astray: a replacement not sent yet is "
                   "cancelled)."}


def _damaged(texts: tuple[str, ...]) -> dict[str, int]:
    """``--damaged SKU:N`` options as SKU -> units (a SKU given twice: the sum)."""
    out: dict[str, int] = {}
    for text in texts:
        sku, _, qty = text.rpartition(":")
        if not sku.strip() or not qty.strip().isdigit() or int(qty) <= 0:
            fail(f"--damaged takes SKU:QUANTITY with a quantity above 0, e.g. TEA-1:2; got {text!r}")
        out[sku.strip()] = out.get(sku.strip(), 0) + int(qty)
    return out


def _act(event: str) -> Any:
    def act(c: Ctx, case: str, note: str, actor: str, as_json: bool, damaged: tuple[str, ...] = ()) -> None:
        broken = _damaged(damaged)
        oms = c.oms()
        try:
            shown = oms.aftersales.act(case, event, actor=actor, note=note, damaged=broken or None)
        finally:
            oms.close()
        _print(shown, as_json)

    command: Any = errors_to_exit(act)
    command = click.pass_obj(command)
    if event == "receive":
        command = click.option("--damaged", "damaged", multiple=True, metavar="SKU:N",
                               help="N units of SKU came back damaged (repeat it for each SKU)")(command)
    for option in (click.option("--json", "as_json", is_flag=True),
                   click.option("--actor", default="cli", show_default=True), click.option("--note", default=""),
                   click.argument("case")):
        command = option(command)
    return aftersales.command(event, help=_HELP[event])(command)


for _event in _HELP:
    _act(_event)


@aftersales.command("list")
@click.option("--status", default=None)
@click.option("--kind", type=click.Choice(["refund_only", "return_refund", "exchange"]), default=None)
@click.option("--order", default=None, help="the cases of this order")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="the cases as a JSON list")
@wide_option
@click.pass_obj
@errors_to_exit
def aftersales_list(c: Ctx, status: str | None, kind: str | None, order: str | None, limit: int,
                    as_json: bool, wide: bool) -> None:
    """Cases, newest first: by state (under_review is the queue of cases waiting for a person), kind or order.

    \b
    Examples:
      oms aftersales list --status under_review
      oms aftersales list --order 2611020712345678903 --json
    """
    oms = c.oms()
    try:
        cases = oms.aftersales.list(status=status, kind=kind, order=order, limit=limit)
    finally:
        oms.close()
    if as_json:
        print_json(cases)
        return
    t = Listing("case", "order", Col("kind", drop=2), "status", num("worth", drop=3), Col("replacement", drop=1),
                Col("opened", drop=4))
    for case in cases:
        t.add_row(case["number"], case["order"], case["kind"], case["status"], case["amount_text"],
                  case["replacement"] or "", when(case["opened_at"]))
    t.print(wide=wide)


@aftersales.command("show")
@click.argument("case")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def aftersales_show(c: Ctx, case: str, as_json: bool) -> None:
    """A case: its lines, worth, decision, refunds and history."""
    oms = c.oms()
    try:
        shown = oms.aftersales.get(case)
    finally:
        oms.close()
    _print(shown, as_json)

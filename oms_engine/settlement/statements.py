"""Settlement statements: per merchant and period, what it sold, what was refunded of it, its freight and the
commission it owes, from the invoices and credit notes issued in the period.

How each amount is found, to the cent:

* Sales: every invoice issued in the period (not one issued again after an
  exchange: that moves no money) is split by its items: an order line's
  item (its amount before tax and its tax) belongs to the line's merchant;
  the freight item is shared over the merchants of the order by their items'
  amounts, by largest remainder.
* Refunds: every credit note issued in the period for money paid back (not
  the reversal of an invoice issued again) is shared over the lines it pays
  back: the units of the after-sales case its refunds were owed for, else
  the lines of the order it refunds, each by what the customer paid for
  it (a whole order's freight too, shared by its lines); amount and tax
  each by largest remainder.
* Commission: rules/commission.yaml's rate for the merchant, the line's
  category and the channel, on the net sales before tax (sales less refunds),
  per rate rounded half up.
* Payout: sales and freight with their tax, less refunds, less commission.

So the statements of all merchants of a period add up to the invoices and
credit notes of the period (:func:`totals`), whatever the orders' mix of
merchants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..aftersales.amounts import paid_for
from ..fulfilment.timeliness import Period
from ..invoices.issuing import CREDIT, INVOICE, freight_paid
from ..money import apportion, format_minor
from ..storage.models import AftersalesCase, Invoice, Order, OrderLine, Payment
from .commission import CommissionRates

REISSUE = "REISSUE"     # the item of a credit note that reverses an invoice to issue it again


@dataclass
class _Share:
    """One line's part of a document: its merchant, category, amount before tax and tax; ``freight``: the
    line's share of the freight (no commission is charged on it)."""

    merchant: str
    category: str
    amount: int
    tax: int
    freight: bool = False


@dataclass
class _Money:
    sales: int = 0
    sales_tax: int = 0
    freight: int = 0
    freight_tax: int = 0
    refunds: int = 0
    refunds_tax: int = 0
    # (category, channel) -> net sales before tax, for the commission
    net: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    orders: set[str] = field(default_factory=set)
    documents: list[dict[str, Any]] = field(default_factory=list)


def _is_reissue(doc: Invoice) -> bool:
    if doc.kind == INVOICE:
        return bool(doc.reason)                 # the first invoice of an order gives no reason
    return any(it.get("sku") == REISSUE for it in doc.lines)


def _lines_of(s: Session, order_ids: Iterable[int]) -> dict[int, dict[int, OrderLine]]:
    out: dict[int, dict[int, OrderLine]] = defaultdict(dict)
    ids = sorted(set(order_ids))
    for i in range(0, len(ids), 500):
        for ln in s.scalars(select(OrderLine).where(OrderLine.order_id.in_(ids[i:i + 500]))):
            out[ln.order_id][ln.line_no] = ln
    return out


def _category(line: OrderLine | None) -> str:
    return str((line.attributes or {}).get("category", "")) if line is not None else ""


def _invoice_shares(doc: Invoice, lines: dict[int, OrderLine]) -> tuple[list[_Share], list[_Share]]:
    """(goods shares, freight shares) of an invoice."""
    def merchant(no: int) -> str:
        return lines[no].merchant if no in lines else ""

    goods = [_Share(merchant(it["line_no"]), _category(lines.get(it["line_no"])), int(it["amount"]), int(it["tax"]))
             for it in doc.lines if it["line_no"]]
    freight = [it for it in doc.lines if not it["line_no"]]
    shares: list[_Share] = []
    if freight and goods:
        amount, tax = sum(int(it["amount"]) for it in freight), sum(int(it["tax"]) for it in freight)
        weights = [g.amount for g in goods]
        for g, a, t in zip(goods, apportion(amount, weights), apportion(tax, weights), strict=True):
            shares.append(_Share(g.merchant, g.category, a, t))
    return goods, shares


def _credit_shares(s: Session, doc: Invoice, lines_by_order: dict[int, dict[int, OrderLine]]) -> list[_Share]:
    """A credit note's amount and tax shared over the lines it pays back."""
    order_id = doc.for_order_id or doc.order_id
    lines = lines_by_order.get(order_id, {})
    case_number = s.scalar(select(Payment.case_number).where(Payment.serial.in_(list(doc.refunds or [])),
                                                             Payment.case_number.is_not(None)))
    weighted: list[tuple[OrderLine, int]] = []
    if case_number:
        case = s.scalars(select(AftersalesCase).where(AftersalesCase.number == case_number)).first()
        if case is not None:
            weighted = [(lines[int(c["line_no"])], paid_for(lines[int(c["line_no"])], int(c["quantity"])))
                        for c in case.lines if int(c["line_no"]) in lines]
    freight = 0
    if not weighted:
        # The whole order (a cancellation, a refused parcel): its lines and its freight, each merchant's share
        # of the freight going by its lines.
        order = s.get(Order, order_id)
        weighted = [(ln, ln.goods - ln.discount) for ln in lines.values()]
        freight = freight_paid(order) if order is not None else 0
        # A refused parcel's refund may keep its freight (rules/refunds.yaml): then none of it is paid back.
        freight = min(freight, max(doc.amount - doc.tax - sum(w for _, w in weighted), 0))
    if not weighted:
        return [_Share("", "", doc.amount - doc.tax, doc.tax)]
    weights = [w for _, w in weighted] + [freight]
    net = apportion(doc.amount - doc.tax, weights)
    tax = apportion(doc.tax, weights)
    shares = [_Share(ln.merchant, _category(ln), a, t) for (ln, _), a, t in zip(weighted, net, tax, strict=False)]
    if net[-1] or tax[-1]:
        goods = [w for _, w in weighted]
        shares += [_Share(ln.merchant, _category(ln), a, t, freight=True) for (ln, _), a, t in
                   zip(weighted, apportion(net[-1], goods), apportion(tax[-1], goods), strict=True)]
    return shares


def _gather(s: Session, period: Period) -> dict[tuple[str, str], _Money]:
    """(merchant, currency) -> its money in the period."""
    docs = [d for d in s.scalars(select(Invoice).where(Invoice.created_at >= period.since,
                                                       Invoice.created_at < period.until).order_by(Invoice.id))
            if not _is_reissue(d)]
    orders = {o.id: o for o in s.scalars(select(Order).where(Order.id.in_(
        {d.order_id for d in docs} | {d.for_order_id for d in docs if d.for_order_id})))} if docs else {}
    lines_by_order = _lines_of(s, orders)
    out: dict[tuple[str, str], _Money] = defaultdict(_Money)
    for doc in docs:
        about = orders.get(doc.for_order_id or doc.order_id)
        channel = about.channel if about is not None else ""
        number = about.number if about is not None else ""
        if doc.kind == INVOICE:
            goods, freight = _invoice_shares(doc, lines_by_order.get(doc.order_id, {}))
            for g in goods:
                m = out[(g.merchant, doc.currency)]
                m.sales += g.amount
                m.sales_tax += g.tax
                m.net[(g.category, channel)] += g.amount
            for f in freight:
                m = out[(f.merchant, doc.currency)]
                m.freight += f.amount
                m.freight_tax += f.tax
            touched = {g.merchant for g in goods} | {f.merchant for f in freight}
            signed = 1
            parts = goods + freight
        elif doc.kind == CREDIT:
            parts = _credit_shares(s, doc, lines_by_order)
            for p in parts:
                m = out[(p.merchant, doc.currency)]
                m.refunds += p.amount + p.tax
                m.refunds_tax += p.tax
                if not p.freight:
                    m.net[(p.category, channel)] -= p.amount
            touched = {p.merchant for p in parts}
            signed = -1
        else:
            continue
        for merchant in touched:
            mine = [p for p in parts if p.merchant == merchant]
            m = out[(merchant, doc.currency)]
            m.orders.add(number)
            m.documents.append({"document": doc.number, "kind": doc.kind, "order": number,
                                "at": doc.created_at.isoformat() + "Z",
                                "amount": signed * sum(p.amount + p.tax for p in mine)})
    return out


def _commission(money: _Money, merchant: str, rates: CommissionRates) -> tuple[int, list[dict[str, Any]]]:
    total, detail = 0, []
    for (category, channel), net in sorted(money.net.items()):
        rate = rates.rate(merchant, category, channel)
        due = (net * rate.basis_points + 5_000) // 10_000
        total += due
        detail.append({"category": category, "channel": channel, "net_sales": net,
                       "rate_bp": rate.basis_points, "rule": rate.rule, "reason": rate.reason, "commission": due})
    return total, detail


def _statement(merchant: str, currency: str, money: _Money, rates: CommissionRates, *, documents: bool
               ) -> dict[str, Any]:
    commission, detail = _commission(money, merchant, rates)
    gross = money.sales + money.sales_tax + money.freight + money.freight_tax
    payout = gross - money.refunds - commission
    out = {"merchant": merchant, "currency": currency, "orders": len(money.orders - {""}),
           "sales": money.sales, "sales_tax": money.sales_tax, "freight": money.freight,
           "freight_tax": money.freight_tax, "gross": gross, "refunds": money.refunds,
           "refunds_tax": money.refunds_tax, "commission": commission, "payout": payout,
           "payout_text": format_minor(payout, currency), "commission_by_rate": detail}
    if documents:
        out["documents"] = money.documents
    return out


def statements(s: Session, period: Period, rates: CommissionRates, *, merchant: str | None = None
               ) -> dict[str, Any]:
    """Every merchant's statement of the period (or ``merchant``'s alone, with its documents), and the period's
    totals they add up to."""
    gathered = _gather(s, period)
    chosen = sorted(k for k in gathered if merchant is None or k[0] == merchant)
    return {"since": period.since.isoformat() + "Z", "until": period.until.isoformat() + "Z",
            "statements": [_statement(m, cur, gathered[(m, cur)], rates, documents=merchant is not None)
                           for m, cur in chosen],
            "totals": totals(s, period.since, period.until)}


def totals(s: Session, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """Per currency, the invoices and the credit notes for money paid back issued in the period: what the
    statements' gross and refunds add up to."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"invoiced": 0, "credited": 0})
    for doc in s.scalars(select(Invoice).where(Invoice.created_at >= since, Invoice.created_at < until)):
        if _is_reissue(doc):
            continue
        out[doc.currency]["invoiced" if doc.kind == INVOICE else "credited"] += doc.amount
    return dict(out)

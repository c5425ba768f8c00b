"""Issuing invoices and credit notes (storage/models/invoices.py).

* An order is invoiced once it is paid in full (payments/ledger.py calls
  :func:`invoice_order` then): its lines at what the customer pays for
  them (goods less their share of the discounts), the freight, and the
  order's tax shared over them by largest remainder, so the items and their
  tax add up to what was paid, to the cent. A split order is invoiced as the
  order the customer paid; its children are not invoiced again.
* Every refund of an invoiced order's money (a cancellation, a returned
  parcel, an after-sales case) gets a credit note for what is paid back,
  naming the invoice and the refunds. Its tax is the invoice's tax in the
  same proportion, counted over every credit note of the invoice, so paying
  everything back credits exactly the tax invoiced. Money the order was
  never allowed to keep (paid late, twice, over) was never invoiced and gets
  no credit note.

So for every order paid in full: invoiced less credited equals paid less
refunded, always (:func:`balance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..money import apportion, format_minor
from ..storage.db import append, drain
from ..storage.models import Invoice, Order
from .einvoice import einvoice

INVOICE, CREDIT = "invoice", "credit_note"


def _buyer(order: Any) -> dict[str, Any]:
    customer = order.customer
    return {"ref": customer.ref if customer is not None else "", "name": customer.name if customer is not None else "",
            "country": (order.ship_to or {}).get("country", "")}


def invoice_order(s: Session, order: Any, at: datetime) -> str:
    """Invoice ``order`` (paid in full, a parent): its number."""
    items = [{"line_no": ln.line_no, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity,
              "unit_price": ln.unit_price, "amount": ln.goods - ln.discount} for ln in order.lines]
    # A coupon worth more than the goods takes the rest off the freight, then the tax.
    excess = max(order.coupon - order.goods, 0)
    freight = order.freight - min(excess, order.freight)
    tax = order.tax - min(max(excess - order.freight, 0), order.tax)
    if freight:
        items.append({"line_no": 0, "sku": "FREIGHT", "name": "freight", "quantity": 1, "unit_price": freight,
                      "amount": freight})
    shares = apportion(tax, [it["amount"] for it in items]) if items else []
    for it, share in zip(items, shares, strict=True):
        it["tax"] = share
    number = f"{order.number}-INV01"
    amount = sum(it["amount"] + it["tax"] for it in items)
    append(s, Invoice, number=number, order_id=order.id, for_order_id=None, kind=INVOICE, amount=amount,
           tax=tax, currency=order.currency, lines=items, refers_to=None, refunds=None, reason="",
           document=einvoice(number=number, kind=INVOICE, at=at, currency=order.currency, buyer=_buyer(order),
                             items=items, amount=amount, tax=tax), created_at=at)
    return number


def credit_note(s: Session, owner_id: int, for_order: Any, amount: int, refunds: Sequence[str], reason: str,
                at: datetime) -> str | None:
    """A credit note for ``amount`` paid back for ``for_order`` (the paying order ``owner_id``, or a child of
    it), when that order was invoiced; its number, or None."""
    if amount <= 0:
        return None
    drain(s, Invoice)
    invoice = s.scalars(select(Invoice).where(Invoice.order_id == owner_id, Invoice.kind == INVOICE)
                        .order_by(Invoice.id.desc())).first()
    if invoice is None:
        return None
    credited, credited_tax, notes = s.execute(
        select(func.coalesce(func.sum(Invoice.amount), 0), func.coalesce(func.sum(Invoice.tax), 0), func.count())
        .where(Invoice.refers_to == invoice.number)).one()
    credited, credited_tax = int(credited), int(credited_tax)     # PostgreSQL sums bigints as numeric
    # The invoice's tax in proportion, counted over all of its credit notes: paying everything back credits
    # all of it, and no cent of it twice.
    total_tax = invoice.tax * (credited + amount) // invoice.amount if invoice.amount else 0
    tax = min(max(total_tax - credited_tax, 0), amount)
    number = f"{invoice.number.rsplit('-INV', 1)[0]}-CN{notes + 1:02d}"
    items = [{"line_no": 0, "sku": "REFUND", "name": reason[:200] or "refund", "quantity": 1,
              "amount": amount - tax, "tax": tax}]
    append(s, Invoice, number=number, order_id=owner_id, for_order_id=for_order.id, kind=CREDIT, amount=amount,
           tax=tax, currency=invoice.currency, lines=items, refers_to=invoice.number, refunds=list(refunds),
           reason=reason[:300], document=einvoice(number=number, kind=CREDIT, at=at, currency=invoice.currency,
                                                  buyer=dict(invoice.document.get("buyer") or {}), items=items,
                                                  amount=amount, tax=tax, refers_to=invoice.number),
           created_at=at)
    return number


def invoices_of(s: Session, order: Any) -> list[dict[str, Any]]:
    """The invoice and credit notes of ``order`` (a child: the credit notes for it), oldest first."""
    owner = order.parent_id if order.parent_id is not None else order.id
    where = [Invoice.order_id == owner]
    if order.parent_id is not None:
        where.append(Invoice.for_order_id == order.id)
    drain(s, Invoice)
    return [{"number": i.number, "kind": i.kind, "amount": i.amount, "tax": i.tax,
             "amount_text": format_minor(i.amount, i.currency), "refers_to": i.refers_to, "refunds": i.refunds,
             "reason": i.reason, "lines": i.lines, "document": i.document,
             "at": i.created_at.isoformat() + "Z"} for i in s.scalars(select(Invoice).where(*where)
                                                                       .order_by(Invoice.id))]


def balance(s: Session, order: Order) -> tuple[int, int]:
    """(invoiced less credited, paid less refunded) of the paying order ``order`` and its children."""
    invoiced = sum(i.amount if i.kind == INVOICE else -i.amount
                   for i in s.scalars(select(Invoice).where(Invoice.order_id == order.id)))
    refunded = order.refund_amount + sum(c.refund_amount for c in order.children)
    return invoiced, order.paid_amount + order.gift_card + order.points - refunded

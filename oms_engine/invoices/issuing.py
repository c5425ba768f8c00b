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

Every invoice and credit note, as it is inserted, has its e-invoice queued
for the tax platform in the same transaction (submission.py).
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
from .submission import SUBMITTER, Submission, submission_of

INVOICE, CREDIT = "invoice", "credit_note"


def _buyer(order: Any) -> dict[str, Any]:
    customer = order.customer
    return {"ref": customer.ref if customer is not None else "", "name": customer.name if customer is not None else "",
            "country": (order.ship_to or {}).get("country", "")}


def _submitted(s: Session, row: dict[str, Any], *, owner: str, about: str) -> dict[str, Any]:
    """The submission columns of a new invoice (``row``), its e-invoice queued for the tax platform when the
    session belongs to an OMS that submits invoices (submission.py)."""
    submitter = s.info.get(SUBMITTER)
    if submitter is None:     # a session no OMS opened (a script, a migration): submitted later, by hand
        return {"submission": Submission.UNSUBMITTED.value, "submission_note": "", "submission_at": None}
    return submitter.issued(s, row, owner=owner, about=about)


def freight_paid(order: Any) -> int:
    """What the customer pays of ``order``'s freight: a coupon worth more than the goods takes the rest off the
    freight (then the tax), as the invoice has it."""
    return order.freight - min(max(order.coupon - order.goods, 0), order.freight)


def invoice_order(s: Session, order: Any, at: datetime) -> str:
    """Invoice ``order`` (paid in full, a parent): its number."""
    items = [{"line_no": ln.line_no, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity,
              "unit_price": ln.unit_price, "amount": ln.goods - ln.discount} for ln in order.lines]
    # A coupon worth more than the goods takes the rest off the freight, then the tax.
    excess = max(order.coupon - order.goods, 0)
    freight = freight_paid(order)
    tax = order.tax - min(max(excess - order.freight, 0), order.tax)
    if freight:
        items.append({"line_no": 0, "sku": "FREIGHT", "name": "freight", "quantity": 1, "unit_price": freight,
                      "amount": freight})
    shares = apportion(tax, [it["amount"] for it in items]) if items else []
    for it, share in zip(items, shares, strict=True):
        it["tax"] = share
    number = f"{order.number}-INV01"
    amount = sum(it["amount"] + it["tax"] for it in items)
    row = dict(number=number, order_id=order.id, for_order_id=None, kind=INVOICE, amount=amount, tax=tax,
               currency=order.currency, lines=items, refers_to=None, refunds=None, reason="",
               document=einvoice(number=number, kind=INVOICE, at=at, currency=order.currency, buyer=_buyer(order),
                                 items=items, amount=amount, tax=tax), created_at=at)
    append(s, Invoice, **row, **_submitted(s, row, owner=order.number, about=order.number))
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
    credited, credited_tax = _credited(s, invoice.number)
    # The invoice's tax in proportion, counted over all of its credit notes: paying everything back credits
    # all of it, and no cent of it twice.
    total_tax = invoice.tax * (credited + amount) // invoice.amount if invoice.amount else 0
    tax = min(max(total_tax - credited_tax, 0), amount)
    number = _next_credit_note(s, owner_id, invoice.number)
    items = [{"line_no": 0, "sku": "REFUND", "name": reason[:200] or "refund", "quantity": 1,
              "amount": amount - tax, "tax": tax}]
    row = dict(number=number, order_id=owner_id, for_order_id=for_order.id, kind=CREDIT, amount=amount, tax=tax,
               currency=invoice.currency, lines=items, refers_to=invoice.number, refunds=list(refunds),
               reason=reason[:300], document=einvoice(number=number, kind=CREDIT, at=at, currency=invoice.currency,
                                                      buyer=dict(invoice.document.get("buyer") or {}), items=items,
                                                      amount=amount, tax=tax, refers_to=invoice.number),
               created_at=at)
    # The paying order's number is the invoice's own stem: named without reading the order.
    owner = invoice.number.rsplit("-INV", 1)[0]
    append(s, Invoice, **row, **_submitted(s, row, owner=owner, about=for_order.number))
    return number


def _credited(s: Session, invoice: str) -> tuple[int, int]:
    """(amount, tax) of the credit notes against ``invoice``."""
    credited, tax = s.execute(select(func.coalesce(func.sum(Invoice.amount), 0),
                                     func.coalesce(func.sum(Invoice.tax), 0)).where(Invoice.refers_to == invoice)).one()
    return int(credited), int(tax)     # PostgreSQL sums bigints as numeric


def _next_credit_note(s: Session, owner_id: int, invoice: str) -> str:
    # Numbered over every credit note of the order: a reissued invoice's notes go on from the old one's.
    notes = s.scalar(select(func.count()).where(Invoice.order_id == owner_id, Invoice.kind == CREDIT)) or 0
    return f"{invoice.rsplit('-INV', 1)[0]}-CN{notes + 1:02d}"


def reissue(s: Session, owner_id: int, swaps: Sequence[tuple[str, str, str, int]], reason: str, at: datetime
            ) -> str | None:
    """Issue the invoice of the paying order ``owner_id`` again with ``swaps`` (sku, new sku, its name, units:
    units exchanged for another product at the same price), when it was invoiced; the new invoice's number.

    The old invoice is reversed by a credit note for what is left of it; the new one, for the same amount and
    tax, names the products the customer has now; what was credited against the old one (refunds) is credited
    against the new one too, so invoiced less credited stays paid less refunded.
    """
    drain(s, Invoice)
    old = s.scalars(select(Invoice).where(Invoice.order_id == owner_id, Invoice.kind == INVOICE)
                    .order_by(Invoice.id.desc())).first()
    if old is None:
        return None
    items = [dict(it) for it in old.lines]
    for sku, new_sku, name, units in swaps:
        it = next((i for i in items if i["sku"] == sku and i["line_no"] and i["quantity"] >= units), None)
        if it is None or sku == new_sku:
            continue
        moved = it["amount"] * units // it["quantity"]
        it["quantity"], it["amount"] = it["quantity"] - units, it["amount"] - moved
        items.insert(items.index(it) + 1, {"line_no": it["line_no"], "sku": new_sku, "name": name, "quantity": units,
                                           "unit_price": it["unit_price"], "amount": moved})
        if not it["quantity"]:
            items.remove(it)
    for it, share in zip(items, apportion(old.tax, [it["amount"] for it in items]), strict=True):
        it["tax"] = share
    credited, credited_tax = _credited(s, old.number)
    buyer = dict(old.document.get("buyer") or {})
    base, place = old.number.rsplit("-INV", 1)
    number = f"{base}-INV{int(place) + 1:02d}"

    def note(amount: int, tax: int, refers_to: str, why: str) -> None:
        if amount <= 0:
            return
        cn = _next_credit_note(s, owner_id, refers_to)
        lines = [{"line_no": 0, "sku": "REISSUE", "name": why, "quantity": 1, "amount": amount - tax, "tax": tax}]
        row = dict(number=cn, order_id=owner_id, for_order_id=owner_id, kind=CREDIT, amount=amount, tax=tax,
                   currency=old.currency, lines=lines, refers_to=refers_to, refunds=[], reason=why[:300],
                   document=einvoice(number=cn, kind=CREDIT, at=at, currency=old.currency, buyer=buyer,
                                     items=lines, amount=amount, tax=tax, refers_to=refers_to), created_at=at)
        s.add(Invoice(**row, **_submitted(s, row, owner=base, about=base)))
        s.flush()

    note(old.amount - credited, old.tax - credited_tax, old.number, f"reversed: {reason}")
    row = dict(number=number, order_id=owner_id, for_order_id=None, kind=INVOICE, amount=old.amount, tax=old.tax,
               currency=old.currency, lines=items, refers_to=None, refunds=None, reason=reason[:300],
               document=einvoice(number=number, kind=INVOICE, at=at, currency=old.currency, buyer=buyer,
                                 items=items, amount=old.amount, tax=old.tax), created_at=at)
    s.add(Invoice(**row, **_submitted(s, row, owner=base, about=base)))
    s.flush()
    note(credited, credited_tax, number, f"credited before the reissue ({reason})")
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
             "at": i.created_at.isoformat() + "Z", "submission": submission_of(i)}
            for i in s.scalars(select(Invoice).where(*where).order_by(Invoice.id))]


def balance(s: Session, order: Order) -> tuple[int, int]:
    """(invoiced less credited, paid less refunded) of the paying order ``order`` and its children."""
    invoiced = sum(i.amount if i.kind == INVOICE else -i.amount
                   for i in s.scalars(select(Invoice).where(Invoice.order_id == order.id)))
    refunded = order.refund_amount + sum(c.refund_amount for c in order.children)
    return invoiced, order.paid_amount + order.gift_card + order.points - refunded

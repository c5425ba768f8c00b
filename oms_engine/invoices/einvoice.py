"""The e-invoice of an invoice or credit note: the JSON a tax platform takes (format ``oms-einvoice/1``).

An invoice is a "blue" document, a credit note a "red" one naming the invoice it reverses, as the tax
platforms that issue e-invoices (fapiao and others) have them. Amounts are decimal strings in the currency's
own decimals; each item carries its amount before tax, its tax and the rate that makes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..money import decimal_formatter

FORMAT = "oms-einvoice/1"


def einvoice(*, number: str, kind: str, at: datetime, currency: str, buyer: dict[str, Any],
             items: list[dict[str, Any]], amount: int, tax: int, refers_to: str | None = None) -> dict[str, Any]:
    money = decimal_formatter(currency)
    return {
        "format": FORMAT, "invoice_no": number, "type": "blue" if kind == "invoice" else "red",
        "issued_at": at.isoformat(timespec="seconds") + "Z", "currency": currency, "buyer": buyer,
        "items": [{"name": it["name"], "sku": it["sku"], "quantity": it["quantity"], "amount": money(it["amount"]),
                   "tax": money(it["tax"]),
                   "tax_rate": f"{it['tax'] / it['amount']:.4f}" if it["amount"] else "0.0000"} for it in items],
        "total": money(amount), "total_tax": money(tax),
        **({"original_invoice_no": refers_to} if refers_to else {}),
    }


def format_fields(*, number: str, kind: str, order: str, created_at: datetime, currency: str,
                  document: Mapping[str, Any] | None, lines: Sequence[Mapping[str, Any]], amount: int, tax: int,
                  refers_to: str | None) -> dict[str, Any]:
    """An invoice or credit note as an e-invoice format receives it (EInvoiceFormat.render), from its columns;
    ``order``: the number of the order it is for (a credit note's: the child's it refunds, if one)."""
    return {"number": number, "kind": kind, "order": order, "issued_at": created_at.isoformat() + "Z",
            "currency": currency, "buyer": dict((document or {}).get("buyer") or {}),
            "items": [dict(it) for it in lines], "amount": amount, "tax": tax, "refers_to": refers_to}

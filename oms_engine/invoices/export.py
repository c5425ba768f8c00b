"""Invoices read back and rendered as e-invoices: the OMS keeps each invoice and credit note as issued (in the
built-in format, oms-einvoice/1); a tax platform that takes another format gets it from an e-invoice format plugin
(``oms_register_einvoice_formats``), config ``einvoice_format`` naming the usual one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import CommandError, InvoiceNotFound
from ..plugin.faults import PluginFault
from ..plugin.registry import PluginRegistry
from ..storage.db import Database
from ..storage.models import Invoice, Order


def invoice_fields(s: Session, inv: Invoice) -> dict[str, Any]:
    """An invoice or credit note as an e-invoice format receives it (EInvoiceFormat.render)."""
    order = s.get(Order, inv.for_order_id or inv.order_id)
    return {"number": inv.number, "kind": inv.kind, "order": order.number if order is not None else "",
            "issued_at": inv.created_at.isoformat() + "Z", "currency": inv.currency,
            "buyer": dict((inv.document or {}).get("buyer") or {}),
            "items": [dict(it) for it in inv.lines], "amount": inv.amount, "tax": inv.tax,
            "refers_to": inv.refers_to}


class Invoices:
    def __init__(self, *, db: Database, plugins: PluginRegistry, default_format: str) -> None:
        self.db, self.plugins, self.default_format = db, plugins, default_format

    def einvoice(self, number: str, fmt: str | None = None) -> dict[str, Any]:
        """Invoice ``number`` as kept, and rendered in ``fmt`` (default: config ``einvoice_format``)."""
        name = fmt or self.default_format
        if name not in self.plugins.einvoice_formats:
            raise CommandError(f"unknown e-invoice format '{name}' (known: "
                               f"{', '.join(self.plugins.einvoice_formats.names())})")
        with self.db.read() as s:
            inv = s.scalars(select(Invoice).where(Invoice.number == number)).first()
            if inv is None:
                raise InvoiceNotFound(f"no invoice or credit note '{number}'")
            fields = invoice_fields(s, inv)
        try:
            rendered: Mapping[str, Any] | str = self.plugins.render_einvoice(name, fields)
        except PluginFault as fault:
            raise CommandError(f"invoice {number} cannot be rendered as {name}: {fault}") from None
        return {"invoice": fields, "format": name,
                "einvoice": dict(rendered) if isinstance(rendered, Mapping) else rendered}

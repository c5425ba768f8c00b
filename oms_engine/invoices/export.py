"""Invoices read back and rendered as e-invoices: the OMS keeps each invoice and credit note as issued (in the
built-in format, oms-einvoice/1); a tax platform that takes another format gets it from an e-invoice format plugin
(``oms_register_einvoice_formats``), config ``einvoice_format`` naming the usual one. With each, how it stands with
the tax platform (submission.py), and the command that submits those that are not there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import CommandError, InvoiceNotFound
from ..plugin.faults import PluginFault
from ..plugin.registry import PluginRegistry
from ..storage.db import Database
from ..storage.models import Invoice, Order
from .einvoice import format_fields
from .submission import Submission, Submitter, submission_of


def invoice_fields(s: Session, inv: Invoice) -> dict[str, Any]:
    """An invoice or credit note as an e-invoice format receives it (EInvoiceFormat.render)."""
    order = s.get(Order, inv.for_order_id or inv.order_id)
    return format_fields(number=inv.number, kind=inv.kind, order=order.number if order is not None else "",
                         created_at=inv.created_at, currency=inv.currency, document=inv.document, lines=inv.lines,
                         amount=inv.amount, tax=inv.tax, refers_to=inv.refers_to)


class Invoices:
    def __init__(self, *, db: Database, plugins: PluginRegistry, default_format: str, submitter: Submitter,
                 clock: Clock, batch_size: int = 500) -> None:
        self.db, self.plugins, self.default_format = db, plugins, default_format
        self.submitter, self.clock, self.batch_size = submitter, clock, batch_size

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
            submission = submission_of(inv)
        try:
            rendered: Mapping[str, Any] | str = self.plugins.render_einvoice(name, fields)
        except PluginFault as fault:
            raise CommandError(f"invoice {number} cannot be rendered as {name}: {fault}") from None
        return {"invoice": fields, "format": name,
                "einvoice": dict(rendered) if isinstance(rendered, Mapping) else rendered, "submission": submission}

    def submit(self, numbers: Sequence[str]) -> dict[str, str]:
        """Queue these invoices and credit notes (each unsubmitted or refused) for the tax platform, in one
        transaction: number -> its state. CommandError (nothing queued) when one cannot be."""
        def run() -> dict[str, str]:
            with self.db.session() as s:
                rows = {inv.number: inv for inv in s.scalars(select(Invoice).where(Invoice.number.in_(numbers))
                                                             .order_by(Invoice.id).with_for_update())}
                missing = [n for n in numbers if n not in rows]
                if missing:
                    raise InvoiceNotFound(f"no invoice or credit note '{missing[0]}'")
                return self._again(s, list(rows.values()))

        return self.db.run_retrying(run, what="submitting invoices")

    def submit_unsubmitted(self) -> int:
        """Queue every unsubmitted invoice and credit note for the tax platform, oldest first, a batch per
        transaction; how many were queued. One whose e-invoice cannot be rendered is left (with the reason)."""
        if not self.submitter.connector:
            raise CommandError("no tax connector is set (config tax_connector): invoices are not submitted")
        queued, after = 0, 0
        while True:
            def batch(after: int = after) -> tuple[int, int | None]:
                with self.db.session() as s:
                    rows = list(s.scalars(select(Invoice).where(Invoice.submission == Submission.UNSUBMITTED.value,
                                                                Invoice.id > after)
                                          .order_by(Invoice.id).limit(self.batch_size).with_for_update()))
                    if not rows:
                        return 0, None
                    done = self._again(s, rows, skip_unrenderable=True)
                    return sum(1 for st in done.values() if st == Submission.PENDING.value), rows[-1].id

            n, last = self.db.run_retrying(batch, what="submitting unsubmitted invoices")
            if last is None:
                return queued
            queued, after = queued + n, last

    def _again(self, s: Session, rows: list[Invoice], *, skip_unrenderable: bool = False) -> dict[str, str]:
        # The orders' numbers for the whole batch in one query: the paying order's, and a credit note's own.
        ids = {i for inv in rows for i in (inv.order_id, inv.for_order_id) if i is not None}
        numbers: dict[int, str] = {i: n for i, n in s.execute(select(Order.id, Order.number)
                                                              .where(Order.id.in_(ids)))} if ids else {}
        at = self.clock.now()
        out: dict[str, str] = {}
        for inv in rows:
            owner = numbers.get(inv.order_id, "")
            try:
                out[inv.number] = self.submitter.again(s, inv, owner=owner,
                                                       about=numbers.get(inv.for_order_id or inv.order_id, owner),
                                                       at=at)
            except CommandError as exc:
                if not skip_unrenderable:
                    raise
                out[inv.number] = inv.submission
                inv.submission_note = str(exc)[:300]
        return out

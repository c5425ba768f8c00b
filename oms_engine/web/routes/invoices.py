"""Invoices and credit notes (read), as kept and rendered as the e-invoice a tax platform takes
(invoices/export.py); ``oms invoices show`` prints the same."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, Response
from pydantic import Field

from ..auth import READ, requires
from ..errors import json_response
from ..openapi import operation, query
from ..requests import oms
from ..schemas import Answer, Query, Text

bp = Blueprint("invoices", __name__)


class InvoiceQuery(Query):
    format: Annotated[Text | None, Field(description="the e-invoice format (default: config einvoice_format)")] = None


class InvoiceSubmission(Answer):
    state: str = Field(description="unsubmitted, pending, accepted or refused")
    official_no: str | None
    verification: str | None
    reason: str | None
    at: str | None


class InvoiceShown(Answer):
    invoice: dict[str, Any] = Field(description="as kept: number, kind, order, issued_at, currency, buyer, items, "
                                                "amount, tax, refers_to")
    format: str
    einvoice: dict[str, Any] | str = Field(description="rendered in the format")
    submission: InvoiceSubmission


@bp.get("/api/invoices/<number>")
@requires(READ)
@operation(query=InvoiceQuery, answers={200: InvoiceShown}, tags=["invoices"], refusals=(404, 409))
def show_invoice(number: str) -> Response:
    """An invoice or credit note, and its e-invoice (409: a format no plugin renders)."""
    return json_response(oms().invoices.einvoice(number, query(InvoiceQuery).format or None))

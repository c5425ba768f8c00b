"""Invoices and credit notes (read), as kept and rendered as the e-invoice a tax platform takes
(invoices/export.py); ``oms invoices show`` prints the same."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..auth import READ, requires
from ..errors import json_response
from ..requests import oms

bp = Blueprint("invoices", __name__)


@bp.get("/api/invoices/<number>")
@requires(READ)
def show_invoice(number: str) -> Response:
    """``format``: the e-invoice format (default: config einvoice_format)."""
    return json_response(oms().invoices.einvoice(number, request.args.get("format") or None))

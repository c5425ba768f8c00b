"""The built-in e-invoice format, ``oms-einvoice/1``: the JSON a tax platform takes (oms_engine/invoices/einvoice.py
describes it). It is the format invoices are kept in; other formats are plugins (docs/plugins.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oms_engine import hookimpl
from oms_engine.invoices.einvoice import FORMAT, einvoice


class OmsEInvoice:
    name = FORMAT

    def render(self, invoice: Mapping[str, Any]) -> Mapping[str, Any]:
        at = datetime.fromisoformat(str(invoice["issued_at"]).removesuffix("Z"))
        return einvoice(number=invoice["number"], kind=invoice["kind"], at=at, currency=invoice["currency"],
                        buyer=dict(invoice["buyer"]), items=[dict(it) for it in invoice["items"]],
                        amount=invoice["amount"], tax=invoice["tax"], refers_to=invoice.get("refers_to"))


@hookimpl(trylast=True)
def oms_register_einvoice_formats(register: Any, config: Any) -> None:
    register(OmsEInvoice())

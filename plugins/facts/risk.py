"""Risk facts for the blocking rules (rules/blocking.yaml).

The blacklist, the amount threshold for new customers and an incomplete
address are decided by rules over core facts (``customer.blacklisted``,
``customer.order_count``, ``order.payable``, ``ship_to.complete``). This
plugin adds the signals that need a little code: a parcel-locker or PO box
address, an implausible phone number, a throwaway e-mail domain, and an
unusually large quantity of one item. Computed in one pass over the batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from oms_engine import FactProvider, OrderView, hookimpl

_PO_BOX = re.compile(r"\b(p\.?\s*o\.?\s*box|post\s*office\s*box|postfach)\b", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,19}$")
DISPOSABLE_DOMAINS = frozenset({"mailinator.com", "guerrillamail.com", "10minutemail.com", "trashmail.com",
                                "yopmail.com", "tempmail.com"})
LARGE_QUANTITY = 20


def _risk(order: OrderView, email: str) -> dict[str, Any]:
    addr = order.ship_to
    domain = email.rsplit("@", 1)[-1].lower() if "@" in email else ""
    return {"risk": {
        "po_box": bool(_PO_BOX.search(f"{addr.line1} {addr.line2}")),
        "phone_valid": bool(_PHONE.match(addr.phone.strip())) if addr.phone else False,
        "disposable_email": domain in DISPOSABLE_DOMAINS,
        "max_line_quantity": max((ln.quantity for ln in order.lines), default=0),
        "large_quantity": any(ln.quantity > LARGE_QUANTITY for ln in order.lines),
    }}


def provide(orders: Sequence[OrderView], core: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o.number: _risk(o, str(core.get(o.number, {}).get("customer", {}).get("email", ""))) for o in orders}


RISK_FACTS = FactProvider(
    name="risk",
    fields={"risk.po_box": bool, "risk.phone_valid": bool, "risk.disposable_email": bool,
            "risk.max_line_quantity": int, "risk.large_quantity": bool},
    provide=provide,
)


@hookimpl(trylast=True)
def oms_register_fact_providers(register: Any) -> None:
    register(RISK_FACTS)

"""Personal data shown to someone who does not need it whole: masked so the owner recognises it and nobody
else learns it.

A name keeps its first character of each part, a phone its first three and
last two digits, an e-mail the first character of its local part and its
domain, an address its country, region and city (the street and postcode
go). Used wherever an order is shown to a party that does not need the
whole (the customer's tracking page, logs, incidents).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DIGIT = re.compile(r"\d")


def mask_name(name: str) -> str:
    parts = name.split()
    return " ".join(p[0] + "*" * min(len(p) - 1, 3) if len(p) > 1 else "*" for p in parts)


def mask_phone(phone: str) -> str:
    digits = _DIGIT.findall(phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 5) + "".join(digits[-2:])


def mask_email(email: str) -> str:
    local, at, domain = email.partition("@")
    if not at:
        return "*" * min(len(email), 8)
    return (local[:1] + "***") + "@" + domain


def mask_address(address: Mapping[str, Any]) -> dict[str, str]:
    """Where a parcel goes, no closer than the city: the recipient's name and phone masked."""
    return {"name": mask_name(str(address.get("name") or "")), "phone": mask_phone(str(address.get("phone") or "")),
            "country": str(address.get("country") or ""), "region": str(address.get("region") or ""),
            "city": str(address.get("city") or "")}

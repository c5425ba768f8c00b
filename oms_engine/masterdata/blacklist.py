"""The customer blacklist: a flag and its reason on the customer record, changed through the audited path.

A blacklisted customer's orders are what ``customer.blacklisted`` in the
blocking rules holds for review. Adding a customer not seen yet creates its
record (by reference, the details filled by its first order); every change is
a customer change row (orders/customers.py) saying who, when and why, and
the blacklist lists that.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..orders.customers import CustomerError, update_customer
from ..storage.db import Database
from ..storage.models import Customer, CustomerChange


class Blacklist:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def _set(self, ref: str, flag: bool, reason: str, actor: str) -> bool:
        ref = ref.strip()
        if not ref or len(ref) > 128:
            raise CustomerError("customer: a customer reference of 1 to 128 characters is needed")

        def run() -> bool:
            with self.db.session() as s:
                now_flagged = s.scalar(select(Customer.blacklisted).where(Customer.ref == ref))
                if now_flagged is None:
                    if not flag:
                        raise CustomerError(f"no customer '{ref}'")
                    s.add(Customer(ref=ref, name="", email="", phone="", level="regular", blacklisted=False,
                                   blacklist_reason="", created_at=self.clock.now()))
                    s.flush()
                elif now_flagged == flag:
                    return False   # already so: the reason on record stays
                changes = {"blacklisted": flag, "blacklist_reason": reason if flag else ""}
                return bool(update_customer(s, ref, changes, actor, reason, at=self.clock.now()))

        return self.db.run_retrying(run, what=f"blacklist {ref}")

    def add(self, ref: str, *, reason: str, actor: str) -> bool:
        """True when the customer was not blacklisted before."""
        return self._set(ref, True, reason, actor)

    def remove(self, ref: str, *, reason: str, actor: str) -> bool:
        return self._set(ref, False, reason, actor)

    def list(self, limit: int = 1000, *, after: str | None = None) -> list[dict[str, Any]]:
        """Blacklisted customers by ref; ``after``: the last ref of the page before."""
        with self.db.read() as s:
            return blacklisted(s, limit, after=after)


def blacklisted(s: Session, limit: int, *, after: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Customer).where(Customer.blacklisted.is_(True)).order_by(Customer.ref).limit(limit)
    if after is not None:
        stmt = stmt.where(Customer.ref > after)
    rows = list(s.scalars(stmt))
    out = []
    for c in rows:
        last = s.scalars(select(CustomerChange).where(CustomerChange.customer_id == c.id,
                                                      CustomerChange.field == "blacklisted")
                         .order_by(CustomerChange.id.desc()).limit(1)).first()
        out.append({"ref": c.ref, "name": c.name, "reason": c.blacklist_reason,
                    "since": last.at.isoformat() if last else None, "actor": last.actor if last else None})
    return out

"""Customer records: the OMS's own, changed only through an audited path.

A channel payload names its customer by ``ref`` and carries contact details
(name, e-mail, phone). Those details belong to that order (``Order.contact``,
its snapshot): a payload never changes an existing customer, or any shop could
rewrite who gets the notifications of every other shop's orders. A customer seen
for the first time is created from its first order's details (including the
level the channel gives). After that, :func:`update_customer` is the only way a
customer changes, and each changed field leaves a :class:`CustomerChange` row
saying from what to what, by whom and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import OmsError
from ..storage.driver import fetch
from ..storage.models import Customer, CustomerChange
from .canonical import CanonicalCustomer, Id32, MultiLine, SingleLine, Text64, Text200, shown
from .records import CUSTOMER_COLUMNS, CustomerRec

# The fields a person may change, each with the same bounds as the canonical order's (and the column's).
EDITABLE: dict[str, TypeAdapter[Any]] = {
    "name": TypeAdapter(Text200),
    "email": TypeAdapter(Text200),
    "phone": TypeAdapter(Text64),
    "level": TypeAdapter(Id32),
    "blacklisted": TypeAdapter(Annotated[bool, Field(strict=True)]),
    "blacklist_reason": TypeAdapter(Text200),
}
_ACTOR = TypeAdapter(Annotated[str, Field(strict=True, min_length=1, max_length=100), SingleLine])
_REASON = TypeAdapter(Annotated[str, Field(strict=True, min_length=1, max_length=2000), MultiLine])


class CustomerError(OmsError, ValueError):
    """A customer change the OMS refuses: unknown customer or field, a value out of bounds, no reason."""


def known_customers(s: Session, refs: Iterable[str]) -> dict[str, CustomerRec]:
    """The customers that exist of these refs, as records."""
    wanted = sorted(set(refs))
    out: dict[str, CustomerRec] = {}
    conn = s.connection()
    for i in range(0, len(wanted), 500):
        for row in fetch(conn, _BY_REF, {"refs": wanted[i:i + 500]}):
            rec = CustomerRec(*row)
            out[rec.ref] = rec
    return out


_BY_REF = (select(*(Customer.__table__.c[c] for c in CUSTOMER_COLUMNS))
           .where(Customer.__table__.c.ref.in_(bindparam("refs", expanding=True))))


def customers_for_orders(s: Session, details: Sequence[CanonicalCustomer], now: datetime,
                         known: dict[str, CustomerRec]) -> list[CustomerRec]:
    """The customer of each order; those not seen before are created from their first order's details.

    ``known`` caches a payload's customers by ref (and learns the new ones). An existing customer is
    returned as it is: the order keeps its own contact snapshot instead. New customers are inserted in
    one statement; one that a concurrent intake created first is taken as that intake made it.
    """
    new: dict[str, CanonicalCustomer] = {}
    for d in details:
        if d.ref not in known and d.ref not in new:
            new[d.ref] = d
    if new:
        rows = [{"ref": d.ref, "name": d.name, "email": d.email, "phone": d.phone, "level": d.level,
                 "blacklisted": False, "blacklist_reason": "", "created_at": now} for d in new.values()]
        dialect = s.get_bind().dialect.name
        insert_ = sqlite_insert if dialect == "sqlite" else pg_insert
        s.execute(insert_(Customer).on_conflict_do_nothing(index_elements=["ref"]), rows)
        known.update(known_customers(s, new))
    return [known[d.ref] for d in details]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def update_customer(s: Session, ref: str, changes: Mapping[str, Any], actor: str, reason: str, *,
                    at: datetime | None = None) -> list[CustomerChange]:
    """Change a customer's fields, one :class:`CustomerChange` row for each field whose value changes.

    All or nothing: every field and value is checked before anything changes. Locks the
    customer's row (``FOR UPDATE`` on PostgreSQL) so two concurrent changes are recorded
    one after the other, each with the value it really replaced. Returns the rows written
    (none when every value was already as asked).
    """
    try:
        actor = _ACTOR.validate_python(actor)
    except ValidationError:
        raise CustomerError("actor: who makes the change is required (1 to 100 characters)") from None
    try:
        reason = _REASON.validate_python(reason)
    except ValidationError:
        reason = ""
    if not reason.strip():
        raise CustomerError("reason: a customer change needs a reason (up to 2,000 characters, no control "
                            "characters but line breaks)")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise CustomerError(f"{unknown[0]}: not a customer field that can be changed "
                            f"(fields: {', '.join(EDITABLE)})")
    values: dict[str, Any] = {}
    for field, value in changes.items():
        try:
            values[field] = EDITABLE[field].validate_python(value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise CustomerError(f"{field}: {msg}") from None
    customer = s.scalars(select(Customer).where(Customer.ref == ref).with_for_update()).one_or_none()
    if customer is None:
        raise CustomerError(f"no customer {shown(ref)}")
    when = at if at is not None else utcnow()
    written: list[CustomerChange] = []
    for field, value in values.items():
        old = getattr(customer, field)
        if old == value:
            continue
        setattr(customer, field, value)
        row = CustomerChange(customer_id=customer.id, field=field, old_value=_text(old), new_value=_text(value),
                             actor=actor, reason=reason, at=when)
        s.add(row)
        written.append(row)
    s.flush()
    return written

"""Invoices and credit notes submitted to the tax platform, as e-invoices, through the outbox.

* Issuing (issuing.py) hands every invoice and credit note it is about to insert to the :class:`Submitter`
  the OMS lends its sessions (``Database.lend``): it renders the e-invoice in the format config
  ``einvoice_format`` names and queues one message (topic ``tax.einvoice``, kind ``tax``) for the connector
  config ``tax_connector`` names, in the transaction that inserts the invoice. It reads nothing: the message
  is one more row of the inserts the transaction makes anyway.
* The connector submits it under the invoice number as idempotency key (a platform takes a number once, so
  a retried submission never makes a second official invoice) and answers through a callback of kind
  ``einvoice``, which :func:`settle` applies: the platform's official number (``accepted``) or its reason
  (``refused``; the connector raises MessageRefused and the message is dead at once, with an incident).
* A message that fails (the platform down, slow, answering nonsense) is retried by the outbox, with
  backoff, then dead: the invoice stays ``pending`` meanwhile.

States: ``unsubmitted`` (issued before submission existed, with no tax connector, or not renderable in the
format) -> ``pending`` (queued) -> ``accepted`` | ``refused``. ``oms invoices submit`` queues an unsubmitted
or refused one (again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..errors import CommandError
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..orders.incidents import record_incident
from ..plugin.faults import PluginFault
from ..storage.db import drain, on_drain, restored_on_rollback
from ..storage.driver import execute_many
from ..storage.models import Invoice
from .einvoice import FORMAT, format_fields

if TYPE_CHECKING:
    from ..plugin.registry import PluginRegistry

# Where a session finds the OMS's submitter (Database.lend): issuing runs deep inside payments, cancellations
# and after-sales, whose callers have no reason to carry it.
SUBMITTER = "oms_einvoice_submitter"
STAGE = "einvoice"


class Submission(StrEnum):
    UNSUBMITTED = "unsubmitted"
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True)
class _Owner:
    """The order that paid, as the outbox names a message's order."""

    id: int
    number: str


class Submitter:
    def __init__(self, *, outbox: OutboxWriter, connector: str, plugins: PluginRegistry, fmt: str) -> None:
        """``connector``: the tax connector ("" : invoices are not submitted); ``fmt``: the e-invoice format."""
        self.outbox, self.connector, self.plugins, self.fmt = outbox, connector, plugins, fmt

    def issued(self, s: Session, row: Mapping[str, Any], *, owner: str, about: str) -> dict[str, Any]:
        """An invoice or credit note about to be inserted (``row``: its column values): its e-invoice queued for
        the tax platform in this transaction; the submission columns to insert with it. ``owner``: the number of
        the order that paid (``row["order_id"]``); ``about``: the order it is for (a child's credit note: the
        child). The same keys always, so that the invoices of a batch go in one INSERT."""
        at = row["created_at"]
        if not self.connector:
            return {"submission": Submission.UNSUBMITTED.value, "submission_note": "", "submission_at": None}
        try:
            payload = self.payload(row, owner=owner, about=about)
        except PluginFault as fault:
            # The money is right whatever the format thinks of it: the invoice is issued all the same, and a
            # person sees why it was not submitted.
            record_incident(s, order_id=row["order_id"], stage=STAGE, error=fault, at=at,
                            action=f"invoice {row['number']} issued, not submitted: `oms invoices submit "
                                   f"{row['number']}` once its e-invoice can be rendered")
            return {"submission": Submission.UNSUBMITTED.value, "submission_note": f"not rendered: {fault}"[:300],
                    "submission_at": at}
        self.outbox.enqueue(s, _Owner(int(row["order_id"]), owner), Kind.TAX, self.connector, Topic.TAX_EINVOICE,
                            payload)
        return {"submission": Submission.PENDING.value, "submission_note": "", "submission_at": at}

    def payload(self, row: Mapping[str, Any], *, owner: str, about: str) -> dict[str, Any]:
        """The message for the tax connector: the e-invoice in the configured format and the invoice number,
        which is the submission's idempotency key. PluginFault when the format fails on it."""
        if self.fmt == FORMAT and isinstance(row["document"], Mapping):
            # The built-in format is the one invoices are kept in: the document is its rendering already.
            rendered: Any = row["document"]
        else:
            fields = format_fields(number=row["number"], kind=row["kind"], order=about,
                                   created_at=row["created_at"], currency=row["currency"], document=row["document"],
                                   lines=row["lines"], amount=row["amount"], tax=row["tax"],
                                   refers_to=row["refers_to"])
            rendered = self.plugins.render_einvoice(self.fmt, fields)
        return {"invoice": row["number"], "kind": row["kind"], "order_number": owner, "format": self.fmt,
                "einvoice": dict(rendered) if isinstance(rendered, Mapping) else rendered}

    def again(self, s: Session, inv: Invoice, *, owner: str, about: str, at: datetime) -> str:
        """Queue invoice ``inv`` (unsubmitted or refused, locked) for the platform, rendered afresh; its state.
        CommandError when it is pending or accepted, or cannot be rendered."""
        if not self.connector:
            raise CommandError("no tax connector is set (config tax_connector): invoices are not submitted")
        if inv.submission in (Submission.PENDING.value, Submission.ACCEPTED.value):
            raise CommandError(f"invoice {inv.number} is {inv.submission}: only an unsubmitted or refused one is "
                               "submitted")
        row = {c: getattr(inv, c) for c in ("number", "kind", "order_id", "created_at", "currency", "document",
                                            "lines", "amount", "tax", "refers_to")}
        try:
            payload = self.payload(row, owner=owner, about=about)
        except PluginFault as fault:
            raise CommandError(f"invoice {inv.number} cannot be rendered as {self.fmt}: {fault}") from None
        self.outbox.enqueue(s, _Owner(inv.order_id, owner), Kind.TAX, self.connector, Topic.TAX_EINVOICE, payload)
        s.execute(update(Invoice).where(Invoice.id == inv.id).values(
            submission=Submission.PENDING.value, submission_note="", submission_at=at),
            execution_options={"synchronize_session": False})
        return Submission.PENDING.value


# The platform's answers are applied a batch at a time (pipeline/inbox.py): how the batch's invoices stand is read
# in one query (:func:`read_states`), and what the answers change is written with one executemany when the
# session drains, not one UPDATE per invoice.
_KNOWN = "oms_einvoice_known"       # session info: invoice number -> (state, official number), as read or set
_QUEUED = "oms_einvoice_queued"     # session info: invoice number -> the columns an answer sets
_TABLE = Invoice.__table__
# Never over an accepted invoice: an answer read against a state another transaction has since changed still
# cannot undo an official invoice.
_SETTLE = (update(_TABLE).where(_TABLE.c.number == bindparam("_number"),
                                _TABLE.c.submission != Submission.ACCEPTED.value)
           .values(submission=bindparam("submission"), official_no=bindparam("official_no"),
                   verification=bindparam("verification"), submission_note=bindparam("submission_note"),
                   submission_at=bindparam("submission_at")))


def read_states(s: Session, numbers: Iterable[str]) -> None:
    """Read how these invoices stand, in a query per 500, for the answers about to be applied (:func:`settle`)."""
    known = _known(s)
    wanted = sorted({n for n in numbers if n and n not in known})
    for i in range(0, len(wanted), 500):
        for number, state, official in s.execute(select(Invoice.number, Invoice.submission, Invoice.official_no)
                                                 .where(Invoice.number.in_(wanted[i:i + 500]))):
            known[number] = (state, official)


def settle(s: Session, order_number: str, status: str, data: Any, at: datetime) -> str:
    """The tax platform's answer about an invoice of order ``order_number`` (a callback of kind ``einvoice``);
    the outcome, in words. An accepted invoice stays accepted: a later answer about it changes nothing."""
    data = data if isinstance(data, Mapping) else {}
    number = str(data.get("invoice") or "")
    if not number.startswith(f"{order_number}-"):
        return f"rejected: order {order_number} has no invoice {number or '(none named)'}"
    if status not in (Submission.ACCEPTED.value, Submission.REFUSED.value):
        return (f"rejected: unknown e-invoice status '{status}' (known: {Submission.ACCEPTED.value}, "
                f"{Submission.REFUSED.value})")
    known = _known(s)
    if number not in known:
        drain(s, Invoice)
        read_states(s, [number])    # an answer applied on its own, not read with a batch
    if number not in known:
        return f"rejected: no invoice {number}"
    state, official = known[number]
    if state == Submission.ACCEPTED.value:
        return f"ignored: invoice {number} was accepted already, as {official}"
    if status == Submission.ACCEPTED.value:
        official = str(data.get("official_no") or "")[:64]
        if not official:
            return f"rejected: invoice {number} accepted without the platform's official number"
        _queue(s, number, status, official, str(data.get("verification") or "")[:300] or None, "", at)
        return f"{number} accepted by the tax platform as {official}"
    reason = str(data.get("reason") or "")[:300] or "no reason given"
    _queue(s, number, status, None, None, reason, at)
    return f"{number} refused by the tax platform: {reason}"


def _known(s: Session) -> dict[str, tuple[str, str | None]]:
    known: dict[str, tuple[str, str | None]] | None = s.info.get(_KNOWN)
    if known is None:
        known = s.info[_KNOWN] = {}
        restored_on_rollback(s, _KNOWN)
    return known


def _queue(s: Session, number: str, state: str, official: str | None, verification: str | None, note: str,
           at: datetime) -> None:
    _known(s)[number] = (state, official)
    queued: dict[str, dict[str, Any]] | None = s.info.get(_QUEUED)
    if queued is None:
        queued = s.info[_QUEUED] = {}
        restored_on_rollback(s, _QUEUED)
        on_drain(s, _write)
    queued[number] = {"_number": number, "submission": state, "official_no": official,
                      "verification": verification, "submission_note": note, "submission_at": at}


def _write(s: Session) -> None:
    queued: dict[str, dict[str, Any]] | None = s.info.get(_QUEUED)
    if queued:
        s.info[_QUEUED] = {}
        execute_many(s.connection(), _SETTLE, list(queued.values()))


def submission_of(inv: Any) -> dict[str, Any]:
    """How an invoice stands with the tax platform, as shown (``oms invoices show``, ``oms order show``)."""
    return {"state": inv.submission, "official_no": inv.official_no, "verification": inv.verification,
            "reason": inv.submission_note or None,
            "at": inv.submission_at.isoformat() + "Z" if inv.submission_at else None}

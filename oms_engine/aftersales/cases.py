"""An after-sales case's states, events and what each edge does: a table on the generic machine
(statemachine.py), as the order's is.

::

    requested --review--> under_review --approve--> approved --await_return--> awaiting_return
        |  \\--approve--> approved          \\--deny--> denied --appeal--> under_review (once)
        \\--deny--> denied
    approved --refund--> refund_pending --refunded--> refunded                       (refund only)
    awaiting_return --receive--> return_received --refund--> refund_pending ...      (return and refund)
    return_received --ship_replacement--> exchange_shipping --replacement_delivered--> done   (exchange)
    exchange_shipping --refund--> refund_pending ...      (the replacement could not be sent: money back)
    requested, under_review, approved, awaiting_return --cancel--> cancelled

Effects: awaiting a return sends the warehouse a customer-return document
(RMA) for the case's units, and for an exchange creates the replacement
order, held until the goods are back; the goods back release it; a refund
owes the customer what they paid for the units, back to their payments
(payments/ledger.py); the replacement delivered reissues the invoice when it
names other products; cancelling a case withdraws its document and cancels
its replacement.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from ..statemachine import Effect, Table, Transition, effect


class CaseKind(StrEnum):
    REFUND_ONLY = "refund_only"          # the goods stay with the customer (lost, damaged, short)
    RETURN_REFUND = "return_refund"      # the goods come back, then the money
    EXCHANGE = "exchange"                # the goods come back, others go out


class CaseState(StrEnum):
    REQUESTED = "requested"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    DENIED = "denied"
    AWAITING_RETURN = "awaiting_return"
    RETURN_RECEIVED = "return_received"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
    EXCHANGE_SHIPPING = "exchange_shipping"
    DONE = "done"
    CANCELLED = "cancelled"


class CaseEvent(StrEnum):
    REVIEW = "review"                    # the rules leave it to a person
    APPROVE = "approve"
    DENY = "deny"
    APPEAL = "appeal"                    # the customer disputes a denial: a person looks again
    AWAIT_RETURN = "await_return"
    RECEIVE = "receive"                  # the warehouse received the goods back
    REFUND = "refund"
    REFUNDED = "refunded"                # the payment provider paid every refund of the case back
    SHIP_REPLACEMENT = "ship_replacement"    # the goods are back: the replacement goes out
    REPLACEMENT_DELIVERED = "replacement_delivered"
    CANCEL = "cancel"                    # the customer withdraws it


C, V = CaseState, CaseEvent
OPEN: frozenset[CaseState] = frozenset({C.REQUESTED, C.UNDER_REVIEW, C.APPROVED, C.AWAITING_RETURN})
# A case that still claims its units (a denied one may be appealed; a cancelled one gave them back).
CLAIMING: frozenset[str] = frozenset(s.value for s in CaseState if s is not C.CANCELLED)
APPEALS = 1

EDGES: dict[tuple[CaseState, CaseEvent], CaseState] = {
    (C.REQUESTED, V.REVIEW): C.UNDER_REVIEW,
    (C.REQUESTED, V.APPROVE): C.APPROVED,
    (C.REQUESTED, V.DENY): C.DENIED,
    (C.UNDER_REVIEW, V.APPROVE): C.APPROVED,
    (C.UNDER_REVIEW, V.DENY): C.DENIED,
    (C.DENIED, V.APPEAL): C.UNDER_REVIEW,
    (C.APPROVED, V.AWAIT_RETURN): C.AWAITING_RETURN,
    (C.APPROVED, V.REFUND): C.REFUND_PENDING,
    (C.AWAITING_RETURN, V.RECEIVE): C.RETURN_RECEIVED,
    (C.RETURN_RECEIVED, V.REFUND): C.REFUND_PENDING,
    (C.REFUND_PENDING, V.REFUNDED): C.REFUNDED,
    (C.RETURN_RECEIVED, V.SHIP_REPLACEMENT): C.EXCHANGE_SHIPPING,
    (C.EXCHANGE_SHIPPING, V.REPLACEMENT_DELIVERED): C.DONE,
    (C.EXCHANGE_SHIPPING, V.REFUND): C.REFUND_PENDING,
    **{(s, V.CANCEL): C.CANCELLED for s in OPEN},
}


def _guard_appeal(case: Any) -> str | None:
    return f"a denial is appealed at most {APPEALS} time(s)" if case.appeals >= APPEALS else None


def _guard_return(case: Any) -> str | None:
    return "a refund-only case keeps the goods with the customer" if case.kind == CaseKind.REFUND_ONLY else None


def _guard_refund(case: Any) -> str | None:
    if case.status == C.APPROVED and case.kind != CaseKind.REFUND_ONLY:
        return "the goods come back first (await_return)"
    return None


def _guard_replacement(case: Any) -> str | None:
    return None if case.kind == CaseKind.EXCHANGE else "only an exchange sends a replacement"


GUARDS = {V.APPEAL: _guard_appeal, V.AWAIT_RETURN: _guard_return, V.REFUND: _guard_refund,
          V.SHIP_REPLACEMENT: _guard_replacement}


def _send_return_document(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    m.send_return_document(s, t.subject, t)


def _withdraw_return_document(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    m.withdraw_return_document(s, t.subject, t)


def _owe_refund(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    m.owe_refund(s, t.subject, t)


def _count_appeal(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    t.subject.appeals += 1


def _make_replacement(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    if t.subject.kind == CaseKind.EXCHANGE:
        m.make_replacement(s, t.subject, t)


def _release_replacement(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    m.release_replacement(s, t.subject, t)


def _cancel_replacement(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    if t.subject.replacement:
        m.cancel_replacement(s, t.subject, t)


def _reissue_invoice(m: Any, s: Session, t: Transition[CaseState, CaseEvent]) -> None:
    m.reissue_invoice(s, t.subject, t)


EFFECTS: tuple[Effect, ...] = (
    effect(_send_return_document, on=[V.AWAIT_RETURN]),
    effect(_make_replacement, on=[V.AWAIT_RETURN]),
    effect(_withdraw_return_document, on=[V.CANCEL]),
    effect(_cancel_replacement, on=[V.CANCEL]),
    effect(_owe_refund, on=[V.REFUND]),
    effect(_count_appeal, on=[V.APPEAL]),
    effect(_release_replacement, on=[V.SHIP_REPLACEMENT]),
    effect(_reissue_invoice, on=[V.REPLACEMENT_DELIVERED]),
)

CASE: Table[CaseState, CaseEvent] = Table("case", CaseState, CaseEvent, EDGES, GUARDS, EFFECTS)

"""Gift cards and points: stored value the customer pays with, kept in accounts with balances (the
``wallet_accounts`` and their ``wallet_movements``).

* A gift card is an account by its code, points are an account by the
  customer's reference, each in one currency's minor units (a point is worth
  what the channel says it took off).
* The OMS keeps the balance of the accounts it holds: cards it issued and
  points it granted (``oms wallets credit``). An order that pays with one of
  them moves its balance (a ``redeem`` movement naming the payment); one that
  redeems more than the account holds is held for a person, with the balance
  below zero showing by how much. A card or points the OMS does not hold are
  the channel's: the payment is recorded, the channel keeps the balance, and
  a refund of it goes to the payment provider like any other.
* A refund back to a payment that moved a balance credits it back at once
  (a ``refund`` movement); nothing has to be asked of a provider.

The balance on the account row is the sum of its movements, updated in the
same statement that writes the movement's ``balance_after``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import CommandError
from ..money import format_minor
from ..storage.db import append, drain
from ..storage.models import WalletAccount, WalletMovement
from .methods import Method

KINDS = (Method.GIFT_CARD.value, Method.POINTS.value)


class Move(StrEnum):
    ISSUE = "issue"        # a card sold or given, points granted
    REDEEM = "redeem"      # an order paid with it
    REFUND = "refund"      # a refund credited back
    ADJUST = "adjust"      # a person's correction


@dataclass(frozen=True)
class Redeemed:
    """What paying with an account did: its balance after, and why the order waits for a person (or "")."""

    balance: int
    short: str


def provider_ref(kind: str, holder: str) -> str:
    """How a payment from an account names it: ``gift_card:CODE``, ``points:CUSTOMER``."""
    return f"{kind}:{holder}"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise CommandError(f"unknown kind of account '{kind}' (known: {', '.join(KINDS)})")


def _account(s: Session, kind: str, holder: str, currency: str, *, lock: bool = False) -> WalletAccount | None:
    stmt = select(WalletAccount).where(WalletAccount.kind == kind, WalletAccount.holder == holder,
                                       WalletAccount.currency == currency)
    return s.scalars(stmt.with_for_update() if lock else stmt).first()


def _move(s: Session, account: WalletAccount, move: Move, amount: int, at: datetime, actor: str, note: str,
          payment: str | None = None) -> int:
    # One statement moves the balance, so two sessions moving one account never lose an update.
    balance = s.execute(update(WalletAccount).where(WalletAccount.id == account.id)
                        .values(balance=WalletAccount.balance + amount, updated_at=at)
                        .returning(WalletAccount.balance), execution_options={"synchronize_session": False}
                        ).scalar_one()
    append(s, WalletMovement, account_id=account.id, at=at, kind=move.value, amount=amount, balance_after=balance,
           payment=payment, actor=actor[:100], note=note[:300])
    return int(balance)


def credit(s: Session, kind: str, holder: str, currency: str, amount: int, at: datetime, *, actor: str,
           note: str = "", adjust: bool = False) -> int:
    """Put ``amount`` on an account (issue a card, grant points; ``adjust``: a person's correction, which may be
    negative), opening it the first time; its balance after."""
    _check_kind(kind)
    if not holder or len(holder) > 128:
        raise CommandError("an account is named by a card code or a customer reference of 1 to 128 characters")
    if amount == 0 or (amount < 0 and not adjust):
        raise CommandError(f"an amount put on an account is more than 0, got {amount}")
    account = _account(s, kind, holder, currency, lock=True)
    if account is None:
        account = WalletAccount(kind=kind, holder=holder, currency=currency, balance=0, created_at=at,
                                updated_at=at)
        s.add(account)
        s.flush()
    return _move(s, account, Move.ADJUST if adjust else Move.ISSUE, amount, at, actor, note)


def redeem(s: Session, kind: str, holder: str, currency: str, amount: int, payment: str, at: datetime, *,
           actor: str, order_number: str) -> Redeemed | None:
    """An order pays ``amount`` with an account: its balance moves when the OMS holds it (None: it does not,
    the channel keeps that balance)."""
    account = _account(s, kind, holder, currency, lock=True)
    if account is None:
        return None
    after = _move(s, account, Move.REDEEM, -amount, at, actor, f"order {order_number}", payment)
    short = ""
    if after < 0:
        name = "gift card" if kind == Method.GIFT_CARD else "points of customer"
        short = (f"{name} {holder} held {format_minor(after + amount, currency)}, the order redeems "
                 f"{format_minor(amount, currency)}")
    return Redeemed(after, short)


def redeemed_from(s: Session, payments: Sequence[str]) -> dict[str, int]:
    """Of these payments, those that moved the balance of an account the OMS holds: payment -> account id."""
    if not payments:
        return {}
    drain(s)
    return {p: a for p, a in s.execute(select(WalletMovement.payment, WalletMovement.account_id).where(
        WalletMovement.payment.in_(list(payments)), WalletMovement.kind == Move.REDEEM.value))}


def credit_back(s: Session, account_id: int, payment: str, refund: str, amount: int, at: datetime, *,
                actor: str) -> int:
    """Credit a refund of ``payment`` back to the account it was redeemed from; the balance after."""
    account = s.get(WalletAccount, account_id, with_for_update=True)
    assert account is not None
    return _move(s, account, Move.REFUND, amount, at, actor, f"refund {refund} of {payment}", refund)


def account(s: Session, kind: str, holder: str, currency: str | None = None) -> dict[str, Any]:
    """An account with its movements, oldest first (``oms wallets show``)."""
    _check_kind(kind)
    stmt = select(WalletAccount).where(WalletAccount.kind == kind, WalletAccount.holder == holder)
    rows = s.scalars(stmt.where(WalletAccount.currency == currency) if currency else stmt).all()
    if not rows:
        raise CommandError(f"no {kind.replace('_', ' ')} account '{holder}'")
    if len(rows) > 1:
        raise CommandError(f"{kind.replace('_', ' ')} account '{holder}' is kept in "
                           f"{', '.join(r.currency for r in rows)}: name the currency")
    a = rows[0]
    moves = s.scalars(select(WalletMovement).where(WalletMovement.account_id == a.id).order_by(WalletMovement.id))
    return {"kind": a.kind, "holder": a.holder, "currency": a.currency, "balance": a.balance,
            "balance_text": format_minor(a.balance, a.currency),
            "movements": [{"at": m.at.isoformat() + "Z", "kind": m.kind, "amount": m.amount,
                           "balance_after": m.balance_after, "payment": m.payment, "actor": m.actor,
                           "note": m.note} for m in moves]}

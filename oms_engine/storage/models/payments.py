"""Payments: every payment and refund of an order, each with its serial number and the log of its states."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Payment(Base):
    """One payment the customer made, or one refund back to a payment's method (payments/ledger.py).

    Payments belong to the order the customer paid: a parent order, never a child of a split. A refund
    names the payment it goes back to and the order (the parent or one of its children) it is for.
    """

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)          # <order number>-P01, -R01 ...
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(8))                          # payment | refund
    method: Mapped[str] = mapped_column(String(16))                       # card, wallet, gift_card, points, cod...
    method_detail: Mapped[str] = mapped_column(String(64), default="")    # as the channel or provider named it
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The provider's transaction id of a payment (its serial number there); a refund's, once it has one.
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    # A refund: the serial of the payment it goes back to.
    refund_of: Mapped[str | None] = mapped_column(ForeignKey("payments.serial"), nullable=True)
    for_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    # A refund an after-sales case owes (aftersales/): the case's number.
    case_number: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (
        # The same payment notice twice is one payment.
        UniqueConstraint("order_id", "kind", "provider_ref", name="uq_payment_provider_ref"),
        CheckConstraint("amount > 0", name="ck_payment_amount"),
        Index("ix_payments_order", "order_id", "id"),
        Index("ix_payments_case", "case_number"),
    )


class PaymentEvent(Base):
    """A payment's or refund's change of state: who, when, from what to what, and why."""

    __tablename__ = "payment_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # By serial, so a payment and its first state are written together without asking for its id.
    payment: Mapped[str] = mapped_column(ForeignKey("payments.serial"))
    at: Mapped[datetime] = mapped_column(DateTime)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(String(300), default="")
    __table_args__ = (Index("ix_payment_events_payment", "payment", "id"),)


class WalletAccount(Base):
    """A stored-value account the OMS keeps the balance of (payments/wallets.py): a gift card by its code, or a
    customer's points by the customer's reference, in one currency's minor units."""

    __tablename__ = "wallet_accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))                         # gift_card | points
    holder: Mapped[str] = mapped_column(String(128))                      # the card's code, the customer's ref
    currency: Mapped[str] = mapped_column(String(3))
    # The sum of its movements, kept so a redemption reads one row. It may go below zero: a channel redeemed
    # more than the account held, and the order is held until a person settles it.
    balance: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("kind", "holder", "currency", name="uq_wallet_account"),)


class WalletMovement(Base):
    """A change of a wallet account's balance: issued or granted, redeemed by a payment, credited back by a
    refund, adjusted by a person."""

    __tablename__ = "wallet_movements"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"))
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(16))                         # issue | redeem | refund | adjust
    amount: Mapped[int] = mapped_column(BigInteger)                       # signed: + into the account
    balance_after: Mapped[int] = mapped_column(BigInteger)
    payment: Mapped[str | None] = mapped_column(ForeignKey("payments.serial"), nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(String(300), default="")
    __table_args__ = (CheckConstraint("amount <> 0", name="ck_wallet_movement_amount"),
                      Index("ix_wallet_movements_account", "account_id", "id"))

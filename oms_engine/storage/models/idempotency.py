"""The admin API's idempotency keys: the first answer to a POST, kept for the retries that carry its key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class IdempotentRequest(Base):
    """One ``Idempotency-Key`` of one caller: the request it named and, once answered, the answer."""

    __tablename__ = "idempotent_requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Whose key: a digest of the caller's credentials, so two callers' keys never meet.
    caller: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(2000))
    request_hash: Mapped[str] = mapped_column(String(64))   # sha256 of method, path, query and body
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: still being answered
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("caller", "key", name="uq_idempotent_request_key"),
        Index("ix_idempotent_requests_created", "created_at"),
    )

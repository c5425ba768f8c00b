"""Who may call the admin API, and what each caller changed: API tokens (only their hash) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class ApiToken(Base):
    """A bearer token made by ``oms tokens create`` or ``POST /api/tokens`` (oms_engine/web/tokens.py).

    The token itself is shown once and never stored: ``token_hash`` is the hex sha256 of it, which is all
    a request's token is looked up by, and ``prefix`` its first characters, to recognise it in a list.
    """

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The admin's label; also the last part of the actor its changes record (api:<role>:<name>).
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    # Written at most once a minute per token, not on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    __table_args__ = (
        # A name is unique among the tokens not revoked: a revoked token's name may be given again.
        Index("ux_api_tokens_live_name", "name", unique=True, sqlite_where=text("revoked_at IS NULL"),
              postgresql_where=text("revoked_at IS NULL")),
    )


class AuditEntry(Base):
    """One change asked of the admin API by an authenticated caller, answered or refused (oms_engine/web/audit.py)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # "POST /api/orders/{number}/release": the route, not the path, so that one kind of change is one action.
    action: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(200), default="")   # the order, case, token... of the path
    request: Mapped[Any | None] = mapped_column(JSON, nullable=True)   # the body, secrets masked, capped
    status: Mapped[int] = mapped_column(Integer)
    before: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    after: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    request_id: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_log_actor", "actor", "id"),
        Index("ix_audit_log_target", "target", "id"),
        Index("ix_audit_log_at", "at"),
    )

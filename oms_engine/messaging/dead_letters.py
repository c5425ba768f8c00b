"""Dead letters: outbox messages given up after RETRY_LIMIT attempts, listed and sent again on request.

A dead message keeps its last error. Requeuing it makes it pending again,
due now, with its attempts counted from zero, and records who asked; it is
the same message (the same id), so a receiver that already took it (a WMS
that answered after the last timeout, say) recognises it and does not act
twice: every connector and sender is idempotent on the message id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..clock import Clock
from ..errors import OmsError
from ..storage.db import Database
from ..storage.models import OutboxMessage
from .outbox import Status


class RequeueRefused(OmsError):
    pass


def message_dict(m: OutboxMessage) -> dict[str, Any]:
    return {"id": m.id, "order_number": m.order_number, "kind": m.kind, "target": m.target, "topic": m.topic,
            "status": m.status, "attempts": m.attempts, "last_error": m.last_error,
            "created_at": m.created_at.isoformat(), "available_at": m.available_at.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None}


class DeadLetters:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def list(self, *, target: str | None = None, limit: int = 100, before_id: int | None = None
             ) -> list[dict[str, Any]]:
        """Dead messages, newest first."""
        stmt = select(OutboxMessage).where(OutboxMessage.status == Status.DEAD.value)
        if target:
            stmt = stmt.where(OutboxMessage.target == target)
        if before_id:
            stmt = stmt.where(OutboxMessage.id < before_id)
        with self.db.read() as s:
            return [message_dict(m) for m in s.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit))]

    def requeue(self, message_id: int, *, actor: str) -> dict[str, Any]:
        """Send a dead message again (from its first attempt); RequeueRefused when it is not dead."""
        def run() -> dict[str, Any]:
            with self.db.session() as s:
                m = s.scalars(select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()).first()
                if m is None:
                    raise RequeueRefused(f"no outbox message {message_id}")
                if m.status != Status.DEAD.value:
                    raise RequeueRefused(f"outbox message {message_id} is {m.status}, not dead: only a dead "
                                         "message is sent again by hand")
                m.status, m.attempts, m.available_at = Status.PENDING.value, 0, self.clock.now()
                m.last_error = f"requeued by {actor} after: {m.last_error}"[:2000]
                s.flush()
                return message_dict(m)

        return self.db.run_retrying(run, what=f"requeue of outbox message {message_id}")

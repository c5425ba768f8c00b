"""The audit log over HTTP (admin): every change asked of the API, newest first, a page at a time.

``GET /api/audit?actor=&action=&target=&since=&until=&limit=&cursor=`` answers ``{"entries": [...], "next":
<the cursor of the next page, or null>}``. oms_engine/web/audit.py writes them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from pydantic import Field
from sqlalchemy import select

from ...storage.models import AuditEntry
from ..auth import ADMIN, requires
from ..errors import json_response
from ..openapi import operation, query
from ..requests import oms
from ..schemas import Answer, DateRangeQuery, Text, cursor_id, encode_cursor

bp = Blueprint("audit", __name__)



class AuditQuery(DateRangeQuery):
    actor: Text | None = Field(None, description="api:<role>:<token name or digest>, or cli:...")
    action: Text | None = Field(None, description='the route, e.g. "POST /api/orders/{number}/release"')
    target: Text | None = Field(None, description="what it was done to: an order number, a case, a token ...")


class AuditEntryOut(Answer):
    id: int
    at: str
    actor: str
    role: str
    action: str
    target: str | None
    status: int
    request_id: str | None


class AuditPage(Answer):
    entries: list[AuditEntryOut]
    next: str | None


def _entry(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "role": e.role, "action": e.action,
            "target": e.target, "status": e.status, "request": e.request, "before": e.before, "after": e.after,
            "request_id": e.request_id}


@bp.get("/api/audit")
@requires(ADMIN)
@operation(query=AuditQuery, answers={200: AuditPage}, tags=["audit"])
def audit_log() -> Response:
    """Every change asked of the API (who, what, when, before and after), newest first."""
    q = query(AuditQuery)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(q.limit + 1)
    for value, column in ((q.actor, AuditEntry.actor), (q.action, AuditEntry.action), (q.target, AuditEntry.target)):
        if value:
            stmt = stmt.where(column == value)
    before_id = cursor_id(q.cursor)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    since, until = q.since, q.until
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    with oms().db.read() as s:
        rows = [_entry(e) for e in s.scalars(stmt)]
    more = len(rows) > q.limit
    return json_response({"entries": rows[:q.limit], "next": encode_cursor(rows[q.limit - 1]["id"]) if more else None})

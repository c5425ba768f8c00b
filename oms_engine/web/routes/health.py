"""``GET /health``: is the database reachable? Anyone may ask.

It runs outside the app's one-request-at-a-time lock (``create_app``), so it
answers while a long request runs: keep it to this one read. An unreachable
database is a 503 problem (``urn:oms:problem:unavailable``), as every error of
the API is.
"""

from __future__ import annotations

import logging
from typing import Literal

from flask import Blueprint, Response

from ..errors import json_response, problem
from ..openapi import operation
from ..requests import oms
from ..schemas import Answer

log = logging.getLogger("oms.api")
bp = Blueprint("health", __name__)


class Health(Answer):
    status: Literal["ok"]


@bp.get("/health")
@operation(answers={200: Health}, tags=["operations"], public=True, refusals=(503,))
def health() -> Response:
    """Is the database reachable? 503 when it is not."""
    try:
        # A raw DBAPI connection: a SQLAlchemy transaction would start with
        # BEGIN IMMEDIATE on SQLite and make the health check wait for writers.
        conn = oms().db.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM orders WHERE 1 = 0")
            cur.fetchall()
            cur.close()
        finally:
            conn.close()
    except Exception:
        log.exception("health check: the database is not reachable")
        return problem(503, "the database is not reachable")
    return json_response({"status": "ok"})

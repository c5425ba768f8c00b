"""``GET /health``: is the database reachable? Anyone may ask.

It runs outside the app's one-request-at-a-time lock (``create_app``), so it
answers while a long request runs: keep it to this one read.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response

from ..errors import json_response
from ..requests import oms

log = logging.getLogger("oms.api")
bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
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
        return json_response({"status": "unavailable", "error": "the database is not reachable"}, 503)
    return json_response({"status": "ok"})

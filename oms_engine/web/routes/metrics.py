"""``GET /metrics`` for Prometheus: the figures of :mod:`oms_engine.web.metrics`, for a viewer's token.

Prometheus sends the token as ``authorization: {type: Bearer, credentials: ...}`` in its scrape config
(docs/operations.md); the figures say how much business the shop does, so they are not public.
"""

from __future__ import annotations

from flask import Blueprint, Response

from ..auth import READ, requires
from ..metrics import CONTENT_TYPE, exposition
from ..openapi import operation
from ..requests import oms

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@requires(READ)
@operation(answers={200: None}, tags=["operations"])
def metrics() -> Response:
    """The OMS's figures in Prometheus's text format."""
    return Response(exposition(oms()), content_type=CONTENT_TYPE)

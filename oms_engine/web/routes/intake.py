"""What other systems send: channel webhooks (signed) and warehouse / carrier callbacks (integration token)."""

from __future__ import annotations

import logging
import os
import re

from flask import Blueprint, Response, request

from ..auth import CALLBACK, actor, requires
from ..errors import ApiError, json_response
from ..requests import body_json, oms

WEBHOOK_SECRET_PREFIX = "OMS_WEBHOOK_SECRET_"
_SIGNATURE_CHALLENGE = {"WWW-Authenticate": 'Signature realm="oms-webhooks"'}

log = logging.getLogger("oms.api")
bp = Blueprint("intake", __name__)


@bp.post("/api/callbacks/<source>")
@requires(CALLBACK)
def callback(source: str) -> Response:
    app = oms()
    if source not in app.plugins.connectors:
        raise ApiError(404, f"unknown callback source '{source}' (known: {', '.join(app.plugins.connectors.names())})")
    payload = body_json()
    with app.db.session() as s:
        inbox_id = app.callbacks.receive(s, source, payload)
    # The inbox row has no actor column: the log is where the sender is recorded.
    log.info("callback %s from %s stored as inbox %s by %s", source, request.remote_addr, inbox_id, actor())
    return json_response({"inbox_id": inbox_id}, 202)


def webhook_secret_env(channel: str) -> str:
    return WEBHOOK_SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", channel.upper())


@bp.post("/api/webhooks/<channel>")
def webhook(channel: str) -> Response:
    app = oms()
    if channel not in app.plugins.channels:
        raise ApiError(404, f"unknown channel '{channel}'")
    # Read per request so a secret set (or rotated) in the environment needs no new app.
    secret = os.environ.get(webhook_secret_env(channel), "")
    if not secret:
        raise ApiError(401, f"webhooks for channel '{channel}' are disabled: no signing secret is configured",
                       headers=_SIGNATURE_CHALLENGE)
    body = request.get_data(cache=True)
    adapter = app.plugins.channels.get(channel)
    try:
        valid = bool(adapter.verify(dict(request.headers), body, secret))
    except Exception:
        log.exception("channel %s: signature check raised; treating the webhook as unsigned", channel)
        valid = False
    if not valid:
        # Refused before ingest: an unsigned body must not even reach raw_payloads.
        raise ApiError(401, "webhook signature is missing or invalid", headers=_SIGNATURE_CHALLENGE)
    results = app.intake.ingest(channel, body, source=f"webhook:{request.remote_addr}")
    return json_response({"results": [r.to_dict() for r in results]})

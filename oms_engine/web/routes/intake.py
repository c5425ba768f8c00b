"""What other systems send: channel webhooks (signed), warehouse / carrier callbacks (integration token), and
a warehouse's WMS or a carrier calling back over HTTP (signed with the warehouse's or the carrier's secret).

Their bodies are the sender's own (JSON, XML, CSV ...), signed over their raw bytes: no body model is declared
for them, so nothing reads or reshapes a body before its signature is checked on the bytes as they came.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import Field

from ...storage.models import Carrier, Warehouse
from ..auth import CALLBACK, actor, requires
from ..batching import WebhookBatcher
from ..errors import ApiError, json_response
from ..openapi import operation
from ..requests import body_json, oms
from ..schemas import Answer
from ..webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_CHALLENGE,
    TIMESTAMP_HEADER,
    Delivery,
    WebhookGate,
    check_fresh,
    epoch_seconds,
    read_headers,
)

log = logging.getLogger("oms.api")
bp = Blueprint("intake", __name__)
TAGS = ["intake"]


class CallbackStored(Answer):
    inbox_id: int = Field(description="the inbox row it is kept in, applied by the next pipeline pass")


class SignedCallbackStored(CallbackStored):
    callback_id: str | None = Field(description="the sender's own id of the callback (a second delivery of it "
                                                "changes nothing)")


class WebhookResults(Answer):
    """One result per order of the delivery: its number, or the error it was refused with. A replay of a delivery
    stored already is answered 200 with none (``delivery``, ``message``) when the channel retries until it gets a
    2xx, else 409; the shop checking the address is answered ``{"ping": true}``."""

    results: list[dict[str, Any]] = Field(default_factory=list)


@bp.post("/api/callbacks/<source>")
@requires(CALLBACK)
@operation(answers={202: CallbackStored}, tags=TAGS, refusals=(404,))
def callback(source: str) -> Response:
    """A warehouse's or carrier's callback (JSON, as its connector reads it), kept in the inbox."""
    app = oms()
    if source not in app.plugins.connectors:
        raise ApiError(404, f"unknown callback source '{source}' (known: {', '.join(app.plugins.connectors.names())})")
    payload = body_json()
    with app.db.session() as s:
        inbox_id = app.callbacks.receive(s, source, payload)
    # The inbox row has no actor column: the log is where the sender is recorded.
    log.info("callback %s from %s stored as inbox %s by %s", source, request.remote_addr, inbox_id, actor())
    return json_response({"inbox_id": inbox_id}, 202)


def _delivery(adapter: object, channel: str, now: datetime) -> Delivery:
    """The delivery's id and signing time: from the adapter when it reads its own channel's headers
    (``delivery(headers) -> (id, unix seconds)``), else from the OMS's own X-OMS-* headers. An adapter whose
    channel sends no time (WooCommerce) answers None for it: the delivery counts as sent now, so only a replay
    of its id is refused."""
    read = getattr(adapter, "delivery", None)
    if read is None:
        return read_headers(request.headers)
    try:
        found = read(dict(request.headers))
    except ValueError as exc:
        raise ApiError(400, f"webhook headers for channel '{channel}': {exc}") from None
    if found is None:
        raise ApiError(401, "webhook signature is missing or invalid: no delivery id or timestamp",
                       headers=SIGNATURE_CHALLENGE)
    delivery_id, timestamp = found
    when = epoch_seconds(now) if timestamp is None else timestamp
    return read_headers({DELIVERY_HEADER: str(delivery_id), TIMESTAMP_HEADER: str(when)})


@bp.post("/api/webhooks/<channel>")
@operation(answers={200: WebhookResults}, tags=TAGS, public=True, refusals=(401, 404, 409, 429, 503))
def webhook(channel: str) -> Response:
    """A channel's delivery, signed: fresh, authentic, not seen before and within the rate, or nothing is stored."""
    # The checks and their order are in oms_engine/web/webhooks.py.
    app = oms()
    if channel not in app.accounts.names():
        raise ApiError(404, f"unknown channel '{channel}'")
    adapter = app.accounts.adapter(channel)
    if getattr(adapter, "webhooks", True) is False:
        raise ApiError(404, f"channel '{channel}' takes no webhooks: its orders are pulled (oms channels pull) or "
                            "taken from files (oms ingest)")
    ping = getattr(adapter, "ping", None)
    if ping is not None and ping(dict(request.headers), request.get_data(cache=True)):
        # The shop checking the address when a webhook is set up: answered, nothing stored.
        return json_response({"ping": True, "channel": channel})
    # Read per request so a secret set (or rotated) in the environment needs no new app.
    secret = app.accounts.webhook_secret(channel)
    if not secret:
        raise ApiError(401, f"webhooks for channel '{channel}' are disabled: no signing secret is configured",
                       headers=SIGNATURE_CHALLENGE)
    gate: WebhookGate = current_app.extensions["oms_webhooks"]
    # The cheap checks first: a stale or malformed delivery costs no HMAC over its body.
    now = app.clock.now()
    delivery = _delivery(adapter, channel, now)
    check_fresh(delivery, now, gate.policy)
    body = request.get_data(cache=True)
    try:
        valid = bool(adapter.verify(dict(request.headers), body, secret))
    except Exception:
        log.exception("channel %s: signature check raised; treating the webhook as unsigned", channel)
        valid = False
    if not valid:
        # Refused before ingest: an unsigned body must not even reach raw_payloads.
        raise ApiError(401, "webhook signature is missing or invalid", headers=SIGNATURE_CHALLENGE)
    gate.take_turn(channel)
    batcher: WebhookBatcher = current_app.extensions["oms_webhook_batcher"]
    try:
        results = batcher.take_in(channel, body, f"webhook:{request.remote_addr}", delivery.delivery_id, now)
    except ApiError as exc:
        if exc.status != 409 or not getattr(adapter, "replays_ok", False):
            raise
        # A channel that retries a delivery until it gets a 2xx (Shopify, WooCommerce) is told it arrived:
        # answered 409 it would count a failure and, after a few, stop sending.
        return json_response({"results": [], "delivery": delivery.delivery_id,
                              "message": f"delivery '{delivery.delivery_id}' was received already"})
    return json_response({"results": [r.to_dict() for r in results]})


@bp.post("/api/wms/<warehouse>/callbacks")
@operation(answers={202: SignedCallbackStored}, tags=TAGS, public=True, refusals=(401, 404))
def wms_callback(warehouse: str) -> Response:
    """A warehouse's WMS calling back over HTTP, signed with the warehouse's own secret."""
    # Checked by its connector on the raw body before anything is stored; then the bytes are kept as they came
    # (exchanges) and the callback is queued in the inbox (202). A second delivery of the same callback id is
    # recorded and changes nothing when it is applied.
    app = oms()
    with app.db.read() as s:
        known = s.get(Warehouse, warehouse) is not None
        route = app.warehouses.wms(s, warehouse) if known else None
    if route is None:
        raise ApiError(404, f"unknown warehouse '{warehouse}'")
    return _signed_callback(route.connector, route.settings, f"warehouse '{warehouse}'", warehouse=warehouse)


@bp.post("/api/carriers/<carrier>/callbacks")
@operation(answers={202: SignedCallbackStored}, tags=TAGS, public=True, refusals=(401, 404))
def carrier_callback(carrier: str) -> Response:
    """A carrier's tracking events over HTTP, signed with the carrier's own secret (its master-data settings)."""
    # Taken in as a WMS's callbacks are: checked by its connector before anything is stored.
    app = oms()
    with app.db.read() as s:
        known = s.get(Carrier, carrier) is not None
        route = app.carriers.route(s, carrier) if known else None
    if route is None:
        raise ApiError(404, f"unknown carrier '{carrier}'")
    # Duplicates are found by connector and callback id: carriers sharing a connector number their own events.
    return _signed_callback(route.connector, route.settings, f"carrier '{carrier}'", id_scope=f"{carrier}:")


def _signed_callback(connector_name: str, settings: Mapping[str, Any], who: str, *, warehouse: str | None = None,
                     id_scope: str = "") -> Response:
    """Check the signature of a callback from ``who`` with its connector and settings, then store it (202)."""
    app = oms()
    connector = app.plugins.connectors.get(connector_name)
    verify = getattr(connector, "verify_callback", None)
    if verify is None:
        raise ApiError(404, f"{who} uses connector '{connector.name}', which takes no HTTP callbacks")
    body = request.get_data(cache=True)
    headers = dict(request.headers)
    try:
        valid = bool(verify(headers, body, settings))
    except Exception:
        log.exception("%s: the callback signature check raised; treating it as unsigned", who)
        valid = False
    if not valid:
        raise ApiError(401, "callback signature is missing or invalid", headers=SIGNATURE_CHALLENGE)
    callback_id = ""
    read_id = getattr(connector, "callback_id", None)
    if read_id is not None:
        try:
            own = str(read_id(headers, body) or "")
            callback_id = f"{id_scope}{own}"[:128] if own else ""
        except Exception:
            log.warning("%s: the callback id could not be read", who, exc_info=True)
    content_type = request.content_type or ""
    with app.db.session() as s:
        inbox_id = app.callbacks.receive_http(s, connector.name, warehouse, body, content_type, callback_id)
    log.info("callback from %s (%s) stored as inbox %s", who, request.remote_addr, inbox_id)
    return json_response({"inbox_id": inbox_id, "callback_id": callback_id or None}, 202)

"""A real admin API on loopback, served by waitress as ``oms serve`` does, spoken to with http.client."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.orders.queries import get_order
from oms_engine.storage.models import History, Order
from oms_engine.web.app import create_app
from oms_engine.web.server import AdminServer
from oms_engine.web.webhooks import epoch_seconds
from tests.support import order_json, payload

ADMIN, SUPPORT, VIEWER, INTEGRATION = "adm-7f3c9e", "sup-51d2aa", "view-0b8e41", "int-c4f019"
RULES_ADMIN = "rul-93ab17"
# SUPPORT is configured under the old name of the operator role, as a deployment from before it may still be.
TOKENS = {ADMIN: "admin", SUPPORT: "support", VIEWER: "viewer", INTEGRATION: "integration", RULES_ADMIN: "rules_admin"}
# A token of each role.
BY_ROLE = {"admin": ADMIN, "operator": SUPPORT, "viewer": VIEWER, "integration": INTEGRATION,
           "rules_admin": RULES_ADMIN}
WEBHOOK_SECRET = "whsec-test-1"


def sign_webhook(body: bytes, *, timestamp: int | datetime, delivery: str | None = None,
                 secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """The headers a sender puts on a webhook (plugins/channels/json_channel.py), for a new delivery id by default."""
    ts = str(epoch_seconds(timestamp) if isinstance(timestamp, datetime) else timestamp)
    delivery = delivery if delivery is not None else uuid.uuid4().hex
    signed = f"{ts}.{delivery}.".encode() + body
    return {"X-OMS-Timestamp": ts, "X-OMS-Delivery": delivery,
            "X-OMS-Signature": "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ApiServer:
    """One app on 127.0.0.1:<free port>, served like ``oms serve``."""

    def __init__(self, app: Flask, **server_options: Any) -> None:
        self.app = app
        self.server = AdminServer(app, "127.0.0.1", 0, **server_options)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)

    def request(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float = 30) -> Reply:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Reply:
        return self.request("POST", path, **kw)

    def webhook(self, channel: str, body: bytes, *, delivery: str | None = None,
                timestamp: int | datetime | None = None, secret: str = WEBHOOK_SECRET) -> Reply:
        """A delivery signed as a sender would, at the OMS's own clock time unless told otherwise."""
        oms: OMS = self.app.extensions["oms"]
        headers = sign_webhook(body, timestamp=timestamp if timestamp is not None else oms.clock.now(),
                               delivery=delivery, secret=secret)
        return self.post(f"/api/webhooks/{channel}", body=body, headers=headers)


@pytest.fixture
def serve() -> Iterator[Callable[..., ApiServer]]:
    """Start any app on loopback (with AdminServer options if given); every server is shut down after the test."""
    started: list[ApiServer] = []

    def start(app: Flask, **server_options: Any) -> ApiServer:
        started.append(ApiServer(app, **server_options))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def api(sqlite_oms: OMS, serve: Callable[..., ApiServer]) -> ApiServer:
    return serve(create_app(sqlite_oms, tokens=TOKENS))


@pytest.fixture
def api_any(oms: OMS, serve: Callable[..., ApiServer]) -> ApiServer:
    """The API over the ``oms`` fixture: SQLite and PostgreSQL."""
    return serve(create_app(oms, tokens=TOKENS))


# -- database helpers --------------------------------------------------------------
def ingest_one(oms: OMS, external_id: str, **kw: Any) -> str:
    [result] = oms.intake.ingest("json", payload(order_json(external_id, **kw)))
    assert result.number is not None, result
    return result.number


def held_order(oms: OMS, external_id: str = "X") -> str:
    """An order held in screening: the blocking rules hold blacklisted customers."""
    number = ingest_one(oms, external_id, customer="C-BAD")
    oms.pipeline.run_until_idle()
    assert status_of(oms, number) == "on_hold"
    return number


def dispatched_order(oms: OMS, external_id: str = "D") -> str:
    number = ingest_one(oms, external_id)
    oms.pipeline.run_until_idle()
    assert status_of(oms, number) == "dispatched"
    return number


def status_of(oms: OMS, number: str) -> str:
    with oms.db.session() as s:
        return get_order(s, number).status


def history_rows(oms: OMS, number: str) -> list[tuple[str, str, str]]:
    with oms.db.session() as s:
        order = get_order(s, number)
        return [(h.event, h.to_state, h.actor) for h in
                s.scalars(select(History).where(History.order_id == order.id).order_by(History.id))]


def count(oms: OMS, model: type) -> int:
    with oms.db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def order_count(oms: OMS) -> int:
    return count(oms, Order)

"""A real admin API on loopback: the app served by werkzeug in a daemon thread, spoken to with http.client."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from oms_engine.engine import OMS
from oms_engine.orders.queries import get_order
from oms_engine.storage.models import History, Order
from oms_engine.web.app import create_app

# The shared tests/conftest.py: pytest puts tests/ on sys.path, so it imports as "conftest".
from tests.support import order_json, payload

ADMIN, SUPPORT, VIEWER, INTEGRATION = "adm-7f3c9e", "sup-51d2aa", "view-0b8e41", "int-c4f019"
TOKENS = {ADMIN: "admin", SUPPORT: "support", VIEWER: "viewer", INTEGRATION: "integration"}
WEBHOOK_SECRET = "whsec-test-1"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ApiServer:
    """One app on 127.0.0.1:<free port>, one request at a time like ``oms serve``."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()

    def request(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None) -> Reply:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
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


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], ApiServer]]:
    """Start any app on loopback; every server started is shut down after the test."""
    started: list[ApiServer] = []

    def start(app: Flask) -> ApiServer:
        started.append(ApiServer(app))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def api(sqlite_oms: OMS, serve: Callable[[Flask], ApiServer]) -> ApiServer:
    return serve(create_app(sqlite_oms, tokens=TOKENS))


@pytest.fixture
def api_any(oms: OMS, serve: Callable[[Flask], ApiServer]) -> ApiServer:
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

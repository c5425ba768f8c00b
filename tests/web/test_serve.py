"""``oms serve``: worker threads and timeouts, so one slow or silent client holds nobody up; JSON to the end."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.test import EnvironBuilder

from oms_engine.engine import OMS
from oms_engine.orders.intake import MAX_PAYLOAD_BYTES
from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import upgrade
from oms_engine.web.app import create_app
from tests.support import ROOT
from tests.support.web import INTEGRATION, SUPPORT, TOKENS, VIEWER, ApiServer, held_order

PROMPT = 5.0   # seconds: generous for a loaded CI machine, far below "waits for the stalled client"


def _raw(port: int, data: bytes, *, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and read the whole answer (the server closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real ``oms serve`` on a free loopback port, over a fresh SQLite database."""
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config.update(database_url=url, rules_dir=str(ROOT / "rules"), templates_dir=str(ROOT / "templates"),
                  outbox_dir=str(tmp_path / "outbox"))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
    env["OMS_API_TOKENS"] = ",".join(f"{t}={r}" for t, r in TOKENS.items())
    # The same source as the tests import (pytest puts the project root first on sys.path).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from oms_engine.cli import main; main()", "--config", str(tmp_path / "config.yaml"),
         "serve", "--port", "0", "--channel-timeout", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                line += proc.stdout.read1(1024)  # type: ignore[attr-defined]
        assert b"listening on http://127.0.0.1:" in line, (line, (tmp_path / "serve.log").read_text())
        yield proc, int(line.split(b":")[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_oms_serve_answers_beside_idle_and_stalled_clients_and_stops_on_sigterm(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = served
    idle = socket.create_connection(("127.0.0.1", port))
    # slowloris: a request whose headers never end
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /api/orders HTTP/1.1\r\nHost: oms\r\nAuthorization: Bearer " + VIEWER.encode() + b"\r\n")
    # a body promised but only begun
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"POST /api/callbacks/sim_wms HTTP/1.1\r\nHost: oms\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer " + INTEGRATION.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"order")
    try:
        started = time.monotonic()
        status, _, body = _raw(port, b"GET /health HTTP/1.1\r\nHost: oms\r\nConnection: close\r\n\r\n",
                               timeout=PROMPT)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, headers, body = _raw(port, b"GET /api/orders HTTP/1.1\r\nHost: oms\r\nConnection: close\r\n"
                                           b"Authorization: Bearer " + VIEWER.encode() + b"\r\n\r\n", timeout=PROMPT)
        assert (status, headers["content-type"]) == (200, "application/json")
        assert json.loads(body) == {"orders": [], "next": None}
        assert time.monotonic() - started < PROMPT
        # idle and stalled connections are closed after the channel timeout (2 s here)
        for sock in (idle, slow, stalled):
            assert _closed_by_server(sock, within=15)
    finally:
        for sock in (idle, slow, stalled):
            sock.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert proc.stdout is not None
    assert b"admin API stopped" in proc.stdout.read()


def test_health_and_reads_do_not_wait_behind_a_change(sqlite_oms: OMS, api: ApiServer) -> None:
    number = held_order(sqlite_oms)
    lock: threading.Lock = api.app.extensions["oms_request_lock"]
    with lock:  # as if a long change were running
        r = api.get("/health", timeout=PROMPT)
        assert (r.status, r.json) == (200, {"status": "ok"})
        assert api.get("/api/orders", token=VIEWER, timeout=PROMPT).status == 200
        assert api.get(f"/api/orders/{number}", token=VIEWER, timeout=PROMPT).status == 200
        # Another change waits its turn, and so does a read of the rules (it refreshes the rules in force).
        with pytest.raises(TimeoutError):
            api.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={}, timeout=0.5)
        with pytest.raises(TimeoutError):
            api.get("/api/rules", token=VIEWER, timeout=0.5)
    assert api.get("/api/rules", token=VIEWER).status == 200


def test_requests_queued_behind_the_lock_never_take_the_last_thread_from_health(
        sqlite_oms: OMS, serve: Callable[..., ApiServer]) -> None:
    api = serve(create_app(sqlite_oms, tokens=TOKENS, max_in_flight=1), threads=2)
    lock: threading.Lock = api.app.extensions["oms_request_lock"]
    answers: list[int] = []
    with lock:  # as if a long change were running
        waiting = threading.Thread(target=lambda: answers.append(
            api.post("/api/orders/NO-SUCH/release", token=SUPPORT, json_body={}).status))
        waiting.start()
        deadline = time.monotonic() + PROMPT
        while api.app.wsgi_app.in_flight < 1 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.02)
        r = api.get("/api/stock", token=VIEWER, timeout=PROMPT)
        assert r.status == 503 and r.headers["retry-after"] == "1" and "busy" in r.json["detail"], r.json
        health = api.get("/health", timeout=PROMPT)
        assert (health.status, health.json) == (200, {"status": "ok"})
    waiting.join(PROMPT)
    assert answers == [404]
    assert api.get("/api/stock", token=VIEWER).status == 200


class _WatchedInput(io.BytesIO):
    """A request body that notes whether the app's lock was held each time it was read."""

    def __init__(self, data: bytes, lock: threading.Lock) -> None:
        super().__init__(data)
        self.lock, self.held_while_read = lock, []

    def read(self, size: int | None = -1) -> bytes:
        self.held_while_read.append(self.lock.locked())
        return super().read(size)


@pytest.mark.parametrize("chunked", [False, True])
def test_the_body_is_read_before_the_lock_is_taken(sqlite_oms: OMS, chunked: bool) -> None:
    app = create_app(sqlite_oms, tokens=TOKENS)
    lock = app.extensions["oms_request_lock"]
    body = json.dumps({"order_number": "1", "status": "ACCEPTED"}).encode()
    environ = EnvironBuilder(path="/api/callbacks/sim_wms", method="POST", data=body,
                             headers={"Authorization": f"Bearer {INTEGRATION}", "Content-Type": "application/json"}
                             ).get_environ()
    watched = _WatchedInput(body, lock)
    environ["wsgi.input"] = watched
    if chunked:
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
    seen: list[str] = []
    answer = b"".join(app.wsgi_app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    assert seen == ["202 ACCEPTED"], answer
    assert watched.held_while_read and not any(watched.held_while_read)


def test_refusals_by_the_server_itself_are_json(api: ApiServer) -> None:
    cases: list[tuple[bytes, int, str]] = [
        (b"NOT A REQUEST\r\n\r\n", 400, "Bad Request"),
        (b"POST /api/callbacks/sim_wms HTTP/1.1\r\nHost: oms\r\nContent-Length: " + str(50 * MAX_PAYLOAD_BYTES).encode()
         + b"\r\n\r\n", 413, f"{MAX_PAYLOAD_BYTES:,}"),
        (b"POST /api/callbacks/sim_wms HTTP/1.1\r\nHost: oms\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
         "chunk"),
    ]
    for request, status, expected in cases:
        got, headers, body = _raw(api.port, request)
        assert (got, headers["content-type"]) == (status, "application/problem+json"), (request[:40], body)
        data: dict[str, Any] = json.loads(body)
        assert set(data) == {"type", "title", "status", "detail"} and expected in data["detail"], data
        assert "Traceback" not in data["detail"] and "waitress" not in data["detail"]


def test_reads_side_by_side_with_changes_all_answer(oms: OMS, api_any: ApiServer) -> None:
    numbers = [held_order(oms, f"CONC-{i}") for i in range(4)]
    statuses: list[int] = []

    def read() -> None:
        for _ in range(8):
            for number in numbers:
                statuses.append(api_any.get(f"/api/orders/{number}", token=VIEWER, timeout=30).status)
            statuses.append(api_any.get("/api/holds", token=VIEWER, timeout=30).status)

    def change() -> None:
        for number in numbers:
            statuses.append(api_any.post(f"/api/orders/{number}/release", token=SUPPORT, json_body={},
                                         timeout=30).status)

    threads = [threading.Thread(target=read) for _ in range(4)] + [threading.Thread(target=change)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 4 * 8 * 5 + 4 and set(statuses) == {200}
    assert api_any.get("/api/holds", token=VIEWER).json["total"] == 0

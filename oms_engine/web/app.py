"""The admin API: what admins, support staff and integrations see and do over HTTP.

JSON in and out. Every route except ``GET /health``, the signed channel
webhooks, the customers' tracking page and the API's own description needs
``Authorization: Bearer <token>``; the token's role decides what it may do:

=========== =================================================================
viewer      read: orders, an order's story, the hold queue, stock, rules, reports
operator    viewer + pay, release, reject, bin, restore, cancel, intercept, move
            (``support`` is its old name, still taken in ``OMS_API_TOKENS``)
rules_admin viewer + publish, check, dry-run, activate and roll back rules
admin       everything: master data, tokens, the audit log, callbacks
integration WMS / carrier callbacks only
=========== =================================================================

Tokens come from ``create_app(tokens=...)`` or, by default, from the
environment variable named by ``config.api_tokens_env``
(``"tok1=admin,tok2=operator"``), and from the database (``oms tokens
create``, :mod:`oms_engine.web.tokens`, kept as their sha256 only).

Channel webhooks (``POST /api/webhooks/<channel>``) carry no token: the
channel adapter checks their signature with the secret in
``OMS_WEBHOOK_SECRET_<CHANNEL>``; the core refuses stale timestamps, replayed
delivery ids and deliveries past the channel's rate
(:mod:`oms_engine.web.webhooks`). A refused delivery stores nothing.

Errors are problem+json (RFC 9457, :mod:`oms_engine.web.errors`) with 400
(bad JSON, body, header or parameter, naming it in ``field``), 401, 403, 404,
405, 409 (illegal transition, refused command, replayed webhook), 413, 415,
422 (rules that do not validate, with every error), 429 (with Retry-After)
and 500 (no traceback). ``/openapi.json`` describes every route declared
with :func:`oms_engine.web.openapi.operation`; ``/docs`` shows it.

Reads are served side by side; changes take turns per process: the rules
engine (durable_rules is not thread safe), the state machine and SQLite's
single writer favour one changer at a time, so the app serialises them itself
even when a server hands it several at once (reads of the rules take a turn
too: they refresh the rules in force). Outside that lock: reading the request
body (a slow sender must not hold everybody up), every other read, and
``/health`` (a load balancer must get its answer while a long request runs).
``oms serve`` runs the app under waitress (:mod:`oms_engine.web.server`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, request

from .. import console
from ..orders.intake import MAX_PAYLOAD_BYTES
from . import audit, idempotency, openapi
from .auth import Principals, TokenTable, parse_tokens
from .batching import WebhookBatcher
from .errors import PROBLEM_JSON, ApiError, problem_document, register_error_handlers
from .routes import (
    aftersales,
    documents,
    health,
    intake,
    invoices,
    masterdata,
    metrics,
    orders,
    reports,
    rules,
    settlement,
    stock,
    tracking,
)
from .routes import audit as audit_routes
from .routes import tokens as token_routes
from .tokens import StoredTokens, no_tokens_message
from .webhooks import WebhookGate, WebhookPolicy

# Every route of the API, by the module that serves it.
BLUEPRINTS = tuple(module.bp for module in (health, orders, intake, stock, rules, masterdata, documents, reports,
                                            aftersales, settlement, invoices, metrics, tracking, audit_routes,
                                            token_routes))

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..engine import OMS

log = logging.getLogger("oms.api")

_READS = frozenset({"GET", "HEAD"})


class _OneAtATime:
    """Serialise changes, whatever the server does (``flask run`` is threaded by default); reads run side by side.

    A change (any method but GET and HEAD) may run the state machine, the
    rules engine (durable_rules is not thread safe) and the plugins, so
    changes take turns. A read only reads the database and runs beside them
    and other reads, but for paths starting with one of ``locked_reads``,
    whose reads touch the rules engine (the rules in force are refreshed).
    The body is read before the lock is taken, and paths in ``unlocked`` never
    take it. Paths starting with one of ``own_turns`` count as requests in hand
    but take the lock themselves, for the part of their work that needs it.
    The answer is materialised inside the lock (responses are small JSON
    documents), so sending it to a slow reader holds nobody up either.

    Each request waiting for its turn holds a server thread. ``max_in_flight``
    bounds how many may be inside (running or waiting) at once; past it the
    answer is 503 with Retry-After, so with fewer of them than server threads
    a thread is always free for ``/health``.
    """

    def __init__(self, app: WSGIApplication, *, max_body: int, unlocked: frozenset[str],
                 max_in_flight: int | None = None, own_turns: tuple[str, ...] = (),
                 locked_reads: tuple[str, ...] = ()) -> None:
        self._app = app
        self._locked_reads = locked_reads
        self._max_body = max_body
        self._unlocked = unlocked
        self._own_turns = own_turns
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._counting = threading.Lock()
        self.lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Requests inside now, running or waiting for their turn."""
        return self._in_flight

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self._unlocked:
            return self._answer(environ, start_response)
        try:
            _buffer_body(environ, self._max_body)
        except Exception:
            log.info("request body of %s %s not received in full", environ.get("REQUEST_METHOD"),
                     environ.get("PATH_INFO"), exc_info=True)
            return _json_error(start_response, "400 Bad Request", "the request body was not received in full")
        with self._counting:
            busy = self._max_in_flight is not None and self._in_flight >= self._max_in_flight
            if not busy:
                self._in_flight += 1
        if busy:
            log.warning("%d requests in hand: %s %s answered 503", self._in_flight, environ.get("REQUEST_METHOD"),
                        environ.get("PATH_INFO"))
            return _json_error(start_response, "503 Service Unavailable",
                               f"the server is busy ({self._in_flight} requests in hand); retry shortly",
                               headers=[("Retry-After", "1")])
        try:
            path = environ.get("PATH_INFO", "")
            if path.startswith(self._own_turns):
                # Counted, but not serialised here: the handler takes the lock itself, for the part that
                # needs it, and many of these share one turn (webhooks: see batching.py).
                return self._answer(environ, start_response)
            if environ.get("REQUEST_METHOD") in _READS and not path.startswith(self._locked_reads):
                return self._answer(environ, start_response)
            with self.lock:
                return self._answer(environ, start_response)
        finally:
            with self._counting:
                self._in_flight -= 1

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = self._app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        except Exception:
            # Flask's handlers answer every error; this is the last guard, so the
            # server never sends its own (text) error page.
            log.exception("unhandled error outside the app's handlers on %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            return _json_error(start_response, "500 Internal Server Error",
                               "internal server error; the details are in the server log", sys.exc_info())


def _buffer_body(environ: WSGIEnvironment, limit: int) -> None:
    """Read the whole request body into memory (at most ``limit`` + 1 bytes) and hand the app that copy."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
    if length_text:
        if not length_text.isdigit() or int(length_text) > limit:
            return  # the app refuses it (400 or 413) without reading it
        wanted = int(length_text)
    elif environ.get("wsgi.input_terminated"):
        wanted = limit + 1  # chunked: one byte past the limit is enough for the app to answer 413
    else:
        return  # no body
    chunks: list[bytes] = []
    got = 0
    while got < wanted:
        chunk = stream.read(min(wanted - got, 1 << 16))
        if not chunk:
            break  # the client stopped: the app sees a short body and answers 400
        chunks.append(chunk)
        got += len(chunk)
    environ["wsgi.input"] = io.BytesIO(b"".join(chunks))


def _json_error(start_response: StartResponse, status: str, message: str, exc_info: Any = None, *,
                headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = json.dumps(problem_document(int(status.split()[0]), message)).encode()
    start_response(status, [("Content-Type", PROBLEM_JSON), ("Content-Length", str(len(body))),
                            *(headers or [])], exc_info)
    return [body]


def _no_nul_characters() -> None:
    # PostgreSQL refuses NUL in text, which would turn a silly parameter into a 500.
    if "\x00" in request.path:
        raise ApiError(400, "the path must not contain NUL characters")
    for name, value in request.args.items(multi=True):
        if "\x00" in value or "\x00" in name:
            raise ApiError(400, f"parameter '{name.replace(chr(0), '')}' must not contain NUL characters")


def create_app(oms: OMS, *, tokens: Mapping[str, str] | None = None,
               webhooks: WebhookPolicy | None = None, max_in_flight: int | None = None,
               warn_without_tokens: bool = True) -> Flask:
    """The admin API for ``oms``.

    ``tokens`` (token -> role) overrides the environment; ``webhooks`` sets the
    webhook timestamp tolerance and the per-channel rate limit;
    ``max_in_flight`` bounds the requests inside the app at once, ``/health``
    aside (``oms serve`` gives one less than its threads; None: no bound);
    ``warn_without_tokens``: log how to make a token when there is none
    (``oms serve`` says it on its own terms).
    """
    if max_in_flight is not None and max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    if tokens is None:
        tokens = parse_tokens(os.environ.get(oms.config.api_tokens_env, ""))
    table = TokenTable(tokens)
    stored = StoredTokens(oms.db)
    if warn_without_tokens and not len(table) and not stored.live():
        log.warning("%s", no_tokens_message(oms.config.api_tokens_env))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_PAYLOAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep explain()'s reading order
    app.extensions["oms"] = oms
    app.extensions["oms_api_tokens"] = Principals(table, stored)
    app.extensions["oms_webhooks"] = WebhookGate(webhooks or WebhookPolicy())
    app.before_request(_no_nul_characters)
    idempotency.install(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    audit.install(app)
    console.install(app)
    openapi.install(app)
    register_error_handlers(app)
    guard = _OneAtATime(app.wsgi_app, max_body=MAX_PAYLOAD_BYTES,
                        unlocked=frozenset({"/health", "/openapi.json", "/docs"}),
                        max_in_flight=max_in_flight, own_turns=("/api/webhooks/",),
                        locked_reads=("/api/rules", "/console/rules"))
    app.wsgi_app = guard  # type: ignore[method-assign]
    # Whatever else must not run beside a request (a console task, say) takes this lock too.
    app.extensions["oms_request_lock"] = guard.lock
    app.extensions["oms_webhook_batcher"] = WebhookBatcher(oms, app.extensions["oms_webhooks"], guard.lock)
    return app

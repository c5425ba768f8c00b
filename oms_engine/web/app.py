"""The admin API: what admins, support staff and integrations see and do over HTTP.

JSON in and out. Every route except ``GET /health`` and the signed channel
webhooks needs ``Authorization: Bearer <token>``; the token's role decides
what it may do:

=========== =================================================================
viewer      read: orders, an order's story, the hold queue, stock, rules
support     viewer + pay, release, reject, cancel, intercept
admin       everything, including ``POST /api/rules/reload`` and callbacks
integration WMS / carrier callbacks only
=========== =================================================================

Tokens come from ``create_app(tokens=...)`` or, by default, from the
environment variable named by ``config.api_tokens_env``
(``"tok1=admin,tok2=support"``). The token itself is never stored: changes
record the actor ``api:<role>:<first 6 hex of sha256(token)>``, enough to tell
tokens apart in the history without letting anyone reuse one.

Channel webhooks (``POST /api/webhooks/<channel>``) carry no token: the
channel adapter checks their signature with the secret in
``OMS_WEBHOOK_SECRET_<CHANNEL>``, and an unsigned body is refused before
anything is stored.

Errors are ``{"error": "..."}`` with 400 (bad JSON, body or parameter, naming
the field), 401, 403, 404, 409 (illegal transition or refused command), 413,
422 (rules that do not validate, with every error) and 500 (no traceback).

Requests are handled one at a time per process: the rules engine and SQLite
both favour a single caller, so the app serialises requests itself even when
a server hands it several at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from flask import Flask

from ..orders.intake import MAX_PAYLOAD_BYTES
from .auth import TokenTable, parse_tokens
from .errors import register_error_handlers
from .routes import health, intake, orders, rules, stock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..engine import OMS

log = logging.getLogger("oms.api")


class _OneAtATime:
    """Serialise requests, whatever the server does (``flask run`` is threaded by default)."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            body = self._app(environ, start_response)
            try:
                # Responses are small JSON documents; materialising them keeps
                # the whole request, body included, inside the lock.
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def create_app(oms: OMS, *, tokens: Mapping[str, str] | None = None) -> Flask:
    """The admin API for ``oms``; ``tokens`` (token -> role) overrides the environment."""
    if tokens is None:
        tokens = parse_tokens(os.environ.get(oms.config.api_tokens_env, ""))
    table = TokenTable(tokens)
    if not len(table):
        log.warning("no API tokens configured (set %s): every authenticated route will answer 401",
                    oms.config.api_tokens_env)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_PAYLOAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep explain()'s reading order
    app.extensions["oms"] = oms
    app.extensions["oms_api_tokens"] = table
    for module in (health, orders, intake, stock, rules):
        app.register_blueprint(module.bp)
    register_error_handlers(app)
    app.wsgi_app = _OneAtATime(app.wsgi_app)  # type: ignore[method-assign]
    return app

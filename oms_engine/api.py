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

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import commands
from .app import OrderNotFound
from .commands import CommandError
from .config import ConfigError
from .explain import explain, order_summary
from .intake import MAX_PAYLOAD_BYTES, PayloadTooLarge, ingest
from .models import Customer, History, Order, Stock
from .money import MoneyError, to_minor
from .rules import Ruleset, RulesetInvalid
from .states import Event, IllegalTransition, State

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .app import OMS

log = logging.getLogger("oms.api")

ROLES = ("viewer", "support", "admin", "integration")
READ = frozenset({"viewer", "support", "admin"})
ACT = frozenset({"support", "admin"})
ADMIN = frozenset({"admin"})
CALLBACK = frozenset({"integration", "admin"})

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_NOTE = 2000
# Order.payment_txn is String(128): PostgreSQL would refuse a longer one with a 500.
MAX_TRANSACTION_ID = 128
WEBHOOK_SECRET_PREFIX = "OMS_WEBHOOK_SECRET_"

P = ParamSpec("P")
R = TypeVar("R")


class ApiError(Exception):
    """A request the API refuses, with the status and the message the caller sees."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = dict(headers or {})
        self.extra = extra


# -- tokens ---------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    role: str
    actor: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def actor_for(role: str, token: str) -> str:
    return f"api:{role}:{_digest(token).hex()[:6]}"


def parse_tokens(spec: str) -> dict[str, str]:
    """``"tok1=admin, tok2=support"`` -> {token: role}; a malformed entry stops the start-up."""
    tokens: dict[str, str] = {}
    for n, entry in enumerate(spec.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue  # a trailing comma is harmless
        # rpartition: base64 tokens may themselves end in '='.
        token, sep, role = entry.rpartition("=")
        token, role = token.strip(), role.strip()
        if not sep or not token:
            raise ConfigError(f"API token entry {n} is not of the form token=role")
        if token in tokens and tokens[token] != role:
            raise ConfigError(f"API token entry {n} repeats a token with a different role")
        tokens[token] = role
    return tokens


class TokenTable:
    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for token, role in tokens.items():
            if role not in ROLES:
                # Never echo the token: the message ends up in logs.
                raise ConfigError(f"API token with unknown role '{role}' (roles: {', '.join(ROLES)})")
            if not token:
                raise ConfigError("an API token must not be empty")
            self._entries.append((_digest(token), Principal(role, actor_for(role, token))))

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> Principal | None:
        # Fixed-length digests compared with compare_digest, and no early exit,
        # so timing says nothing about how much of a token was right.
        given = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(given, digest):
                found = principal
        return found


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="oms"' + (f', error="{error}"' if error else "")
    return {"WWW-Authenticate": value}


def _authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    if not header:
        raise ApiError(401, "authentication required: send 'Authorization: Bearer <token>'", headers=_challenge())
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "the Authorization header must be 'Bearer <token>'",
                       headers=_challenge("invalid_request"))
    principal = current_app.extensions["oms_api_tokens"].lookup(token)
    if principal is None:
        raise ApiError(401, "unknown API token", headers=_challenge("invalid_token"))
    return principal


def requires(roles: frozenset[str]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = _authenticate()
            if principal.role not in roles:
                raise ApiError(403, f"role '{principal.role}' may not do this; it needs one of: "
                                    f"{', '.join(r for r in ROLES if r in roles)}")
            g.principal = principal
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _actor() -> str:
    principal: Principal = g.principal
    return principal.actor


# -- request helpers --------------------------------------------------------------
def _oms() -> OMS:
    oms: OMS = current_app.extensions["oms"]
    return oms


def _body_json(*, optional: bool = False) -> Any:
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "the request body must be a JSON document")
    try:
        # Decoded here: json.loads would guess UTF-16/32 from the bytes, and JSON is UTF-8 (RFC 8259).
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed JSON: the body is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _body_object(allowed: Iterable[str], *, optional: bool = False) -> dict[str, Any]:
    data = _body_json(optional=optional)
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {_json_type(data)}")
    allowed = tuple(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        # A misspelt field silently ignored would lose what the person typed.
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}")
    return data


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _string_field(data: Mapping[str, Any], name: str, *, required: bool, max_len: int) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"field '{name}' is required")
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"field '{name}' must be a string, got {_json_type(value)}")
    value = value.strip()
    if required and not value:
        raise ApiError(400, f"field '{name}' must not be empty")
    if len(value) > max_len:
        raise ApiError(400, f"field '{name}' is longer than {max_len} characters")
    return value


def _int_param(name: str, default: int | None, low: int, high: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"parameter '{name}' must be an integer {bounds}, got '{raw}'") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"parameter '{name}' must be an integer {bounds}, got {value}")
    return value


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


bp = Blueprint("oms_api", __name__)


# -- health -----------------------------------------------------------------------
@bp.get("/health")
def health() -> Response:
    oms = _oms()
    try:
        # A raw DBAPI connection: a SQLAlchemy transaction would start with
        # BEGIN IMMEDIATE on SQLite and make the health check wait for writers.
        conn = oms.db.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM orders WHERE 1 = 0")
            cur.fetchall()
            cur.close()
        finally:
            conn.close()
    except Exception:
        log.exception("health check: the database is not reachable")
        return _json({"status": "unavailable", "error": "the database is not reachable"}, 503)
    return _json({"status": "ok"})


# -- orders -----------------------------------------------------------------------
@bp.get("/api/orders")
@requires(READ)
def list_orders() -> Response:
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in State}:
        raise ApiError(400, f"unknown status '{status}'; valid: {', '.join(s.value for s in State)}")
    customer = request.args.get("customer") or None
    channel = request.args.get("channel") or None
    q = (request.args.get("q") or "").strip() or None
    limit = _int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    before_id = _int_param("before_id", None, 1, None)

    stmt = select(Order).options(selectinload(Order.customer))
    if status:
        stmt = stmt.where(Order.status == status)
    if customer:
        stmt = stmt.where(Order.customer_id.in_(select(Customer.id).where(Customer.ref == customer)))
    if channel:
        stmt = stmt.where(Order.channel == channel)
    if q:
        stmt = stmt.where(or_(Order.number.startswith(q, autoescape=True),
                              Order.external_id.startswith(q, autoescape=True)))
    if before_id is not None:
        stmt = stmt.where(Order.id < before_id)
    # Ids only grow, so "newest first" by id gives a cursor that never skips or
    # repeats a row while new orders arrive; one extra row tells whether more exist.
    stmt = stmt.order_by(Order.id.desc()).limit(limit + 1)
    with _oms().db.read() as s:
        rows = list(s.scalars(stmt))
        page = rows[:limit]
        return _json({"orders": [order_summary(o) for o in page],
                      "next": page[-1].id if len(rows) > limit else None})


@bp.get("/api/orders/<number>")
@requires(READ)
def show_order(number: str) -> Response:
    oms = _oms()
    with oms.db.read() as s:
        return _json(explain(oms, s, number))


@bp.get("/api/holds")
@requires(READ)
def holds() -> Response:
    limit = _int_param("limit", MAX_LIMIT, 1, MAX_LIMIT)
    # When it went on hold: its latest hold event (a payment on hold moves updated_at).
    held_since = (select(History.order_id, func.max(History.at).label("at"))
                  .where(History.event == Event.HOLD.value).group_by(History.order_id).subquery())
    stmt = (select(Order, held_since.c.at)
            .outerjoin(held_since, held_since.c.order_id == Order.id)
            .where(Order.status == State.ON_HOLD.value)
            .options(selectinload(Order.customer))
            .order_by(func.coalesce(held_since.c.at, Order.updated_at), Order.id)
            .limit(limit))
    with _oms().db.read() as s:
        total = s.scalar(select(func.count()).select_from(Order).where(Order.status == State.ON_HOLD.value))
        rows = s.execute(stmt).all()
        return _json({"holds": [{**order_summary(o), "hold_stage": o.hold_stage,
                                 "held_since": (at or o.updated_at).isoformat(timespec="seconds")}
                                for o, at in rows],
                      "total": total})


# -- commands ---------------------------------------------------------------------
def _note() -> str:
    return _string_field(_body_object(("note",), optional=True), "note", required=False, max_len=MAX_NOTE)


def _done(number: str, status: str) -> Response:
    return _json({"number": number, "status": status})


@bp.post("/api/orders/<number>/release")
@requires(ACT)
def release(number: str) -> Response:
    note = _note()
    return _done(number, commands.release(_oms(), number, actor=_actor(), note=note))


@bp.post("/api/orders/<number>/reject")
@requires(ACT)
def reject(number: str) -> Response:
    note = _note()
    return _done(number, commands.reject(_oms(), number, actor=_actor(), note=note))


@bp.post("/api/orders/<number>/cancel")
@requires(ACT)
def cancel(number: str) -> Response:
    note = _note()
    return _done(number, commands.cancel(_oms(), number, actor=_actor(), reason=note))


@bp.post("/api/orders/<number>/intercept")
@requires(ACT)
def intercept(number: str) -> Response:
    note = _note()
    return _done(number, commands.intercept(_oms(), number, actor=_actor(), reason=note))


@bp.post("/api/orders/<number>/payments")
@requires(ACT)
def pay(number: str) -> Response:
    data = _body_object(("amount", "transaction_id"))
    amount_text = data.get("amount")
    if amount_text is None:
        raise ApiError(400, "field 'amount' is required, a decimal string such as \"123.00\"")
    if not isinstance(amount_text, str):
        # A JSON number would go through a float somewhere on the way; money never does.
        raise ApiError(400, "field 'amount' must be a decimal string such as \"123.00\", "
                            f"got {_json_type(amount_text)}")
    txn = _string_field(data, "transaction_id", required=True, max_len=MAX_TRANSACTION_ID)
    oms = _oms()
    with oms.db.read() as s:
        currency = oms.get_order(s, number).currency
    try:
        amount = to_minor(amount_text, currency)
    except MoneyError as exc:
        raise ApiError(400, f"field 'amount': {exc}") from None
    if amount < 0:
        raise ApiError(400, f"field 'amount' must not be negative, got {amount_text.strip()}")
    return _done(number, commands.pay(oms, number, amount, txn, actor=_actor()))


# -- callbacks and webhooks ---------------------------------------------------------
@bp.post("/api/callbacks/<source>")
@requires(CALLBACK)
def callback(source: str) -> Response:
    oms = _oms()
    if source not in oms.ext.connectors:
        raise ApiError(404, f"unknown callback source '{source}' (known: {', '.join(oms.ext.connectors.names())})")
    payload = _body_json()
    with oms.db.session() as s:
        inbox_id = oms.receive_callback(s, source, payload)
    # The inbox row has no actor column: the log is where the sender is recorded.
    log.info("callback %s from %s stored as inbox %s by %s", source, request.remote_addr, inbox_id, _actor())
    return _json({"inbox_id": inbox_id}, 202)


def webhook_secret_env(channel: str) -> str:
    return WEBHOOK_SECRET_PREFIX + re.sub(r"[^A-Z0-9]", "_", channel.upper())


_SIGNATURE_CHALLENGE = {"WWW-Authenticate": 'Signature realm="oms-webhooks"'}


@bp.post("/api/webhooks/<channel>")
def webhook(channel: str) -> Response:
    oms = _oms()
    if channel not in oms.ext.channels:
        raise ApiError(404, f"unknown channel '{channel}'")
    # Read per request so a secret set (or rotated) in the environment needs no new app.
    secret = os.environ.get(webhook_secret_env(channel), "")
    if not secret:
        raise ApiError(401, f"webhooks for channel '{channel}' are disabled: no signing secret is configured",
                       headers=_SIGNATURE_CHALLENGE)
    body = request.get_data(cache=True)
    adapter = oms.ext.channels.get(channel)
    try:
        valid = bool(adapter.verify(dict(request.headers), body, secret))
    except Exception:
        log.exception("channel %s: signature check raised; treating the webhook as unsigned", channel)
        valid = False
    if not valid:
        # Refused before ingest: an unsigned body must not even reach raw_payloads.
        raise ApiError(401, "webhook signature is missing or invalid", headers=_SIGNATURE_CHALLENGE)
    results = ingest(oms, channel, body, source=f"webhook:{request.remote_addr}")
    return _json({"results": [r.to_dict() for r in results]})


# -- stock ------------------------------------------------------------------------
@bp.get("/api/stock")
@requires(READ)
def stock() -> Response:
    sku = request.args.get("sku") or None
    warehouse = request.args.get("warehouse") or None
    limit = _int_param("limit", MAX_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    stmt = select(Stock)
    if sku:
        stmt = stmt.where(Stock.sku == sku)
    if warehouse:
        stmt = stmt.where(Stock.warehouse == warehouse)
    stmt = stmt.order_by(Stock.sku, Stock.warehouse).limit(limit + 1)
    with _oms().db.read() as s:
        rows = list(s.scalars(stmt))
        return _json({"stock": [{"warehouse": r.warehouse, "sku": r.sku, "on_hand": r.on_hand,
                                 "reserved": r.reserved, "available": r.on_hand - r.reserved}
                                for r in rows[:limit]],
                      "truncated": len(rows) > limit})


# -- rules ------------------------------------------------------------------------
def _ruleset_info(rs: Ruleset) -> dict[str, Any]:
    return {"name": rs.name, "version": rs.version, "rules": len(rs.rules), "mode": rs.mode,
            "description": rs.description, "file": Path(rs.path).name}


def _rulesets() -> list[dict[str, Any]]:
    return [_ruleset_info(rs) for _, rs in sorted(_oms().rulebook.rulesets.items())]


@bp.get("/api/rules")
@requires(READ)
def rules() -> Response:
    return _json({"rulesets": _rulesets()})


@bp.post("/api/rules/reload")
@requires(ADMIN)
def reload_rules() -> Response:
    rulebook = _oms().rulebook
    before = {name: rs.version for name, rs in rulebook.rulesets.items()}
    try:
        names = rulebook.reload()
    except RulesetInvalid as exc:
        log.warning("rules reload by %s refused: %d error(s)", _actor(), len(exc.errors))
        raise
    after = {name: rs.version for name, rs in rulebook.rulesets.items()}
    changed = sorted(n for n in after if before.get(n) != after[n])
    log.info("rules reloaded by %s; changed: %s", _actor(), ", ".join(changed) or "none")
    return _json({"reloaded": names, "changed": changed, "removed": sorted(set(before) - set(after)),
                  "rulesets": _rulesets()})


# -- errors -----------------------------------------------------------------------
def _api_error(exc: ApiError) -> Response:
    return _json({"error": exc.message, **exc.extra}, exc.status, exc.headers)


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        message = f"the request body is larger than the limit of {MAX_PAYLOAD_BYTES:,} bytes"
    else:
        message = exc.description or exc.name
    # Keep headers such as Allow on a 405; the body is ours.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return _json({"error": message}, exc.code or 500, headers)


def _not_found(exc: OrderNotFound) -> Response:
    return _json({"error": str(exc).strip("'\"")}, 404)


def _illegal(exc: IllegalTransition) -> Response:
    return _json({"error": str(exc), "order": exc.order, "state": exc.state, "event": exc.event}, 409)


def _refused(exc: CommandError) -> Response:
    return _json({"error": str(exc)}, 409)


def _too_large(exc: PayloadTooLarge) -> Response:
    return _json({"error": str(exc)}, 413)


def _invalid_rules(exc: RulesetInvalid) -> Response:
    return _json({"error": f"the rules did not validate ({len(exc.errors)} error(s)); the rules in force are "
                           "unchanged",
                  "errors": [{"file": e.file, "line": e.line, "rule": e.rule, "message": e.message}
                             for e in exc.errors]}, 422)


def _internal(exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return _json({"error": "internal server error; the details are in the server log"}, 500)


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
    app.register_blueprint(bp)

    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OrderNotFound, _not_found)
    app.register_error_handler(IllegalTransition, _illegal)
    app.register_error_handler(CommandError, _refused)
    app.register_error_handler(PayloadTooLarge, _too_large)
    app.register_error_handler(RulesetInvalid, _invalid_rules)
    app.register_error_handler(Exception, _internal)

    app.wsgi_app = _OneAtATime(app.wsgi_app)  # type: ignore[method-assign]
    return app

"""The audit log: every change an authenticated caller asks of the admin API, answered or refused.

:func:`install` adds an ``after_request`` hook that writes one ``audit_log`` row per request that is not a
read (GET, HEAD, OPTIONS) and whose caller's token was known (``g.principal``, set by
:func:`oms_engine.web.auth.requires`): who (actor and role), what (``action``: the method and the route,
``POST /api/orders/{number}/release``; ``target``: the path's first parameter, the order or case or token
acted on), when, the request body with secret-looking fields masked and capped, the status answered, and
what the view said the thing was before and after (:func:`before` and :func:`after`; null when it said
nothing). Refusals are recorded too (403, 404, 409...), anonymous requests (401) are not: nobody to name.

The row is written after the view's own transaction, in one of its own: a failure to write it is logged
and the answer goes out as it was. A signed webhook has no principal and is not recorded here (the channel's
delivery is stored with the order).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request

from ..clock import utcnow
from ..storage.models import AuditEntry
from .auth import Principal

log = logging.getLogger("oms.api")

READS = frozenset({"GET", "HEAD", "OPTIONS"})
# The request body kept: enough to tell what was asked, not a copy of a master-data import.
MAX_REQUEST_CHARS = 4096
# What a view says a thing was and became: an order's summary, a token's listing... not a whole story.
MAX_STATE_CHARS = 65536
MASK = "***"
_MAX_PARSED_BYTES = 256 * 1024
# Field names whose values are never kept: compared without case or separators ("apiKey", "api_key", ...).
_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
                 "credential", "signature", "authorization", "cookie", "cvv", "cvc", "cardnumber", "iban")
_SECRET_NAMES = frozenset({"pass", "pin", "pwd", "auth", "key"})
_SEPARATORS = re.compile(r"[^a-z0-9]")
_RULE_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def install(app: Flask) -> None:
    app.after_request(_record)


def before(state: Any) -> None:
    """What the thing the request changes was, for the audit entry (a JSON-able value)."""
    g.audit_before = state


def after(state: Any) -> None:
    """What it became."""
    g.audit_after = state


def secret_name(name: str) -> bool:
    flat = _SEPARATORS.sub("", name.lower())
    return flat in _SECRET_NAMES or any(word in flat for word in _SECRET_WORDS)


def masked(value: Any) -> Any:
    """``value`` with the value of every secret-looking field, at any depth, replaced by ``***``."""
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and secret_name(k) else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and value.startswith("oms_") and len(value) > 40:
        return MASK   # one of our own tokens, whatever the field is called
    return value


def capped(value: Any, limit: int) -> Any:
    """``value`` if its JSON is within ``limit`` characters; else its JSON's beginning, marked as cut."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= limit:
        # Through JSON and back: dates and decimals a view handed over become what the column can hold.
        return json.loads(text)
    return {"truncated": True, "chars": len(text), "head": text[:limit]}


def action_of(method: str, rule: str) -> str:
    """``POST /api/orders/<number>/release`` -> ``POST /api/orders/{number}/release``."""
    return f"{method} {_RULE_PARAM.sub(lambda m: '{' + m.group(1) + '}', rule)}"


def _request_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    if len(raw) > _MAX_PARSED_BYTES:
        # Parsing megabytes to keep four kilobytes of them would slow every large request down.
        return {"truncated": True, "bytes": len(raw)}
    try:
        return capped(masked(json.loads(raw)), MAX_REQUEST_CHARS)
    except ValueError:
        # Not JSON (or not text): its size says enough, its content may be anything.
        return {"not_json": True, "bytes": len(raw), "content_type": (request.content_type or "")[:100]}


def _target_and_action() -> tuple[str, str]:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    args = dict(request.view_args or {})
    names = _RULE_PARAM.findall(rule)
    if not names:
        return "", action_of(request.method, rule)
    # The first parameter is what is acted on; the others (an after-sales case's action) say how, so they
    # are written into the action: POST /api/aftersales/{case}/approve.
    target, rest = str(args.get(names[0], ""))[:200], names[1:]
    text = action_of(request.method, rule)
    for name in rest:
        text = text.replace("{" + name + "}", str(args.get(name, "")), 1)
    return target, text[:200]


def _request_id() -> str:
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _record(response: Response) -> Response:
    if request.method in READS:
        return response
    principal: Principal | None = g.get("principal")
    if principal is None or response.status_code == 401:
        return response
    try:
        target, action = _target_and_action()
        entry = AuditEntry(at=utcnow(), actor=principal.actor[:100], role=principal.role, action=action,
                           target=target, request=_request_body(), status=response.status_code,
                           before=_state("audit_before"), after=_state("audit_after"), request_id=_request_id())
        with current_app.extensions["oms"].db.session() as s:
            s.add(entry)
    except Exception:
        # The change (or refusal) stands and its answer goes out: a missing audit row is for the log to show.
        log.exception("audit entry not written for %s %s by %s (status %d)", request.method, request.path,
                      principal.actor, response.status_code)
    return response


def _state(key: str) -> Any:
    if key not in g:
        return None
    return capped(masked(g.get(key)), MAX_STATE_CHARS)

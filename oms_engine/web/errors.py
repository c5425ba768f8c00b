"""API errors: every refusal is RFC 9457 problem+json with the right status, never a traceback.

A problem is ``{"type", "title", "status", "detail"}`` plus members of its
own: ``field`` (the offending field or parameter, when one is to blame),
``errors`` (every problem of a body that has several, each with its
``field``), and what a kind of problem tells (the order, state and event of
an illegal transition). ``type`` names the kind of problem, stable for a
client to branch on: ``urn:oms:problem:<kind>``; a plain HTTP error (404 of
an unknown path, 405) is ``about:blank`` with the status's own title.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import CaseNotFound, CommandError, InvoiceNotFound, OrderNotFound
from ..orders.intake import MAX_PAYLOAD_BYTES, PayloadTooLarge
from ..orders.machine import IllegalTransition
from ..rules import RulesetInvalid

log = logging.getLogger("oms.api")

PROBLEM_JSON = "application/problem+json"
PREFIX = "urn:oms:problem:"

# The kind of problem each status is when nothing more precise is known.
_KIND_BY_STATUS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
                   409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "unprocessable",
                   429: "too-many-requests", 500: "internal", 503: "unavailable"}


class ApiError(Exception):
    """A request the API refuses, with the status and the detail the caller sees.

    ``kind`` is the problem type's last part (``illegal-transition``); left
    out, the status decides it. ``extra`` are further members of the problem.
    """

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 kind: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = dict(headers or {})
        self.kind = kind
        self.extra = extra


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def problem_document(status: int, detail: str, *, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    kind = kind or _KIND_BY_STATUS.get(status)
    title = _title(status)
    return {"type": PREFIX + kind if kind else "about:blank", "title": title, "status": status, "detail": detail,
            **extra}


def problem(status: int, detail: str, *, kind: str | None = None, headers: Mapping[str, str] | None = None,
            **extra: Any) -> Response:
    resp = Response(orjson.dumps(problem_document(status, detail, kind=kind, **extra)), status=status,
                    mimetype=PROBLEM_JSON)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _api_error(exc: ApiError) -> Response:
    return problem(exc.status, exc.message, kind=exc.kind, headers=exc.headers, **exc.extra)


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        detail = f"the request body is larger than the limit of {MAX_PAYLOAD_BYTES:,} bytes"
    else:
        detail = exc.description or exc.name
    # Keep headers such as Allow on a 405; the body is ours.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    resp = problem(code, detail, headers=headers)
    if code in (404, 405):
        # Nothing of ours went wrong: the path or method is simply not one the API has.
        doc = orjson.loads(resp.get_data())
        doc["type"] = "about:blank"
        resp.set_data(orjson.dumps(doc))
    return resp


def _not_found(exc: OrderNotFound | CaseNotFound | InvoiceNotFound) -> Response:
    return problem(404, str(exc))


def _illegal(exc: IllegalTransition) -> Response:
    return problem(409, str(exc), kind="illegal-transition", order=exc.order, state=exc.state, event=exc.event)


def _refused(exc: CommandError) -> Response:
    return problem(409, str(exc), kind="refused")


def _too_large(exc: PayloadTooLarge) -> Response:
    return problem(413, str(exc))


def _invalid_rules(exc: RulesetInvalid) -> Response:
    return problem(422, f"the rules did not validate ({len(exc.errors)} error(s)); the rules in force are unchanged",
                   kind="rules-invalid",
                   errors=[{"file": e.file, "line": e.line, "rule": e.rule, "message": e.message}
                           for e in exc.errors])


def _internal(exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return problem(500, "internal server error; the details are in the server log")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OrderNotFound, _not_found)
    app.register_error_handler(CaseNotFound, _not_found)
    app.register_error_handler(InvoiceNotFound, _not_found)
    app.register_error_handler(IllegalTransition, _illegal)
    app.register_error_handler(CommandError, _refused)
    app.register_error_handler(PayloadTooLarge, _too_large)
    app.register_error_handler(RulesetInvalid, _invalid_rules)
    app.register_error_handler(Exception, _internal)

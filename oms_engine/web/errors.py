"""API errors: every refusal is JSON ``{"error": ...}`` with the right status, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import CaseNotFound, CommandError, InvoiceNotFound, OrderNotFound
from ..orders.intake import MAX_PAYLOAD_BYTES, PayloadTooLarge
from ..orders.machine import IllegalTransition
from ..rules import RulesetInvalid

log = logging.getLogger("oms.api")


class ApiError(Exception):
    """A request the API refuses, with the status and the message the caller sees."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = dict(headers or {})
        self.extra = extra


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _api_error(exc: ApiError) -> Response:
    return json_response({"error": exc.message, **exc.extra}, exc.status, exc.headers)


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        message = f"the request body is larger than the limit of {MAX_PAYLOAD_BYTES:,} bytes"
    else:
        message = exc.description or exc.name
    # Keep headers such as Allow on a 405; the body is ours.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return json_response({"error": message}, exc.code or 500, headers)


def _not_found(exc: OrderNotFound | CaseNotFound | InvoiceNotFound) -> Response:
    return json_response({"error": str(exc)}, 404)


def _illegal(exc: IllegalTransition) -> Response:
    return json_response({"error": str(exc), "order": exc.order, "state": exc.state, "event": exc.event}, 409)


def _refused(exc: CommandError) -> Response:
    return json_response({"error": str(exc)}, 409)


def _too_large(exc: PayloadTooLarge) -> Response:
    return json_response({"error": str(exc)}, 413)


def _invalid_rules(exc: RulesetInvalid) -> Response:
    return json_response({"error": f"the rules did not validate ({len(exc.errors)} error(s)); the rules in force are "
                           "unchanged",
                  "errors": [{"file": e.file, "line": e.line, "rule": e.rule, "message": e.message}
                             for e in exc.errors]}, 422)


def _internal(exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return json_response({"error": "internal server error; the details are in the server log"}, 500)


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

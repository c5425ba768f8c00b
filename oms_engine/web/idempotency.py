"""Idempotency keys (Stripe-style): a POST retried with the same ``Idempotency-Key`` gets the first answer again.

A client whose connection broke after it sent "release" or "refund" cannot
know whether it was done; with a key, it sends the same request again and
gets the first answer (with ``Idempotent-Replayed: true``), and the OMS does
it once. Keys belong to the caller (a digest of its credentials): two callers'
keys never meet. The rules:

- the same key with a different request (method, path, query or body) is 422;
- while the first request is still being answered, a retry is 409 with
  Retry-After (a first request that never finished, its process killed, is
  taken over after :data:`ABANDONED`);
- an answer of 500 or more is not kept, nor a 401 or 429: the retry runs
  again; every other answer is, refusals included (a 409 stays a 409);
- keys are kept for :data:`KEPT`, then forgotten.

Requests without credentials (signed webhooks and callbacks) have replay
protection of their own and are not covered.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

from flask import Flask, Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..storage.models import IdempotentRequest
from . import auth
from .errors import ApiError

log = logging.getLogger("oms.api")

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
ABANDONED = timedelta(minutes=5)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")   # visible ASCII: a UUID, a ULID, the client's own scheme
_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Not kept: the retry must run again (a fault, credentials, the server's own load).
_NOT_KEPT = frozenset({401, 429, 503})


def install(app: Flask) -> None:
    app.before_request(_claim)
    app.after_request(_keep)


def _claim() -> Response | None:
    key = request.headers.get(HEADER)
    if key is None or request.method not in _METHODS or "Authorization" not in request.headers:
        return None
    if not _KEY.fullmatch(key):
        raise ApiError(400, f"header '{HEADER}' must be 1 to 255 visible ASCII characters", field=HEADER)
    # Only a caller who may call at all gets an answer replayed.
    auth.authenticate()
    oms = current_app.extensions["oms"]
    caller = hashlib.sha256(request.headers["Authorization"].encode("utf-8", "surrogatepass")).hexdigest()
    fingerprint = _fingerprint()
    now = oms.clock.now()
    with oms.db.session() as s:
        found = s.scalars(select(IdempotentRequest).where(IdempotentRequest.caller == caller,
                                                          IdempotentRequest.key == key)).first()
        if found is not None:
            if found.request_hash != fingerprint:
                raise ApiError(422, f"this {HEADER} was used for a different request ({found.method} {found.path}); "
                                    "use a new key for a new request", kind="idempotency-key-reused", field=HEADER)
            if found.status is not None:
                replay = Response(found.body or b"", status=found.status, content_type=found.content_type)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            if now - found.created_at < ABANDONED:
                raise ApiError(409, f"a request with this {HEADER} is still being answered; retry shortly",
                               kind="idempotency-key-in-use", headers={"Retry-After": "1"}, field=HEADER)
            log.warning("idempotency key of %s %s abandoned since %s: taken over", found.method, found.path,
                        found.created_at)
            found.created_at = now
            g.oms_idempotent = found.id
            return None
        s.execute(delete(IdempotentRequest).where(IdempotentRequest.created_at < now - KEPT))
        row = IdempotentRequest(caller=caller, key=key, method=request.method, path=request.path[:2000],
                                request_hash=fingerprint, created_at=now)
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            # Another request with this key got in between.
            raise ApiError(409, f"a request with this {HEADER} is still being answered; retry shortly",
                           kind="idempotency-key-in-use", headers={"Retry-After": "1"}, field=HEADER) from None
        g.oms_idempotent = row.id
    return None


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode("utf-8", "surrogatepass"), request.query_string,
                 request.get_data(cache=True)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _keep(response: Response) -> Response:
    ident = g.pop("oms_idempotent", None)
    if ident is None:
        return response
    oms = current_app.extensions["oms"]
    try:
        with oms.db.session() as s:
            row = s.get(IdempotentRequest, ident)
            if row is None:
                return response
            if response.status_code >= 500 or response.status_code in _NOT_KEPT:
                s.delete(row)
            else:
                row.status = response.status_code
                row.content_type = response.content_type
                row.body = response.get_data()
    except Exception:
        # The answer stands; a retry with the key would then wait out ABANDONED and run again, which the state
        # machine makes safe.
        log.exception("the answer to %s %s could not be kept for its idempotency key", request.method, request.path)
    return response

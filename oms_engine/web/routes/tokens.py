"""API tokens kept in the database, over HTTP (admin): list them, make one (its text answered once), revoke one.

The same as ``oms tokens create|list|revoke`` (oms_engine/web/tokens.py). No answer but the one to
``POST /api/tokens`` ever holds a token, and none holds its hash.
"""

from __future__ import annotations

from typing import Annotated, NoReturn

from flask import Blueprint, Response
from pydantic import Field

from .. import audit
from ..auth import ADMIN, actor, requires
from ..errors import ApiError, json_response
from ..openapi import body, operation
from ..requests import oms
from ..schemas import Answer, Body
from ..tokens import MAX_NAME, StoredTokens, TokenError, TokenNotFound

bp = Blueprint("tokens", __name__)

SHOWN_ONCE = "store this token now: it is not kept and will not be shown again"


TAGS = ["tokens"]


class TokenInfo(Answer):
    name: str
    role: str
    prefix: str


class TokenList(Answer):
    tokens: list[TokenInfo]


class TokenBody(Body):
    role: Annotated[str, Field(strict=True, min_length=1, max_length=40)]
    name: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_NAME)]
    # Its range is the service's to say (StoredTokens.create), in the same words as the CLI's.
    expires_days: Annotated[int, Field(strict=True)] | None = None


class NewToken(TokenInfo):
    token: str = Field(description="the token: shown this once, never again")
    warning: str


def _tokens() -> StoredTokens:
    return StoredTokens(oms().db)


def _refused(exc: TokenError | TokenNotFound) -> NoReturn:
    raise ApiError(exc.status if isinstance(exc, TokenError) else 404, str(exc)) from None


@bp.get("/api/tokens")
@requires(ADMIN)
@operation(answers={200: TokenList}, tags=TAGS)
def list_tokens() -> Response:
    """The API tokens: name, role, prefix, dates and state; never a token or its hash."""
    return json_response({"tokens": _tokens().listing()})


@bp.post("/api/tokens")
@requires(ADMIN)
@operation(body=TokenBody, answers={201: NewToken}, tags=TAGS, refusals=(409,))
def create_token() -> Response:
    """Make a token for a role; its text is in this answer only."""
    data = body(TokenBody)
    try:
        token, info = _tokens().create(data.role, data.name, actor=actor(), expires_days=data.expires_days)
    except TokenError as exc:
        _refused(exc)
    audit.after(info)
    # The one answer that holds a token: no cache along the way may keep it.
    return json_response({"token": token, **info, "warning": SHOWN_ONCE}, 201,
                         headers={"Cache-Control": "no-store"})


@bp.post("/api/tokens/<name>/revoke")
@requires(ADMIN)
@operation(body=Body, answers={200: TokenInfo}, tags=TAGS, refusals=(404, 409))
def revoke_token(name: str) -> Response:
    """Revoke a token, by its name or prefix: refused from now on."""
    try:
        was, now = _tokens().revoke(name, actor=actor())
    except (TokenError, TokenNotFound) as exc:
        _refused(exc)
    audit.before(was)
    audit.after(now)
    return json_response(now)

"""Who is using the console: sign-in with an API token, the session that remembers it, CSRF, and roles.

The token is checked once, at sign-in, through the same lookup the API uses
(:class:`oms_engine.web.auth.Principals`), and never kept: the session cookie
(signed, not encrypted) holds the principal (role and actor), when it signed
in, a CSRF token, and for a token made by ``oms tokens create`` the id of its
database row. On every request:

* a session older than :data:`SESSION_HOURS` is over, whatever the token;
* a stored token's row is read again, so revoking it (or its expiry) ends
  every console session it opened at the next click, in every process;
* a token from the environment cannot be read back from anything the session
  holds (the cookie is readable by its holder, so it carries no digest that a
  short environment token could be guessed from); its sessions end with the
  hours above, or at once for everyone when the console secret changes.

The cookie is HttpOnly, SameSite=Strict, Secure when the request came over
https, and scoped to ``/console``. It is signed with ``app.secret_key``; an app
without one gets a random key, made at the first console request of the first
process and kept in ``oms_meta``, so every process and restart agrees (the
same pattern as the tracking links' secret).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, abort, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..clock import utcnow
from ..storage.db import Database
from ..storage.models import ApiToken, Meta
from ..web.auth import ACT, ADMIN, READ, RULES, Principal, Principals
from ..web.tokens import digest

SECRET_KEY = "console_secret"
COOKIE = "oms_console"
SESSION_HOURS = 12
CSRF_FIELD = "csrf"

_KEY_LOCK = threading.Lock()


# -- the signing key and the cookie ------------------------------------------------------------------------------
def stored_secret(db: Database) -> str:
    """The console's signing key: made once, kept in the database, so every process signs and checks alike."""
    with db.read() as s:
        found = s.scalar(select(Meta.value).where(Meta.key == SECRET_KEY))
    if found is not None:
        return str(found)
    try:
        with db.session() as s:
            s.add(Meta(key=SECRET_KEY, value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another process made it first: theirs is the one
    with db.read() as s:
        found = s.scalar(select(Meta.value).where(Meta.key == SECRET_KEY))
    return str(found)


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the console's cookie: its own name, path and salt, never cross-site."""

    salt = "oms-console-session"

    def get_cookie_name(self, app: Flask) -> str:
        return COOKIE

    def get_cookie_path(self, app: Flask) -> str:
        return "/console"

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def get_cookie_secure(self, app: Flask) -> bool:
        # Per request: the same server may be reached over https (through a proxy that says so) and on loopback.
        return request.is_secure

    def get_signing_serializer(self, app: Flask) -> Any:
        # The key is read (or made) at the first console request, not when the app is made: an API that nobody
        # opens the console of never writes it.
        if not app.secret_key:
            with _KEY_LOCK:
                if not app.secret_key:
                    app.secret_key = stored_secret(app.extensions["oms"].db)
        return super().get_signing_serializer(app)

    def open_session(self, app: Flask, request: Request) -> Any:
        # The API shares the app: its requests never need (or read) a console cookie.
        if not request.path.startswith("/console"):
            return self.null_session_class()
        return super().open_session(app, request)


def configure(app: Flask) -> None:
    app.session_interface = ConsoleSessions()


# -- signing in and out ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    since: float           # epoch seconds
    token_id: int | None   # a stored token's row; None: a token from the environment


def _principals() -> Principals:
    found: Principals = current_app.extensions["oms_api_tokens"]
    return found


def _stored_token_id(token: str) -> int | None:
    """The database row of a stored token (None for one from the environment, which the table answers first)."""
    principals = _principals()
    if principals.table.lookup(token) is not None or principals.stored is None:
        return None
    with current_app.extensions["oms"].db.read() as s:
        found: int | None = s.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest(token)))
    return found


def sign_in(token: str) -> Principal | None:
    """Start a session for ``token`` if it is live and may read; None (and no session) otherwise."""
    token = token.strip()
    if not token or len(token) > 512:
        return None
    principal = _principals().lookup(token)
    if principal is None or principal.role not in READ:
        return None
    session.clear()   # a fresh session: nothing of the anonymous one (its CSRF token) carries over
    session.update({"role": principal.role, "actor": principal.actor, "since": time.time(),
                    "tid": _stored_token_id(token), CSRF_FIELD: secrets.token_urlsafe(32)})
    return principal


def sign_out() -> None:
    session.clear()


def _still_live(token_id: int, role: str) -> bool:
    stored = _principals().stored
    now: Callable[[], Any] = getattr(stored, "now", utcnow)
    with current_app.extensions["oms"].db.read() as s:
        row = s.execute(select(ApiToken.role, ApiToken.revoked_at, ApiToken.expires_at)
                        .where(ApiToken.id == token_id)).first()
    if row is None or row.revoked_at is not None or row.role != role:
        return False
    return row.expires_at is None or row.expires_at > now()


def signed_in() -> SignedIn | None:
    """The session's principal, checked again now; None when there is none or it is over (then it is cleared)."""
    if "signed_in" in g:
        found: SignedIn | None = g.signed_in
        return found
    found = _check()
    g.signed_in = found
    if found is not None:
        # The audit log (web/audit.py) records every change a known caller asks for: the console's too.
        g.principal = found.principal
    return found


def _check() -> SignedIn | None:
    role, actor, since, tid = (session.get(k) for k in ("role", "actor", "since", "tid"))
    if not isinstance(role, str) or not isinstance(actor, str) or not isinstance(since, int | float):
        return None
    over = not 0 <= time.time() - since < SESSION_HOURS * 3600 or role not in READ
    if not over and tid is not None:
        over = not isinstance(tid, int) or not _still_live(tid, role)
    if over:
        session.clear()
        return None
    return SignedIn(Principal(role, actor), float(since), tid)


# -- what a role may do -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class May:
    """What the signed-in role may do, for the templates to show only the buttons that would work."""

    act: bool      # release and reject held orders
    rules: bool    # check, dry-run, store, activate and roll back rules
    requeue: bool  # send a dead letter again (the API's POST /api/outbox/<id>/retry: admins)

    @classmethod
    def of(cls, role: str | None) -> May:
        return cls(act=role in ACT, rules=role in RULES, requeue=role in ADMIN)


def allowed(roles: frozenset[str]) -> None:
    """A 403 page unless the signed-in role is one of ``roles``."""
    who = signed_in()
    if who is None or who.principal.role not in roles:
        abort(403)


# -- CSRF ---------------------------------------------------------------------------------------------------
def csrf_token() -> str:
    """This session's CSRF token, made on first use (a signed-out visitor's session gets one for the sign-in form)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """A 400 unless the form carries this session's CSRF token."""
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(400, description="the form is out of date or did not come from this console (no valid CSRF token); "
                               "reload the page and try again")

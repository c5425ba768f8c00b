"""API tokens kept in the database: made by an admin, shown once, kept as their sha256 only, listed, revoked.

A token is ``oms_`` and 43 random URL-safe characters (``secrets.token_urlsafe(32)``): the prefix tells it
apart from the environment's tokens and from other systems' secrets in a log or a leaked file. The database
holds its hex sha256 (what a request's token is looked up by) and its first 8 characters, to recognise it in
a list; nobody can get the token back from either. Changes made with it record the actor
``api:<role>:<name>``.

Expiry and revocation are checked on every request: a revoked or expired token is refused as an unknown
one. ``last_used_at`` is written at most once a minute per token, so a busy token costs no write per request.

Times here are the wall clock's, whatever clock the OMS runs on: a token expires in the world, not in a
simulated day.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..clock import utcnow
from ..errors import OmsError
from ..storage.models import ApiToken
from .auth import ROLES, Principal

if TYPE_CHECKING:
    from ..storage.db import Database

log = logging.getLogger("oms.api")

TOKEN_PREFIX = "oms_"
PREFIX_CHARS = 8
# last_used_at is written when it is older than this: often enough to tell a token in use from one forgotten.
TOUCH_EVERY = timedelta(minutes=1)
MAX_EXPIRES_DAYS = 3650
# The actor api:<role>:<name> fits the narrowest actor column (order_history, 64): 'api:rules_admin:' is 16.
MAX_NAME = 48
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
# An environment token's actor ends in 6 hex digits: a name like that would pass for one.
_LIKE_ENV_ACTOR = re.compile(r"[0-9a-f]{6}")
# No token is longer than this; a longer one is refused before it is hashed.
_MAX_TOKEN = 256

CREATE_HINT = "oms tokens create --role admin --name NAME"


def no_tokens_message(env_name: str) -> str:
    """What ``oms serve`` and the app say when no token at all would be accepted."""
    return (f"no API tokens: none in {env_name} and none live in the database, so every request but /health and "
            f"signed webhooks will answer 401; create one with `{CREATE_HINT}` (shown once), "
            f"or set {env_name}=<token>=<role>,...")


class TokenError(OmsError, ValueError):
    """A token the OMS will not make or revoke, and the HTTP status saying why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TokenNotFound(OmsError, LookupError):
    """No token has the name or prefix asked for."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at is not None else None


class StoredTokens:
    """The tokens in the database. ``now`` is the wall clock unless a test gives its own."""

    def __init__(self, db: Database, now: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.now = now

    # -- managing ---------------------------------------------------------------------------------------------
    def create(self, role: str, name: str, *, actor: str,
               expires_days: int | None = None) -> tuple[str, dict[str, Any]]:
        """A new token: its text (to be shown once, never again) and how it is listed."""
        if role not in ROLES:
            hint = " ('support' is now called 'operator')" if role == "support" else ""
            raise TokenError(f"unknown role '{role[:40]}'{hint}; roles: {', '.join(ROLES)}")
        name = name.strip()
        if not _NAME.fullmatch(name):
            raise TokenError(f"a token's name is 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a "
                             f"letter or digit; got '{name[:60]}'")
        if name.startswith(TOKEN_PREFIX) or _LIKE_ENV_ACTOR.fullmatch(name):
            raise TokenError(f"the name '{name}' would read like a token's prefix or an environment token's actor; "
                             "choose another")
        if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
            raise TokenError(f"expiry must be 1 to {MAX_EXPIRES_DAYS} days, got {expires_days}")
        now = self.now()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(name=name, role=role, token_hash=digest(token), prefix=token[:PREFIX_CHARS], created_at=now,
                       created_by=actor[:100],
                       expires_at=now + timedelta(days=expires_days) if expires_days is not None else None)
        try:
            with self.db.session() as s:
                same = s.scalar(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
                if same is not None:
                    raise TokenError(self._taken(same, now), status=409)
                s.add(row)
        except IntegrityError:
            # Another process made one of that name between the check and the insert.
            raise TokenError(f"a token named '{name}' exists already; revoke it first or choose another name",
                             status=409) from None
        log.info("API token '%s' (%s, %s...) created by %s", name, role, row.prefix, actor)
        return token, self._info(row, now)

    @staticmethod
    def _taken(same: ApiToken, now: datetime) -> str:
        if same.expires_at is not None and same.expires_at <= now:
            return (f"a token named '{same.name}' exists (expired {_iso(same.expires_at)}); "
                    f"revoke it first (oms tokens revoke {same.name}) or choose another name")
        return f"a token named '{same.name}' exists already; revoke it first or choose another name"

    def listing(self) -> list[dict[str, Any]]:
        """Every token, live or not, oldest first: never the token, never its hash."""
        now = self.now()
        with self.db.read() as s:
            return [self._info(t, now) for t in s.scalars(select(ApiToken).order_by(ApiToken.id))]

    def revoke(self, name_or_prefix: str, *, actor: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Revoke the token not yet revoked of this name, or whose prefix this is: how it was listed before and
        after."""
        wanted = name_or_prefix.strip()
        if not wanted:
            raise TokenError("name the token to revoke, or give its prefix")
        now = self.now()
        with self.db.session() as s:
            found = self._find(s, wanted, live=True)
            if not found:
                revoked = self._find(s, wanted, live=False)
                if revoked:
                    raise TokenError(f"token '{wanted[:60]}' is revoked already "
                                     f"({_iso(revoked[-1].revoked_at)})",
                                     status=409)
                raise TokenNotFound(f"no token named '{wanted[:60]}' or with that prefix")
            if len(found) > 1:
                raise TokenError(f"{len(found)} tokens have the prefix '{wanted[:60]}' "
                                 f"({', '.join(t.name for t in found)}); revoke one by its name", status=409)
            [token] = found
            before = self._info(token, now)
            token.revoked_at, token.revoked_by = now, actor[:100]
            after = self._info(token, now)
        log.info("API token '%s' (%s...) revoked by %s", token.name, token.prefix, actor)
        return before, after

    @staticmethod
    def _find(s: Any, wanted: str, *, live: bool) -> list[ApiToken]:
        state = ApiToken.revoked_at.is_(None) if live else ApiToken.revoked_at.is_not(None)
        named = list(s.scalars(select(ApiToken).where(ApiToken.name == wanted, state).order_by(ApiToken.id)))
        if named or not wanted.startswith(TOKEN_PREFIX):
            return named
        # A prefix as listed, or a whole token pasted in (its first characters are its prefix).
        return list(s.scalars(select(ApiToken).where(ApiToken.prefix == wanted[:PREFIX_CHARS], state)
                              .order_by(ApiToken.id)))

    def live(self) -> int:
        """How many tokens would be accepted now."""
        now = self.now()
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(ApiToken).where(
                ApiToken.revoked_at.is_(None), or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))) or 0

    @staticmethod
    def _info(t: ApiToken, now: datetime) -> dict[str, Any]:
        if t.revoked_at is not None:
            state = "revoked"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "expired"
        else:
            state = "live"
        return {"name": t.name, "role": t.role, "prefix": t.prefix, "state": state,
                "created_at": _iso(t.created_at), "created_by": t.created_by, "last_used_at": _iso(t.last_used_at),
                "expires_at": _iso(t.expires_at), "revoked_at": _iso(t.revoked_at), "revoked_by": t.revoked_by}

    # -- a request's token ------------------------------------------------------------------------------------
    def lookup(self, token: str) -> Principal | None:
        """Who a request's token is, or None: unknown, revoked and expired alike."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN:
            return None   # not one of ours: no database read for it
        given = digest(token)
        with self.db.read() as s:
            row = s.execute(select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.token_hash,
                                   ApiToken.revoked_at, ApiToken.expires_at, ApiToken.last_used_at)
                            .where(ApiToken.token_hash == given)).first()
        if row is None or not hmac.compare_digest(row.token_hash, given):
            return None
        now = self.now()
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
            self._touch(row.id, now)
        return Principal(row.role, f"api:{row.role}:{row.name}")

    def _touch(self, token_id: int, now: datetime) -> None:
        try:
            with self.db.session() as s:
                # The condition again: another process may have written it since it was read.
                s.execute(update(ApiToken).where(
                    ApiToken.id == token_id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY))
                    .values(last_used_at=now))
        except Exception:
            # When a token was last used is worth a line in the log, not a refused request.
            log.warning("last use of API token %d not recorded", token_id, exc_info=True)

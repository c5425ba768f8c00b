"""Who is calling: bearer tokens, roles, and the actor recorded in an order's history.

Tokens come from two places, looked up in this order:

* the environment variable named by ``config.api_tokens_env``
  (``"tok1=admin,tok2=operator"``), or ``create_app(tokens=...)`` instead.
  Changes record the actor ``api:<role>:<first 6 hex of sha256(token)>``,
  enough to tell tokens apart in the history without letting anyone reuse one;
* the database (``oms tokens create``, :mod:`oms_engine.web.tokens`), where
  only the token's sha256 is kept. Their actor is ``api:<role>:<name>``.

``support`` is the name ``operator`` had before: still accepted in the
environment, as an alias. Such a token keeps the actor ``api:support:...`` it
always had, so that its history reads as one; it may do what an operator may.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

from flask import current_app, g, request

from ..config import ConfigError
from .errors import ApiError

ROLES = ("viewer", "operator", "rules_admin", "admin", "integration")
# Older names still accepted in the environment's tokens, and the role each now is.
ALIASES = {"support": "operator"}
READ = frozenset({"viewer", "operator", "rules_admin", "admin"})
ACT = frozenset({"operator", "admin"})
# The rules: reload, activate, roll back, candidates and dry runs.
RULES = frozenset({"rules_admin", "admin"})
ADMIN = frozenset({"admin"})
CALLBACK = frozenset({"integration", "admin"})

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Principal:
    role: str
    actor: str


class TokenLookup(Protocol):
    def lookup(self, token: str) -> Principal | None: ...

    def live(self) -> int: ...


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def actor_for(role: str, token: str) -> str:
    return f"api:{role}:{_digest(token).hex()[:6]}"


def canonical_role(role: str) -> str:
    """The role a configured name stands for (``support`` -> ``operator``); unknown names are returned as given."""
    return ALIASES.get(role, role)


def parse_tokens(spec: str) -> dict[str, str]:
    """``"tok1=admin, tok2=operator"`` -> {token: role}; a malformed entry stops the start-up."""
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
    """The tokens given in the environment (or to ``create_app``), held as digests."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for token, role in tokens.items():
            if canonical_role(role) not in ROLES:
                # Never echo the token: the message ends up in logs.
                raise ConfigError(f"API token with unknown role '{role}' (roles: {', '.join(ROLES)}; "
                                  f"'support' is accepted for operator)")
            if not token:
                raise ConfigError("an API token must not be empty")
            # The actor keeps the name configured, so a renamed role does not split a token's history in two.
            self._entries.append((_digest(token), Principal(canonical_role(role), actor_for(role, token))))

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


class Principals:
    """Every place a token may come from: the environment's first (no database read), then the stored ones."""

    def __init__(self, table: TokenTable, stored: TokenLookup | None = None) -> None:
        self.table, self.stored = table, stored

    def lookup(self, token: str) -> Principal | None:
        found = self.table.lookup(token)
        if found is None and self.stored is not None:
            found = self.stored.lookup(token)
        return found

    def any_live(self) -> bool:
        """Whether any token at all would be accepted now."""
        return len(self.table) > 0 or (self.stored is not None and self.stored.live() > 0)


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
        # One answer for unknown, revoked and expired tokens: which it is is no business of whoever holds it.
        raise ApiError(401, "unknown API token", headers=_challenge("invalid_token"))
    return principal


def requires(roles: frozenset[str]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = _authenticate()
            # Known before the role is checked: a refused change is audited too (web/audit.py).
            g.principal = principal
            if principal.role not in roles:
                raise ApiError(403, f"role '{principal.role}' may not do this; it needs one of: "
                                    f"{', '.join(r for r in ROLES if r in roles)}")
            return view(*args, **kwargs)
        # The roles, for the OpenAPI document (web/openapi.py) and for whoever lists who may do what.
        wrapper.oms_roles = roles  # type: ignore[attr-defined]
        return wrapper
    return decorate


def authenticate() -> Principal:
    """The caller, or a 401: for code that must know the caller before a view's own check (idempotency keys)."""
    return _authenticate()


def actor() -> str:
    principal: Principal = g.principal
    return principal.actor


def role() -> str:
    """The caller's role (inside a view that ``requires`` one)."""
    principal: Principal = g.principal
    return principal.role

"""Who is calling: bearer tokens, roles, and the actor recorded in an order's history.

Tokens come from ``create_app(tokens=...)`` or, by default, from the
environment variable named by ``config.api_tokens_env``
(``"tok1=admin,tok2=support"``). The token itself is never stored: changes
record the actor ``api:<role>:<first 6 hex of sha256(token)>``, enough to tell
tokens apart in the history without letting anyone reuse one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from flask import current_app, g, request

from ..config import ConfigError
from .errors import ApiError

ROLES = ("viewer", "support", "admin", "integration")
READ = frozenset({"viewer", "support", "admin"})
ACT = frozenset({"support", "admin"})
ADMIN = frozenset({"admin"})
CALLBACK = frozenset({"integration", "admin"})

P = ParamSpec("P")
R = TypeVar("R")


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


def actor() -> str:
    principal: Principal = g.principal
    return principal.actor


def role() -> str:
    """The caller's role (inside a view that ``requires`` one)."""
    principal: Principal = g.principal
    return principal.role

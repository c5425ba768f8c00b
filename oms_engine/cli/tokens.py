"""``oms tokens create|list|revoke``: the admin API's bearer tokens kept in the database (oms_engine/web/tokens.py).

A token is printed once, when it is made, and never again: the database keeps only its sha256.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
from rich.table import Table

from .root import Ctx, console, errors_to_exit, main

if TYPE_CHECKING:
    from ..web.tokens import StoredTokens

# Spelt out rather than imported: the roles live with the admin API (web/auth.py, ROLES), which every other
# command would then import at start. An unknown role is refused by the service with the real list.
ROLE_HELP = "viewer, operator, rules_admin, admin or integration (callbacks only)"


@contextmanager
def _stored(c: Ctx) -> Iterator[StoredTokens]:
    # The database alone: no plugins or rules to load, so tokens can be managed even while those are broken.
    from ..storage.db import Database
    from ..storage.migrate import require_current
    from ..web.tokens import StoredTokens
    db = Database(c.config.resolved_database_url())
    try:
        require_current(db.engine)
        yield StoredTokens(db)
    finally:
        db.dispose()


@main.group()
def tokens() -> None:
    """Bearer tokens for the admin API: make one (shown once), list them, revoke one."""


@tokens.command("create")
@click.option("--role", required=True, help=ROLE_HELP)
@click.option("--name", required=True, help="a label of your own, unique among live tokens; changes made with the "
                                            "token record the actor api:<role>:<name>")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None,
              help="refused after this many days (default: never)")
@click.option("--actor", default="cli", show_default=True, help="who made it, as the token's list shows")
@click.pass_obj
@errors_to_exit
def tokens_create(c: Ctx, role: str, name: str, expires_days: int | None, actor: str) -> None:
    """Make a token and print it, once: only its hash is kept."""
    with _stored(c) as stored:
        token, info = stored.create(role, name, actor=actor, expires_days=expires_days)
    # The token alone on stdout (TOKEN=$(oms tokens create ...)); what to know about it on stderr.
    click.echo(token)
    expires = f", expires {info['expires_at']}" if info["expires_at"] else ""
    click.echo(f"token '{info['name']}' created (role {info['role']}, prefix {info['prefix']}{expires}). "
               "Store it now: it is not kept and will not be shown again.", err=True)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@errors_to_exit
def tokens_list(c: Ctx, as_json: bool) -> None:
    """Every token, live, expired or revoked, oldest first (never the token or its hash)."""
    with _stored(c) as stored:
        rows = stored.listing()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    t = Table("name", "role", "prefix", "state", "created", "by", "last used", "expires", "revoked",
              title=f"API tokens ({len(rows)})")
    for r in rows:
        t.add_row(r["name"], r["role"], r["prefix"], r["state"], _short(r["created_at"]), r["created_by"],
                  _short(r["last_used_at"]), _short(r["expires_at"]),
                  f"{_short(r['revoked_at'])} by {r['revoked_by']}" if r["revoked_at"] else "")
    console.print(t)


def _short(at: str | None) -> str:
    return at[:16].replace("T", " ") if at else ""


@tokens.command("revoke")
@click.argument("name_or_prefix")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
@errors_to_exit
def tokens_revoke(c: Ctx, name_or_prefix: str, actor: str) -> None:
    """Revoke a token by its name or its prefix: refused from its next request on."""
    with _stored(c) as stored:
        _, after = stored.revoke(name_or_prefix, actor=actor)
    click.echo(f"token '{after['name']}' ({after['role']}, {after['prefix']}) revoked")

"""``oms tokens create|list|revoke``: the token printed once and never again, only its hash kept."""

from __future__ import annotations

import json

from oms_engine.web.auth import ROLES
from oms_engine.web.tokens import StoredTokens, digest
from tests.support.cli import Cli


def test_create_prints_the_token_once_list_never_shows_it_revoke_ends_it(cli: Cli) -> None:
    made = cli("tokens", "create", "--role", "admin", "--name", "ops-lead", "--expires-days", "30",
               "--actor", "alice")
    token = made.stdout.strip()
    # stdout is the token alone (TOKEN=$(oms tokens create ...)); the warning goes to stderr
    assert made.stdout.count("\n") == 1 and token.startswith("oms_") and len(token) == 4 + 43
    assert "will not be shown again" in made.stderr and token[:8] in made.stderr and token not in made.stderr
    assert "expires" in made.stderr

    listed = cli("tokens", "list", "--json")
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["role"], row["state"], row["prefix"], row["created_by"]) == (
        "ops-lead", "admin", "live", token[:8], "alice")
    table = cli("tokens", "list")
    for shown in (listed.stdout + listed.stderr, table.stdout + table.stderr):
        assert token not in shown and digest(token) not in shown and token[8:20] not in shown
    assert "ops-lead" in table.stdout and "live" in table.stdout

    oms = cli.oms()
    try:
        principal = StoredTokens(oms.db).lookup(token)
        assert principal is not None and principal.actor == "api:admin:ops-lead"
    finally:
        oms.close()

    gone = cli("tokens", "revoke", token[:8])       # by its prefix, as the list shows it
    assert "ops-lead" in gone.stdout and "revoked" in gone.stdout
    [row] = json.loads(cli("tokens", "list", "--json").stdout)
    assert (row["state"], row["revoked_by"]) == ("revoked", "cli")
    again = cli("tokens", "revoke", "ops-lead", ok=False)
    assert "revoked already" in again.stderr


def test_refusals_are_one_clear_line(cli: Cli) -> None:
    cli("tokens", "create", "--role", "viewer", "--name", "wall")
    for args, words in ((("--role", "viewer", "--name", "wall"), "exists already"),
                        (("--role", "support", "--name", "x"), "now called 'operator'"),
                        (("--role", "boss", "--name", "x"), ", ".join(ROLES)),
                        (("--role", "viewer", "--name", "two words"), "a token's name is"),
                        (("--role", "viewer", "--name", "x", "--expires-days", "0"), "--expires-days")):
        p = cli("tokens", "create", *args, ok=False)
        assert words in p.stderr, (args, p.stderr)
        assert p.stdout == ""                       # no token printed for a refused one
    p = cli("tokens", "revoke", "nobody", ok=False)
    assert p.returncode == 1 and "no token named 'nobody'" in p.stderr
    assert len(json.loads(cli("tokens", "list", "--json").stdout)) == 1


def test_every_role_is_offered_in_the_help(cli: Cli) -> None:
    shown = cli("tokens", "create", "--help").stdout
    assert all(role in shown for role in ROLES)

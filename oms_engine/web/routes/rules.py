"""The rules in force, their stored versions and changes; publishing, activating and rolling back (admin).

A change made here is stored in the database and picked up by every process
(workers on any machine) between pipeline passes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request

from ...decisions.versions import Change, RuleVersionError
from ...rules import Ruleset, RulesetInvalid
from ..auth import ADMIN, READ, actor, requires
from ..errors import ApiError, json_response
from ..requests import body_object, oms, string_field

log = logging.getLogger("oms.api")
bp = Blueprint("rules", __name__)


def _ruleset_info(rs: Ruleset) -> dict[str, Any]:
    return {"name": rs.name, "version": rs.version, "rules": len(rs.rules), "mode": rs.mode,
            "description": rs.description, "file": Path(rs.path).name.split("@")[0]}


def _rulesets() -> list[dict[str, Any]]:
    return [_ruleset_info(rs) for _, rs in sorted(oms().rulebook.rulesets.items())]


def _change(change: Change, **extra: Any) -> Response:
    return json_response({"change": change.id, "changed": sorted(change.changed),
                          "versions": {k: {"from": a, "to": b} for k, (a, b) in sorted(change.changed.items())},
                          "rulesets": _rulesets(), **extra})


@bp.get("/api/rules")
@requires(READ)
def rules() -> Response:
    oms().rules.refresh()
    return json_response({"rulesets": _rulesets()})


@bp.get("/api/rules/versions")
@requires(READ)
def versions() -> Response:
    return json_response({"versions": oms().rules.versions(request.args.get("ruleset") or None),
                          "changes": oms().rules.changes()})


@bp.post("/api/rules/reload")
@requires(ADMIN)
def reload_rules() -> Response:
    """Publish the rules directory: validated as a set, stored, active in every process."""
    note = string_field(body_object(("note",), optional=True), "note", required=False, max_len=2000)
    before = set(oms().rulebook.rulesets)
    try:
        change = oms().rules.publish_dir(actor=actor(), note=note)
    except RulesetInvalid as exc:
        log.warning("rules reload by %s refused: %d error(s)", actor(), len(exc.errors))
        raise
    log.info("rules reloaded by %s; change %s: %s", actor(), change.id, ", ".join(change.changed) or "none")
    return _change(change, reloaded=sorted(oms().rulebook.rulesets),
                   removed=sorted(before - set(oms().rulebook.rulesets)))


@bp.post("/api/rules/activate")
@requires(ADMIN)
def activate() -> Response:
    version = string_field(body_object(("version",)), "version", required=True, max_len=200)
    try:
        return _change(oms().rules.activate(version, actor=actor()))
    except RuleVersionError as exc:
        raise ApiError(404, str(exc)) from None


@bp.post("/api/rules/rollback")
@requires(ADMIN)
def rollback() -> Response:
    body_object((), optional=True)
    try:
        return _change(oms().rules.rollback(actor=actor()))
    except RuleVersionError as exc:
        raise ApiError(409, str(exc)) from None

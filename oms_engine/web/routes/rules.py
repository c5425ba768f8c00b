"""The rules in force, their stored versions and changes; publishing, activating and rolling back (admin);
checking, dry-running and storing a candidate ruleset (admin).

A change made here is stored in the database and picked up by every process
(workers on any machine) between pipeline passes. A candidate (the YAML text
of one ruleset, in the body) is checked or dry-run without being stored; stored,
it is a version like any other, active only once ``/api/rules/activate`` says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from flask import Blueprint, Response
from pydantic import BeforeValidator, Field

from ...decisions.dryrun import DEFAULT_LAST, MAX_LAST, candidate_tests, dry_run, load_candidate, tests_dict
from ...decisions.versions import Change, RuleVersionError
from ...rules import Ruleset, RulesetInvalid
from .. import audit
from ..auth import READ, RULES, actor, requires
from ..errors import ApiError, json_response
from ..openapi import body, operation, query
from ..requests import oms
from ..schemas import Answer, Body, NoteBody, Query, Text

log = logging.getLogger("oms.api")
bp = Blueprint("rules", __name__)
TAGS = ["rules"]


class RulesetInfo(Answer):
    name: str
    version: str
    rules: int
    mode: str
    file: str


class RulesetList(Answer):
    rulesets: list[RulesetInfo]


class VersionsQuery(Query):
    ruleset: Text | None = Field(None, description="one ruleset's versions only")


class Versions(Answer):
    versions: list[dict[str, Any]]
    changes: list[dict[str, Any]]


class ChangeMade(RulesetList):
    change: int | None = Field(description="the change's id; null when nothing changed")
    changed: list[str]
    versions: dict[str, dict[str, str | None]]


class ActivateBody(Body):
    version: Annotated[str, Field(strict=True, min_length=1, max_length=200,
                                  description="a version's hash (a prefix will do) or RULESET@HASH")]


def _yaml_text(value: object) -> object:
    # Exactly as sent: stripping it would move every line its errors name and change its version.
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


class CandidateBody(Body):
    model_config = Body.model_config | {"str_strip_whitespace": False}
    ruleset_yaml: Annotated[str, Field(strict=True, max_length=1_000_000), BeforeValidator(_yaml_text)]
    file: Annotated[str, Field(strict=True, max_length=200)] = "candidate.yaml"


class DryRunBody(CandidateBody):
    last: Annotated[int, Field(strict=True, ge=1, le=MAX_LAST)] = DEFAULT_LAST


class CandidateChecked(RulesetInfo):
    valid: bool
    active_version: str | None
    tests: Any


class DryRunCounts(Answer):
    decisions: int
    evaluated: int
    changed: int
    unchanged: int
    errors: int


class DryRunReport(Answer):
    """What a candidate would change: per changed decision, the order and its decision before and after."""

    ruleset: str
    version: str
    active_version: str | None
    last: int
    counts: DryRunCounts
    changed: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class CandidateStored(Answer):
    ruleset: str
    version: str
    stored: bool
    activate: dict[str, str]


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
@operation(answers={200: RulesetList}, tags=TAGS)
def rules() -> Response:
    """The rulesets in force, with their versions."""
    oms().rules.refresh()
    return json_response({"rulesets": _rulesets()})


@bp.get("/api/rules/versions")
@requires(READ)
@operation(query=VersionsQuery, answers={200: Versions}, tags=TAGS)
def versions() -> Response:
    """Stored versions (who activated each, when) and the changes of the rules in force."""
    return json_response({"versions": oms().rules.versions(query(VersionsQuery).ruleset or None),
                          "changes": oms().rules.changes()})


def _in_force() -> dict[str, str]:
    return {name: rs.version for name, rs in sorted(oms().rulebook.rulesets.items())}


@bp.post("/api/rules/reload")
@requires(RULES)
@operation(body=NoteBody, answers={200: ChangeMade}, tags=TAGS, refusals=(422,))
def reload_rules() -> Response:
    """Publish the rules directory: validated as a set, stored, active in every process."""
    note = body(NoteBody).note
    audit.before(_in_force())
    before = set(oms().rulebook.rulesets)
    try:
        change = oms().rules.publish_dir(actor=actor(), note=note)
    except RulesetInvalid as exc:
        log.warning("rules reload by %s refused: %d error(s)", actor(), len(exc.errors))
        raise
    log.info("rules reloaded by %s; change %s: %s", actor(), change.id, ", ".join(change.changed) or "none")
    audit.after(_in_force())
    return _change(change, reloaded=sorted(oms().rulebook.rulesets),
                   removed=sorted(before - set(oms().rulebook.rulesets)))


@bp.post("/api/rules/activate")
@requires(RULES)
@operation(body=ActivateBody, answers={200: ChangeMade}, tags=TAGS, refusals=(404,))
def activate() -> Response:
    """Make a stored version active in every process."""
    audit.before(_in_force())
    try:
        change = oms().rules.activate(body(ActivateBody).version, actor=actor())
    except RuleVersionError as exc:
        raise ApiError(404, str(exc)) from None
    audit.after(_in_force())
    return _change(change)


@bp.post("/api/rules/rollback")
@requires(RULES)
@operation(body=Body, answers={200: ChangeMade}, tags=TAGS, refusals=(409,))
def rollback() -> Response:
    """Undo the latest change of the rules in force."""
    audit.before(_in_force())
    try:
        change = oms().rules.rollback(actor=actor())
    except RuleVersionError as exc:
        raise ApiError(409, str(exc)) from None
    audit.after(_in_force())
    return _change(change)


# -- candidates ---------------------------------------------------------------------------------------------------
@bp.post("/api/rules/candidates/check")
@requires(RULES)
@operation(body=CandidateBody, answers={200: CandidateChecked}, tags=TAGS, refusals=(422,))
def check_candidate() -> Response:
    """Validate a candidate ruleset (422 with file:line errors) and run its rule tests; nothing is stored."""
    data = body(CandidateBody)
    file = data.file.strip() or "candidate.yaml"
    rs = load_candidate(oms().rulebook, data.ruleset_yaml, file)
    tests = candidate_tests(oms().rulebook, rs)
    oms().rules.refresh()   # the version in force named below is the database's, not this process's last look
    return json_response({"valid": True, **_ruleset_info(rs), "file": file,
                          "active_version": oms().rulebook.version(rs.name), "tests": tests_dict(tests)})


@bp.post("/api/rules/dry-run")
@requires(RULES)
@operation(body=DryRunBody, answers={200: DryRunReport}, tags=TAGS, refusals=(422,))
def dry_run_candidate() -> Response:
    """Replay a candidate on the stored facts of its point's latest ``last`` decisions: what would change."""
    data = body(DryRunBody)
    report = dry_run(db=oms().db, rulebook=oms().rulebook, text=data.ruleset_yaml,
                     filename=data.file.strip() or "candidate.yaml", last=data.last)
    log.info("dry-run of %s@%s by %s: %d of %d decisions would change", report.ruleset, report.version, actor(),
             len(report.changed), report.evaluated)
    return json_response(report.to_dict())


@bp.post("/api/rules/candidates")
@requires(RULES)
@operation(body=CandidateBody, answers={200: CandidateStored, 201: CandidateStored}, tags=TAGS, refusals=(422,))
def store_candidate() -> Response:
    """Store a candidate as a version of its ruleset, not active: ``/api/rules/activate`` makes it so."""
    data = body(CandidateBody)
    row = oms().rules.store(data.ruleset_yaml, filename=data.file.strip() or "candidate.yaml", actor=actor())
    return json_response({**row, "activate": {"version": f"{row['ruleset']}@{row['version']}"}},
                         201 if row["stored"] else 200)

"""The console's pages: server-rendered HTML over the same services the API routes call.

Every page but the sign-in needs a session (:mod:`.access`); every form POST
carries the session's CSRF token; a role sees, and may press, only the buttons
the API would let its token use (viewer reads; operator releases and rejects;
rules_admin and admin change the rules; admin sends dead letters again). A
change is recorded in the order's history (or the rules' changes) with the
token's actor, and in the audit log, as it would be through the API.

Changes answer with a redirect back to the page they were made from and a
message saying what came of it (post, redirect, get): reloading never makes a
change twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from ..decisions.dryrun import DEFAULT_LAST, MAX_LAST, candidate_tests, dry_run, load_candidate, tests_dict
from ..decisions.versions import RuleVersionError
from ..engine import OMS
from ..errors import CommandError, OrderNotFound
from ..messaging.dead_letters import RequeueRefused
from ..money import format_minor
from ..orders.explain import explain
from ..orders.queries import OrderSearch, get_order, hold_queue, search_orders
from ..orders.states import State
from ..rules import RulesetInvalid
from ..statemachine import IllegalTransition
from ..web import audit
from ..web.auth import ACT, ADMIN, RULES
from ..web.errors import ApiError
from . import access, charts, reads

log = logging.getLogger("oms.console")

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

PAGE = 50
MAX_NOTE = 2000
MAX_YAML = 1_000_000
# Pages anyone may open: the sign-in form and its style sheet.
PUBLIC = frozenset({"console.login", "console.static"})
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _oms() -> OMS:
    oms: OMS = current_app.extensions["oms"]
    return oms


# -- every request ----------------------------------------------------------------------------------------------
@bp.before_request
def _gate() -> Response | None:
    if request.endpoint in PUBLIC:
        if request.method == "POST":
            access.check_csrf()
        return None
    if access.signed_in() is None:
        if request.method == "GET":
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        flash("Your session ended; sign in again and repeat what you were doing.", "error")
        return redirect(url_for("console.login"), 303)
    if request.method == "POST":
        access.check_csrf()
    return None


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "same-origin"
    if resp.mimetype == "text/html":
        # Orders, customers and money: never kept by a shared cache or the back button of a shared computer.
        resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.context_processor
def _page_context() -> dict[str, Any]:
    try:
        who = access.signed_in() if request.endpoint not in PUBLIC else None
    except Exception:
        # An error page must render even when the database that says who is signed in is the trouble.
        log.warning("console page rendered without its signed-in user", exc_info=True)
        who = None
    return {"who": who.principal if who else None, "may": access.May.of(who.principal.role if who else None),
            "csrf_token": access.csrf_token, "money": format_minor, "plain": reads.plain}


def _error_page(status: int, title: str, detail: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, title=title, detail=detail), status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    if status == 403:
        return _error_page(403, "Not for your role",
                           "Your token's role may not do this. Ask an admin for a token of a role that may.")
    return _error_page(status, exc.name, exc.description or "")


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[str, int]:
    return _error_page(exc.status, "Refused", exc.message)


@bp.errorhandler(OrderNotFound)
def _no_order(exc: OrderNotFound) -> tuple[str, int]:
    return _error_page(404, "No such order", str(exc))


@bp.errorhandler(Exception)
def _internal(exc: Exception) -> tuple[str, int]:
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return _error_page(500, "Something went wrong", "The details are in the server log.")


@bp.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str) -> Response:
    """Any other console path: the console's own 404 page (after the sign-in, so it tells a stranger nothing)."""
    abort(404, description="There is no such page in the console.")


# -- reading forms and links ------------------------------------------------------------------------------------
def _text(source: Any, name: str, limit: int = 200) -> str:
    value = source.get(name, "")
    if not isinstance(value, str):
        value = ""
    if "\x00" in value:
        abort(400, description=f"'{name}' must not contain NUL characters")
    if len(value) > limit:
        abort(400, description=f"'{name}' is longer than {limit:,} characters")
    return value.strip()


def _arg(name: str, limit: int = 200) -> str:
    return _text(request.args, name, limit)


def _back(default: str) -> str:
    """Where a form asked to go back to: a console page of this server, never anywhere else."""
    wanted = _text(request.form, "next", 2000) or _text(request.args, "next", 2000)
    parts = urlsplit(wanted)
    if wanted and not parts.scheme and not parts.netloc and "\\" not in wanted \
            and (parts.path == "/console" or parts.path.startswith("/console/")):
        return wanted
    return default


def _refused(exc: Exception) -> None:
    flash(str(exc), "error")


# -- signing in -------------------------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        if access.signed_in() is not None:
            return redirect(_back(url_for("console.dashboard")))
        return render_template("console/login.html", next=_back(""))
    principal = access.sign_in(_text(request.form, "token", 600))
    if principal is None:
        log.info("console sign-in refused from %s", request.remote_addr)
        page = render_template("console/login.html", next=_back(""),
                               error="That token is unknown, revoked or expired, or its role cannot use the console.")
        return page, 401
    log.info("console sign-in: %s", principal.actor)
    return redirect(_back(url_for("console.dashboard")), 303)


@bp.post("/logout")
def logout() -> Response:
    access.sign_out()
    flash("Signed out.", "ok")
    return redirect(url_for("console.login"), 303)


# -- the dashboard ----------------------------------------------------------------------------------------------
@bp.get("/")
def dashboard() -> str:
    f = reads.figures(_oms())
    status_link: Callable[[str], str | None] = lambda s: url_for("console.orders", status=s)  # noqa: E731
    reason_link: Callable[[str], str | None] = lambda r: url_for("console.holds", reason=r)  # noqa: E731
    return render_template(
        "console/dashboard.html", f=f, duration=reads.duration,
        by_status=charts.bars(f.orders_by_status.items(), href=status_link, limit=20),
        by_reason=charts.bars(f.holds_by_reason.items(), href=reason_link),
        by_stage=charts.bars(f.holds_by_stage.items()),
        pending=charts.bars(f.pending_by_topic.items()), dead=charts.bars(f.dead_by_topic.items()),
        late=charts.bars(f.late_by_step.items()), incidents=charts.bars(f.incidents_by_stage.items()),
        per_day=charts.columns(f.placed_per_day))


# -- the hold queue and the commands on held orders ----------------------------------------------------------------
def _hold_cursor(raw: str) -> tuple[datetime, int] | None:
    if not raw:
        return None
    at, _, ident = raw.rpartition("~")
    try:
        return datetime.fromisoformat(at), int(ident)
    except ValueError:
        abort(400, description="that page link is not one this list gave")


@bp.get("/holds")
def holds() -> str:
    reason = _arg("reason")
    after = _hold_cursor(_arg("after", 100))
    with _oms().db.read() as s:
        rows, total, last = hold_queue(s, PAGE, after=after, reason=reason or None)
        behind = reads.rules_behind(s, [r["number"] for r in rows])
    return render_template("console/holds.html", rows=rows, total=total, behind=behind, reason=reason,
                           next_after=f"{last[0].isoformat()}~{last[1]}" if last else None)


def _command(number: str, name: str) -> Response:
    access.allowed(ACT)
    note = _text(request.form, "note", MAX_NOTE)
    who = access.signed_in()
    assert who is not None
    back = _back(url_for("console.order", number=number))
    try:
        with _oms().db.read() as s:
            order = get_order(s, number)
            audit.before({"number": number, "status": order.status, "hold_reason": order.hold_reason})
        command = _oms().commands.release if name == "release" else _oms().commands.reject
        status = command(number, actor=who.principal.actor, note=note)
    except (IllegalTransition, CommandError, OrderNotFound) as exc:
        _refused(exc)
        return redirect(back, 303)
    audit.after({"number": number, "status": status})
    flash(f"Order {number} {'released' if name == 'release' else 'rejected'}: it is now {status}.", "ok")
    return redirect(back, 303)


@bp.post("/orders/<number>/release")
def release(number: str) -> Response:
    return _command(number, "release")


@bp.post("/orders/<number>/reject")
def reject(number: str) -> Response:
    return _command(number, "reject")


# -- orders -------------------------------------------------------------------------------------------------------
STATUSES = [s.value for s in State]


@bp.get("/orders")
def orders() -> Response | str:
    q, status, channel = _arg("q", 64), _arg("status", 32), _arg("channel", 32)
    if status and status not in STATUSES:
        abort(400, description=f"no status '{status}'; statuses: {', '.join(STATUSES)}")
    before = _arg("before", 20)
    if before and not before.isdigit():
        abort(400, description="that page link is not one this list gave")
    search = OrderSearch(status=State(status) if status else None, channel=channel or None, q=q or None,
                         limit=PAGE, before_id=int(before) if before else None)
    with _oms().db.read() as s:
        rows, last = search_orders(s, search)
    if len(rows) == 1 and q and not before and rows[0]["number"] == q:
        # A whole order number typed in the search box: straight to the order.
        return redirect(url_for("console.order", number=q))
    return render_template("console/orders.html", rows=rows, q=q, status=status, channel=channel,
                           statuses=STATUSES, next_before=last)


@bp.get("/orders/<number>")
def order(number: str) -> str:
    with _oms().db.read() as s:
        story = explain(s, number)
        behind = reads.rules_behind(s, [number]).get(number) if story["status"] == State.ON_HOLD else None
    return render_template("console/order.html", o=story, timeline=reads.timeline(story), behind=behind)


# -- stock --------------------------------------------------------------------------------------------------------
@bp.get("/stock")
def stock() -> str:
    warehouse, sku, raw_after = _arg("warehouse", 32), _arg("sku", 64), _arg("after", 200)
    after = None
    if raw_after:
        a_sku, sep, a_wh = raw_after.rpartition("/")   # a warehouse code has no '/'
        if not sep or not a_sku or not a_wh:
            abort(400, description="that page link is not one this list gave")
        after = (a_sku, a_wh)
    rows = _oms().stock.balances(warehouse=warehouse or None, sku=sku or None, limit=PAGE + 1, after=after)
    page, more = rows[:PAGE], len(rows) > PAGE
    with _oms().db.read() as s:
        totals = reads.warehouse_totals(s)
        currency = reads.currencies(s, (r["sku"] for r in page))
    return render_template("console/stock.html", totals=totals, rows=page, warehouse=warehouse, sku=sku,
                           currency=currency, next_after=f"{page[-1]['sku']}/{page[-1]['warehouse']}" if more else None)


# -- dead letters ----------------------------------------------------------------------------------------------
@bp.get("/dead-letters")
def dead_letters() -> str:
    target, before = _arg("target", 64), _arg("before", 20)
    if before and not before.isdigit():
        abort(400, description="that page link is not one this list gave")
    rows = _oms().dead_letters.list(target=target or None, limit=PAGE + 1, before_id=int(before) if before else None)
    page = rows[:PAGE]
    return render_template("console/dead_letters.html", rows=page, target=target,
                           next_before=page[-1]["id"] if len(rows) > PAGE else None)


@bp.post("/dead-letters/<int:message_id>/requeue")
def requeue(message_id: int) -> Response:
    access.allowed(ADMIN)
    who = access.signed_in()
    assert who is not None
    try:
        message = _oms().dead_letters.requeue(message_id, actor=who.principal.actor)
    except RequeueRefused as exc:
        _refused(exc)
    else:
        audit.after(message)
        flash(f"Message {message_id} ({message['topic']} to {message['target']}) is queued to be sent again.", "ok")
    return redirect(_back(url_for("console.dead_letters")), 303)


# -- rules ----------------------------------------------------------------------------------------------------------
def _in_force() -> dict[str, str]:
    return {name: rs.version for name, rs in sorted(_oms().rulebook.rulesets.items())}


@bp.get("/rules")
def rules() -> str:
    _oms().rules.refresh()   # the database's rules in force, not this process's last look
    rulesets = [rs for _, rs in sorted(_oms().rulebook.rulesets.items())]
    wanted = _arg("ruleset", 64)
    versions = _oms().rules.versions(wanted or None)
    by_ruleset: dict[str, list[dict[str, Any]]] = {}
    for v in versions:
        by_ruleset.setdefault(v["ruleset"], []).append(v)
    changes = _oms().rules.changes(limit=20)
    undoable = next((c for c in changes if c["rolled_back_by"] is None and c["reverts"] is None
                     and any(before for before, _ in c["entries"].values())), None)
    return render_template("console/rules.html", rulesets=rulesets, by_ruleset=by_ruleset, changes=changes,
                           undoable=undoable, wanted=wanted)


def _candidate_text() -> tuple[str, str]:
    """The candidate's YAML and file name: an uploaded file if one came, else the text box's."""
    upload = request.files.get("upload")
    filename = _text(request.form, "filename", 200)
    if upload is not None and upload.filename:
        raw = upload.read(MAX_YAML + 1)
        if len(raw) > MAX_YAML:
            abort(400, description=f"the file is larger than {MAX_YAML:,} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            abort(400, description="the file is not UTF-8 text")
        # The upload's own name, as `oms rules check` would name it: errors point into that file.
        filename = Path(upload.filename).name[:200]
    else:
        text = request.form.get("ruleset_yaml", "")
        if len(text) > MAX_YAML:
            abort(400, description=f"the rules are longer than {MAX_YAML:,} characters")
        # Browsers send a text box's lines ended with CRLF; the file it stands for has LF, and its version
        # (a content hash) and line numbers are the file's.
        text = text.replace("\r\n", "\n")
    if "\x00" in text:
        abort(400, description="the rules must not contain NUL characters")
    if not text.strip():
        abort(400, description="give the rules: upload a file or paste them in the text box")
    return text, filename or "candidate.yaml"


@bp.get("/rules/candidate")
def candidate() -> str:
    access.allowed(RULES)
    _oms().rules.refresh()
    name = _arg("ruleset", 64)
    rs = _oms().rulebook.rulesets.get(name) if name else None
    return render_template("console/candidate.html", text=rs.source if rs else "",
                           filename=f"{name}.yaml" if rs else "candidate.yaml", last=DEFAULT_LAST,
                           max_last=MAX_LAST, rulesets=sorted(_oms().rulebook.rulesets))


@bp.post("/rules/candidate")
def candidate_action() -> Response | tuple[str, int] | str:
    access.allowed(RULES)
    who = access.signed_in()
    assert who is not None
    text, filename = _candidate_text()
    action = _text(request.form, "action", 20)
    raw_last = _text(request.form, "last", 10) or str(DEFAULT_LAST)
    if not raw_last.isdigit() or not 1 <= int(raw_last) <= MAX_LAST:
        abort(400, description=f"'last' must be a whole number from 1 to {MAX_LAST:,}")
    last = int(raw_last)
    page: dict[str, Any] = {"text": text, "filename": filename, "last": last, "max_last": MAX_LAST,
                            "rulesets": sorted(_oms().rulebook.rulesets), "action": action,
                            # Test files are named relative to the rules directory, as `oms rules test` names them.
                            "rules_dir": str(_oms().rulebook.dir)}
    oms = _oms()
    try:
        if action == "check":
            rs = load_candidate(oms.rulebook, text, filename)
            oms.rules.refresh()
            page["checked"] = {"name": rs.name, "version": rs.version, "rules": len(rs.rules),
                               "active_version": oms.rulebook.version(rs.name),
                               "tests": tests_dict(candidate_tests(oms.rulebook, rs))}
        elif action == "dry-run":
            report = dry_run(db=oms.db, rulebook=oms.rulebook, text=text, filename=filename, last=last)
            log.info("console dry-run of %s@%s by %s: %d of %d decisions would change", report.ruleset,
                     report.version, who.principal.actor, len(report.changed), report.evaluated)
            page["report"] = report.to_dict()
        elif action == "store":
            row = oms.rules.store(text, filename=filename, actor=who.principal.actor)
            audit.after(row)
            flash(f"{row['ruleset']}@{row['version']} {'stored' if row['stored'] else 'was stored before'}; "
                  "it is not active: activate it below when you are ready.", "ok")
            return redirect(url_for("console.rules", ruleset=row["ruleset"], _anchor=f"v-{row['version']}"), 303)
        else:
            abort(400, description="choose check, dry-run or store")
    except RulesetInvalid as exc:
        page["errors"] = exc.errors
        return render_template("console/candidate.html", **page), 422
    return render_template("console/candidate.html", **page)


@bp.post("/rules/activate")
def activate() -> Response:
    access.allowed(RULES)
    who = access.signed_in()
    assert who is not None
    version = _text(request.form, "version", 200)
    audit.before(_in_force())
    try:
        change = _oms().rules.activate(version, actor=who.principal.actor)
    except RuleVersionError as exc:
        _refused(exc)
    except RulesetInvalid as exc:
        flash(f"{version} does not validate with the rules in force: {exc}", "error")
    else:
        audit.after(_in_force())
        _changed(change.id, change.changed)
    return redirect(_back(url_for("console.rules")), 303)


@bp.post("/rules/rollback")
def rollback() -> Response:
    access.allowed(RULES)
    who = access.signed_in()
    assert who is not None
    audit.before(_in_force())
    try:
        change = _oms().rules.rollback(actor=who.principal.actor)
    except (RuleVersionError, RulesetInvalid) as exc:
        _refused(exc)
    else:
        audit.after(_in_force())
        _changed(change.id, change.changed)
    return redirect(url_for("console.rules"), 303)


def _changed(change_id: int | None, changed: dict[str, tuple[str | None, str | None]]) -> None:
    if change_id is None:
        flash("Nothing changed: that is what is in force already.", "ok")
        return
    flash(f"Rules change {change_id}: " + "; ".join(f"{name} {a or '-'} → {b or '-'}"
                                                    for name, (a, b) in sorted(changed.items()))
          + ". Every process decides with it from its next pass.", "ok")


"""The console's pages as served: signing in with a token, what each role sees and may do, the CSRF check, the hold
queue worked from a form, the rules changed from a form, the session's end."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from oms_engine.console import access
from oms_engine.engine import OMS
from oms_engine.storage.models import AuditEntry, Meta, OutboxMessage
from oms_engine.web.tokens import StoredTokens
from tests.console.support import Console, console_app, text_of
from tests.console.world import BLOCKING, LOWER, stage
from tests.support.web import ADMIN, INTEGRATION, RULES_ADMIN, SUPPORT, VIEWER, history_rows, status_of

PAGES = ("/console/", "/console/holds", "/console/orders", "/console/stock", "/console/stock?warehouse=WH-SH",
         "/console/rules", "/console/rules?ruleset=blocking", "/console/dead-letters")
BAD_LINE = BLOCKING.splitlines().index("      customer.blacklisted: true") + 1
BROKEN = BLOCKING.replace("customer.blacklisted: true", "customer.blacklisted: {gt: yes-please}")


def _oms(console: Console) -> OMS:
    oms: OMS = console.app.extensions["oms"]
    return oms


def _in_queue(console: Console, number: str) -> bool:
    return f'id="hold-{number}"' in console.get("/console/holds").text


# -- signing in -----------------------------------------------------------------------------------------------
def test_signed_out_every_page_sends_to_the_sign_in_form(console: Console) -> None:
    assert console.get("/").headers["Location"] == "/console/"
    for path in PAGES:
        reply = console.get(path)
        assert reply.status_code == 302 and reply.headers["Location"].startswith("/console/login?next="), path
    form = console.get("/console/login")
    assert form.status_code == 200 and 'type="password" name="token"' in form.text


def test_a_token_signs_in_and_the_cookie_keeps_who_not_the_token(console: Console) -> None:
    reply = console.sign_in(VIEWER)
    assert reply.headers["Location"] == "/console/"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie, "plain http on loopback: a Secure cookie would never come back"
    kept = console.app.session_interface.get_signing_serializer(console.app).loads(console.cookie())
    assert kept["role"] == "viewer" and kept["actor"].startswith("api:viewer:")
    assert VIEWER not in repr(kept), "the token itself is never kept"
    assert "api:viewer:" in console.get("/console/").text


def test_over_https_the_cookie_is_secure(console: Console) -> None:
    csrf = console.csrf()
    reply = console.client.post("/console/login", data={"csrf": csrf, "token": VIEWER}, base_url="https://localhost")
    assert reply.status_code == 303 and "; Secure" in reply.headers["Set-Cookie"]


def test_unknown_tokens_and_integration_tokens_are_refused(console: Console) -> None:
    for token in ("no-such-token", INTEGRATION, ""):
        reply = console.post("/console/login", {"token": token})
        assert reply.status_code == 401, token
        assert "unknown, revoked or expired" in reply.text
        assert console.get("/console/holds").status_code == 302


def test_after_signing_in_the_page_asked_for_opens_and_never_another_site(console: Console) -> None:
    reply = console.post("/console/login", {"token": VIEWER, "next": "/console/stock?warehouse=WH-SH"})
    assert reply.headers["Location"] == "/console/stock?warehouse=WH-SH"
    for elsewhere in ("https://evil.example/console", "//evil.example/console", "/api/holds", "/console\\@evil"):
        console.post("/console/logout")
        reply = console.post("/console/login", {"token": VIEWER, "next": elsewhere})
        assert reply.headers["Location"] == "/console/", elsewhere


def test_signing_out_ends_the_session(console: Console) -> None:
    console.sign_in(SUPPORT)
    reply = console.post("/console/logout")
    assert reply.status_code == 303 and reply.headers["Location"] == "/console/login"
    assert console.get("/console/holds").status_code == 302


def test_revoking_a_stored_token_ends_its_sessions_at_the_next_click(console: Console) -> None:
    tokens = StoredTokens(_oms(console).db)
    token, _ = tokens.create("operator", "night-desk", actor="test")
    console.sign_in(token)
    assert "api:operator:night-desk" in console.get("/console/holds").text
    tokens.revoke("night-desk", actor="test")
    assert console.get("/console/holds").headers["Location"].startswith("/console/login")


def test_an_expired_stored_token_ends_its_sessions(console: Console) -> None:
    clock = [access.utcnow()]
    tokens = StoredTokens(_oms(console).db, now=lambda: clock[0])
    console.app.extensions["oms_api_tokens"].stored = tokens
    token, _ = tokens.create("viewer", "for-a-day", actor="test", expires_days=1)
    console.sign_in(token)
    assert console.get("/console/holds").status_code == 200
    clock[0] += timedelta(days=1, seconds=1)
    assert console.get("/console/holds").status_code == 302


def test_a_session_lasts_twelve_hours(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    console.sign_in(VIEWER)
    signed_in_at = time.time()
    monkeypatch.setattr(access.time, "time", lambda: signed_in_at + 11.9 * 3600)
    assert console.get("/console/holds").status_code == 200
    monkeypatch.setattr(access.time, "time", lambda: signed_in_at + 12 * 3600 + 60)
    assert console.get("/console/holds").headers["Location"].startswith("/console/login")


def test_mounting_the_console_twice_changes_nothing(console: Console) -> None:
    from oms_engine.console import install

    install(console.app)
    console.sign_in(VIEWER)
    assert console.get("/console/holds").status_code == 200


def test_every_process_signs_with_the_key_kept_in_the_database(sqlite_oms: OMS) -> None:
    first, second = Console(console_app(sqlite_oms)), Console(console_app(sqlite_oms))
    first.sign_in(VIEWER)
    second.client.set_cookie("oms_console", first.cookie() or "", path="/console")
    assert second.get("/console/holds").status_code == 200
    with sqlite_oms.db.read() as s:
        assert s.scalar(select(Meta.value).where(Meta.key == "console_secret")) == first.app.secret_key


# -- reading -----------------------------------------------------------------------------------------------------
def test_a_viewer_reads_every_page(console_any: Console) -> None:
    console = console_any
    world = stage(_oms(console))
    console.sign_in(VIEWER)
    for path in (*PAGES, f"/console/orders/{world.blacklisted}", f"/console/orders/{world.sofa}",
                 f"/console/orders?q={world.sofa[:6]}", "/console/orders?status=on_hold&channel=json"):
        reply = console.get(path)
        assert reply.status_code == 200, (path, reply.text[:300])
        assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "<script" not in reply.text and "http://" not in reply.text and "https://" not in reply.text
    # the queue: the reason, the stage and the rule behind each hold, and no buttons for a viewer
    holds = text_of(console.get("/console/holds").text)
    assert "customer is on the blacklist" in holds and "blocking › blacklisted-customer" in holds
    assert "new customer, order over 5,000.00" in holds and "blocking › big-first-order" in holds
    assert "Release" not in holds and "Reject" not in holds
    order = text_of(console.get(f"/console/orders/{world.blacklisted}").text)
    assert "hold: paid → on_hold" in order and "decision blocking" in order
    assert "blacklisted-customer: hold: reason=customer is on the blacklist" in order
    dashboard = text_of(console.get("/console/").text)
    assert re.search(r"on hold\s+2", dashboard) or "2 on hold" in dashboard
    assert "Orders placed per day" in dashboard
    assert "WH-SH" in console.get("/console/stock").text


def test_search_finds_an_order_by_the_start_of_its_number_and_opens_a_whole_one(console: Console) -> None:
    world = stage(_oms(console))
    console.sign_in(VIEWER)
    found = console.get(f"/console/orders?q={world.sofa[:-3]}")
    assert world.sofa in found.text
    whole = console.get(f"/console/orders?q={world.sofa}")
    assert whole.status_code == 302 and whole.headers["Location"] == f"/console/orders/{world.sofa}"
    assert console.get("/console/orders?status=lost").status_code == 400
    assert console.get("/console/orders/NO-SUCH").status_code == 404
    nowhere = console.get("/console/nowhere")
    assert nowhere.status_code == 404 and nowhere.mimetype == "text/html" and "no such page" in nowhere.text


# -- acting -------------------------------------------------------------------------------------------------------
def test_a_viewer_may_not_release_or_change_rules(console: Console) -> None:
    world = stage(_oms(console))
    console.sign_in(VIEWER)
    assert console.post(f"/console/orders/{world.blacklisted}/release", {"note": "x"}).status_code == 403
    assert console.post(f"/console/orders/{world.blacklisted}/reject").status_code == 403
    assert status_of(_oms(console), world.blacklisted) == "on_hold"
    assert console.get("/console/rules/candidate").status_code == 403
    assert console.post("/console/rules/candidate", {"action": "store", "ruleset_yaml": LOWER}).status_code == 403
    assert console.post("/console/rules/rollback").status_code == 403
    assert "Activate" not in console.get("/console/rules").text


def test_a_post_without_the_csrf_token_is_400_and_changes_nothing(console: Console) -> None:
    world = stage(_oms(console))
    console.sign_in(SUPPORT)
    for csrf in (False, "forged-token"):
        reply = console.post(f"/console/orders/{world.blacklisted}/release", {"note": "x"}, csrf=csrf)
        assert reply.status_code == 400 and "CSRF" in reply.text
    assert status_of(_oms(console), world.blacklisted) == "on_hold"
    # another session's token will not do either
    other = Console(console.app)
    other.sign_in(SUPPORT)
    reply = console.post(f"/console/orders/{world.blacklisted}/release", csrf=other.csrf("/console/"))
    assert reply.status_code == 400
    assert console.post("/console/login", {"token": VIEWER}, csrf=False).status_code == 400


def test_releasing_from_the_queue_moves_the_order_on_and_records_who(console: Console) -> None:
    oms = _oms(console)
    world = stage(oms)
    console.sign_in(SUPPORT)
    assert _in_queue(console, world.blacklisted)
    reply = console.post(f"/console/orders/{world.blacklisted}/release",
                         {"note": "called the customer", "next": "/console/holds"})
    assert reply.status_code == 303 and reply.headers["Location"] == "/console/holds"
    queue = console.get("/console/holds").text
    assert f"Order {world.blacklisted} released: it is now paid." in queue
    assert f'id="hold-{world.blacklisted}"' not in queue and f'id="hold-{world.big_first}"' in queue
    assert status_of(oms, world.blacklisted) == "paid"
    event, state, actor = history_rows(oms, world.blacklisted)[-1]
    assert (event, state) == ("release", "paid") and actor.startswith("api:support:")
    timeline = text_of(console.get(f"/console/orders/{world.blacklisted}").text)
    assert "release: on_hold → paid" in timeline and "called the customer" in timeline
    with oms.db.read() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert (entry.action, entry.target, entry.status) == (
            "POST /console/orders/{number}/release", world.blacklisted, 303)
        assert entry.actor == actor and entry.before["status"] == "on_hold" and entry.after["status"] == "paid"
    # released twice: refused with the reason, nothing changes
    again = console.post(f"/console/orders/{world.blacklisted}/release", {"next": "/console/holds"})
    assert again.status_code == 303 and "event &#39;release&#39; is not allowed" in console.get("/console/holds").text


def test_rejecting_cancels_the_order(console: Console) -> None:
    oms = _oms(console)
    world = stage(oms)
    console.sign_in(ADMIN)
    reply = console.post(f"/console/orders/{world.big_first}/reject", {"note": "fraud check failed"})
    assert reply.headers["Location"] == f"/console/orders/{world.big_first}"
    assert status_of(oms, world.big_first) == "cancelled"
    assert "reject: on_hold → cancelled" in text_of(console.get(reply.headers["Location"]).text)


def test_dead_letters_are_sent_again_by_admins(console: Console) -> None:
    oms = _oms(console)
    stage(oms)
    with oms.db.session() as s:
        message_id = s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id).limit(1)).one()
        s.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                  .values(status="dead", attempts=8, last_error="connection refused"))
    console.sign_in(SUPPORT)
    page = console.get("/console/dead-letters").text
    assert f'id="message-{message_id}"' in page and "connection refused" in page and "Send again" not in page
    assert console.post(f"/console/dead-letters/{message_id}/requeue").status_code == 403
    console.post("/console/logout")
    console.sign_in(ADMIN)
    reply = console.post(f"/console/dead-letters/{message_id}/requeue")
    assert reply.status_code == 303
    assert "queued to be sent again" in console.get("/console/dead-letters").text
    with oms.db.read() as s:
        assert s.get(OutboxMessage, message_id).status == "pending"  # type: ignore[union-attr]
    console.post(f"/console/dead-letters/{message_id}/requeue")
    assert "not dead" in console.get("/console/dead-letters").text


# -- rules ---------------------------------------------------------------------------------------------------
def test_a_candidate_that_does_not_validate_shows_file_and_line(console: Console) -> None:
    console.sign_in(RULES_ADMIN)
    for action in ("check", "dry-run", "store"):
        reply = console.post("/console/rules/candidate",
                             {"action": action, "ruleset_yaml": BROKEN, "filename": "blocking.yaml"})
        assert reply.status_code == 422, action
        assert f"blocking.yaml:{BAD_LINE} rule blacklisted-customer" in text_of(reply.text)


def test_check_dry_run_store_activate_and_roll_back(console: Console) -> None:
    oms = _oms(console)
    world = stage(oms)
    active = oms.rulebook.version("blocking")
    console.sign_in(RULES_ADMIN)
    start = console.get("/console/rules/candidate?ruleset=blocking").text
    assert "order.payable: {gt: 500000}" in start

    # a text box's lines come back CRLF: the version is still the file's
    crlf = LOWER.replace("\n", "\r\n")
    checked = text_of(console.post("/console/rules/candidate", {"action": "check", "ruleset_yaml": crlf}).text)
    assert "is valid" in checked and "1 failed" in checked
    assert "tests/blocking.yaml:" in checked and "'exactly 5,000.00 is not over the threshold'" in checked
    assert str(oms.rulebook.dir) not in checked, "named as in the rules directory, not by the server's paths"
    report = console.post("/console/rules/candidate", {"action": "dry-run", "ruleset_yaml": crlf, "last": "50"})
    assert report.status_code == 200
    read = text_of(report.text)
    assert "1 would change" in read and "2 would not" in read and world.sofa in read and "big-first-order" in read
    assert "before no rule fired" in read and "after big-first-order" in read
    assert "hold: no" in read and "hold: yes; reasons: new customer, order over 5,000.00" in read
    assert oms.rulebook.version("blocking") == active, "a dry-run changes nothing"

    stored = console.post("/console/rules/candidate", {"action": "store", "ruleset_yaml": crlf})
    version = re.search(r"#v-([0-9a-f]+)$", stored.headers["Location"])
    assert stored.status_code == 303 and version
    page = console.get(stored.headers["Location"].split("#")[0]).text
    assert f"blocking@{version.group(1)} stored" in page and f'data-version="blocking@{version.group(1)}"' in page
    assert oms.rulebook.version("blocking") == active, "stored, not active"

    reply = console.post("/console/rules/activate", {"version": f"blocking@{version.group(1)}"})
    assert reply.status_code == 303
    assert oms.rulebook.version("blocking") == version.group(1)
    assert f"blocking {active} → {version.group(1)}" in console.get("/console/rules").text

    console.post("/console/rules/rollback")
    assert oms.rulebook.version("blocking") == active
    assert f"blocking {version.group(1)} → {active}" in console.get("/console/rules").text


def test_a_candidate_file_is_uploaded_as_it_is(console: Console) -> None:
    import io

    stage(_oms(console))
    console.sign_in(ADMIN)
    reply = console.post("/console/rules/candidate",
                         {"action": "dry-run", "upload": (io.BytesIO(LOWER.encode()), "blocking-lower.yaml")},
                         content_type="multipart/form-data")
    assert reply.status_code == 200 and "1 would change" in text_of(reply.text)
    broken = console.post("/console/rules/candidate",
                          {"action": "check", "upload": (io.BytesIO(BROKEN.encode()), "mine.yaml")},
                          content_type="multipart/form-data")
    assert broken.status_code == 422 and f"mine.yaml:{BAD_LINE}" in text_of(broken.text)

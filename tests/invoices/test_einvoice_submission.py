"""Every invoice and credit note goes to the tax platform through the outbox, queued in the transaction that issues
it: submitted once under its number, whatever fails on the way; the platform's official number kept with it; a
refusal kept with its reason, dead at once and an incident; invoices from before read unsubmitted until asked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, update

from oms_engine.clock import SimulatedClock
from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.invoices.issuing import reissue
from oms_engine.orders.explain import explain
from oms_engine.plugin.registry import RegistryError
from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import alembic_config, upgrade
from oms_engine.storage.models import Exchange, InboxMessage, Invoice, OutboxMessage
from tests.support import NO_REFUSALS, ROOT, T0, build_oms, make_config, order_json
from tests.support.cli import Cli
from tests.support.pipeline import ingest_one, order_row
from tests.support.tax_standin import TaxStandIn, tax_standin
from tests.support.web import VIEWER, ApiServer, api, serve

__all__ = ["api", "serve", "tax_standin"]     # fixtures
SECRET_ENV = "OMS_TEST_TAX_SECRET"


def _invoices(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return explain(s, number)["invoices"]


def _tax_messages(oms: OMS) -> list[OutboxMessage]:
    with oms.db.read() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "tax.einvoice")
                              .order_by(OutboxMessage.id)))


def _paid(oms: OMS, external_id: str) -> str:
    number = ingest_one(oms, order_json(external_id, [("TEA-1", 2)])).number
    assert number is not None
    return number


def _retry_due(oms: OMS) -> None:
    """Move the simulated clock to the next retry, and run."""
    due = oms.pipeline.next_due()
    assert due is not None, "nothing is due"
    oms.clock.advance_to(due)  # type: ignore[attr-defined]
    oms.pipeline.run_until_idle()


# -- the simulation (config.yaml's default) ---------------------------------------------------------------
def test_an_invoice_is_queued_as_it_is_issued_and_the_simulated_platform_issues_it(oms: OMS) -> None:
    number = _paid(oms, "TX-1")
    [inv] = _invoices(oms, number)
    # Queued with the invoice, before any pass: the e-invoice of the configured format, keyed by the number.
    assert inv["submission"]["state"] == "pending" and inv["submission"]["official_no"] is None
    [msg] = _tax_messages(oms)
    assert (msg.kind, msg.target, msg.order_number, msg.status) == ("tax", "sim_tax", number, "pending")
    assert msg.payload == {"invoice": inv["number"], "kind": "invoice", "order_number": number,
                           "format": "oms-einvoice/1", "einvoice": inv["document"]}
    oms.pipeline.run_until_idle()
    [inv] = _invoices(oms, number)
    sub = inv["submission"]
    assert sub["state"] == "accepted" and re.fullmatch(r"\d{20}", sub["official_no"]) and sub["verification"]
    shown = oms.invoices.einvoice(inv["number"])
    assert shown["submission"] == sub
    assert [m.status for m in _tax_messages(oms)] == ["sent"]


def test_the_simulated_platform_refuses_a_share_for_good(tmp_path: Path, sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, plugin_settings={**NO_REFUSALS, "sim_tax": {"refusal_rate": 1.0}})
    try:
        number = _paid(oms, "TX-R")
        oms.pipeline.run_until_idle()
        [inv] = _invoices(oms, number)
        assert (inv["submission"]["state"], inv["submission"]["reason"]) == (
            "refused", "the buyer's tax registration is not on record")
        assert [(m.status, m.attempts) for m in _tax_messages(oms)] == [("dead", 1)]
        with oms.db.read() as s:
            assert [i["stage"] for i in explain(s, number)["incidents"]] == ["einvoices"]
    finally:
        oms.close()


FUSSY_FORMAT = '''
from oms_engine import hookimpl


class Fussy:
    name = "fussy/1"

    def render(self, invoice):
        if invoice["amount"] > 10**6:
            raise ValueError("amounts that large are not taken")
        return f"<invoice no='{invoice['number']}' amount='{invoice['amount']}'/>"


@hookimpl
def oms_register_einvoice_formats(register, config):
    register(Fussy())
'''


def test_the_configured_format_is_what_is_submitted_and_one_it_cannot_render_is_left_unsubmitted(
        make_oms: Callable[..., OMS], tmp_path: Path) -> None:
    plugin = tmp_path / "fussy_format.py"
    plugin.write_text(FUSSY_FORMAT, encoding="utf-8")
    oms = make_oms(plugins=[str(plugin)], einvoice_format="fussy/1")
    small = ingest_one(oms, order_json("TX-F1", [("TEA-1", 1)])).number
    big = ingest_one(oms, order_json("TX-F2", [("TV-1", 2)])).number
    [msg] = _tax_messages(oms)
    assert (msg.payload["format"], msg.payload["einvoice"]) == (
        "fussy/1", f"<invoice no='{small}-INV01' amount='{order_row(oms, small).payable}'/>")
    # The order is paid and invoiced all the same; the invoice waits, with why, and an incident says it.
    [inv] = _invoices(oms, big)
    assert inv["submission"]["state"] == "unsubmitted"
    assert "amounts that large are not taken" in inv["submission"]["reason"]
    with oms.db.read() as s:
        [incident] = explain(s, big)["incidents"]
    assert incident["stage"] == "einvoice" and incident["action"].startswith(f"invoice {big}-INV01 issued, not")
    with pytest.raises(CommandError, match=f"invoice {big}-INV01 cannot be rendered as fussy/1"):
        oms.invoices.submit([f"{big}-INV01"])
    assert oms.invoices.submit_unsubmitted() == 0           # left, with the reason, not looped over
    oms.pipeline.run_until_idle()
    assert [i["submission"]["state"] for i in _invoices(oms, small)] == ["accepted"]


def test_no_tax_connector_submits_nothing_and_the_invoice_reads_unsubmitted(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, tax_connector="")
    try:
        number = _paid(oms, "TX-2")
        oms.pipeline.run_until_idle()
        assert [i["submission"]["state"] for i in _invoices(oms, number)] == ["unsubmitted"]
        assert _tax_messages(oms) == []
        with pytest.raises(CommandError, match="no tax connector is set"):
            oms.invoices.submit([f"{number}-INV01"])
    finally:
        oms.close()


def test_an_unknown_or_wrong_tax_connector_is_refused_at_start(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(RegistryError, match=r"unknown connector 'nope' \(known: .*sim_tax.*tax_json"):
        build_oms(tmp_path, sqlite_url, tax_connector="nope")
    with pytest.raises(RegistryError, match="tax_connector: connector 'sim_wms' is not a tax platform's"):
        build_oms(tmp_path, sqlite_url, tax_connector="sim_wms")


# -- over HTTP, against the stand-in platform ----------------------------------------------------------------
@pytest.fixture
def platform(tax_standin: Callable[..., TaxStandIn], monkeypatch: pytest.MonkeyPatch) -> TaxStandIn:
    monkeypatch.setenv(SECRET_ENV, "tax-s3cret")
    return tax_standin(secret="tax-s3cret")


@pytest.fixture
def taxing(tmp_path: Path, db_url: str, platform: TaxStandIn) -> Iterator[OMS]:
    o = build_oms(tmp_path, db_url, tax_connector="tax_json", plugin_settings={
        **NO_REFUSALS, "tax_json": {"url": platform.url, "secret_env": SECRET_ENV, "timeout": 1}})
    yield o
    o.close()


def test_an_invoice_is_submitted_once_and_the_official_number_is_kept(taxing: OMS, platform: TaxStandIn) -> None:
    number = _paid(taxing, "TX-3")
    taxing.pipeline.run_until_idle()
    [inv] = _invoices(taxing, number)
    [issued] = platform.issued.values()
    assert (issued.invoice, issued.kind, issued.total) == (inv["number"], "invoice", inv["document"]["total"])
    assert inv["submission"]["state"] == "accepted"
    assert (inv["submission"]["official_no"], inv["submission"]["verification"]) == (issued.official_no,
                                                                                      issued.verification)
    [req] = platform.received
    assert req.signed and req.key == inv["number"] == req.headers["idempotency-key"]
    assert json.loads(req.body)["data"] == inv["document"]
    with taxing.db.read() as s:
        story = explain(s, number)
    # Request and answer on record with the order, byte for byte.
    wire = [(x["direction"], x["kind"], x["status"]) for x in story["exchanges"] if x["connector"] == "tax_json"]
    assert wire == [("out", "request", None), ("in", "response", 201)]


@pytest.mark.parametrize("how", ["503", "unreachable"])
def test_a_platform_down_then_up_is_asked_again_and_issues_one_invoice(taxing: OMS, platform: TaxStandIn,
                                                                       how: str) -> None:
    if how == "503":
        platform.fail(2, status=503)
    else:
        platform.close()                # nothing listens: the connection is refused
    number = _paid(taxing, f"TX-4-{how}")
    taxing.pipeline.run_until_idle()
    [msg] = _tax_messages(taxing)
    assert (msg.status, msg.attempts) == ("pending", 1)
    assert ("503" if how == "503" else "no answer: ConnectError") in msg.last_error
    assert _invoices(taxing, number)[0]["submission"]["state"] == "pending"
    _retry_due(taxing)
    assert _tax_messages(taxing)[0].attempts == 2
    if how == "unreachable":
        platform.start()                # back up, on the same address
    _retry_due(taxing)
    [inv] = _invoices(taxing, number)
    assert inv["submission"]["state"] == "accepted"
    assert [o for _, o in platform.outcomes()] == (["failed", "failed", "issued"] if how == "503" else ["issued"])
    assert len(platform.issued) == 1 and {k for k, _ in platform.outcomes()} == {inv["number"]}


@pytest.mark.parametrize("how", ["answer lost", "too slow"])
def test_a_submission_whose_answer_never_came_is_asked_again_and_issued_once(taxing: OMS, platform: TaxStandIn,
                                                                           how: str) -> None:
    if how == "answer lost":
        platform.lose_answers(1)
    else:
        platform.delay = 3.0            # past the connector's timeout of 1 s: the platform issues, the OMS gives up
    number = _paid(taxing, f"TX-5-{how[:4]}")
    taxing.pipeline.run_until_idle()
    assert _invoices(taxing, number)[0]["submission"]["state"] == "pending"
    platform.delay = 0.0
    _retry_due(taxing)
    [inv] = _invoices(taxing, number)
    [issued] = platform.issued.values()
    assert (inv["submission"]["state"], inv["submission"]["official_no"]) == ("accepted", issued.official_no)
    assert [o for _, o in platform.outcomes()] == ["issued, answer lost" if how == "answer lost" else "issued",
                                                   "duplicate"]


def test_a_message_delivered_again_issues_no_second_invoice(taxing: OMS, platform: TaxStandIn) -> None:
    number = _paid(taxing, "TX-6")
    taxing.pipeline.run_until_idle()
    official = _invoices(taxing, number)[0]["submission"]["official_no"]
    # A worker that died after the platform answered and before its commit leaves the message to another.
    [msg] = _tax_messages(taxing)
    with taxing.db.session() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.id == msg.id).values(status="pending"))
    taxing.pipeline.run_until_idle()
    assert [o for _, o in platform.outcomes()] == ["issued", "duplicate"]
    assert len(platform.issued) == 1
    assert _invoices(taxing, number)[0]["submission"]["official_no"] == official
    with taxing.db.read() as s:
        outcomes = s.scalars(select(InboxMessage.outcome).where(InboxMessage.source == "tax_json")
                             .order_by(InboxMessage.id)).all()
    assert outcomes == [f"{number}-INV01 accepted by the tax platform as {official}",
                        f"ignored: invoice {number}-INV01 was accepted already, as {official}"]


def test_a_refusal_is_kept_with_its_reason_dead_at_once_and_an_incident(taxing: OMS, platform: TaxStandIn,
                                                                         tmp_path: Path) -> None:
    platform.mode = "refuse"
    number = _paid(taxing, "TX-7")
    taxing.pipeline.run_until_idle()
    [inv] = _invoices(taxing, number)
    assert (inv["submission"]["state"], inv["submission"]["reason"]) == ("refused", platform.reason)
    [msg] = _tax_messages(taxing)
    assert (msg.status, msg.attempts) == ("dead", 1)        # not tried again: it would be refused again
    [dead] = taxing.dead_letters.list(target="tax_json")
    assert dead["id"] == msg.id and platform.reason in dead["last_error"]
    with taxing.db.read() as s:
        [incident] = explain(s, number)["incidents"]
    assert incident["stage"] == "einvoices" and platform.reason in incident["error"]
    assert incident["action"] == f"message {msg.id} dead: refused by its receiver, not retried " \
                                 f"(oms outbox retry {msg.id} sends it again)"
    assert platform.issued == {}
    # Sorted out at the platform: submitted again by a person, issued once.
    platform.mode = "issue"
    assert taxing.invoices.submit([inv["number"]]) == {inv["number"]: "pending"}
    with pytest.raises(CommandError, match=f"invoice {inv['number']} is pending: only an unsubmitted or refused"):
        taxing.invoices.submit([inv["number"]])
    taxing.pipeline.run_until_idle()
    [inv] = _invoices(taxing, number)
    assert inv["submission"]["state"] == "accepted" and inv["submission"]["reason"] is None
    assert len(platform.issued) == 1


def test_credit_notes_are_submitted_after_the_invoice_they_reverse(taxing: OMS, platform: TaxStandIn) -> None:
    number = _paid(taxing, "TX-8")
    assert taxing.commands.cancel(number, actor="support:ann", reason="changed mind") == "cancelled"
    # Both queued before the first pass: the platform would refuse a credit note for an invoice it never saw.
    assert [i["submission"]["state"] for i in _invoices(taxing, number)] == ["pending", "pending"]
    taxing.pipeline.run_until_idle()
    invoice, note = _invoices(taxing, number)
    assert (note["kind"], note["refers_to"]) == ("credit_note", invoice["number"])
    assert [i["submission"]["state"] for i in (invoice, note)] == ["accepted", "accepted"]
    assert [(i.invoice, i.kind, i.refers_to) for i in platform.issued.values()] == [
        (invoice["number"], "invoice", None), (note["number"], "credit_note", invoice["number"])]
    assert note["submission"]["official_no"] == platform.issued[note["number"]].official_no


def test_an_invoice_issued_again_is_submitted_with_the_credit_note_reversing_the_old_one(
        taxing: OMS, platform: TaxStandIn) -> None:
    number = _paid(taxing, "TX-9")
    taxing.pipeline.run_until_idle()
    with taxing.db.session() as s:
        owner = order_row(taxing, number).id
        assert reissue(s, owner, [("TEA-1", "MUG-1", "Mug", 1)], "exchange AS-1", taxing.clock.now()) \
            == f"{number}-INV02"
    taxing.pipeline.run_until_idle()
    numbers = [(i["number"], i["submission"]["state"]) for i in _invoices(taxing, number)]
    assert numbers == [(f"{number}-INV01", "accepted"), (f"{number}-CN01", "accepted"),
                       (f"{number}-INV02", "accepted")]
    assert list(platform.issued) == [n for n, _ in numbers]


def test_a_platform_calling_back_later_settles_the_invoice_once(tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, tax_connector="")
    try:
        number = _paid(oms, "TX-CB")
        invoice = f"{number}-INV01"
        answers = [  # a list in one callback, as POST /api/callbacks/tax_json may bring them
            {"kind": "einvoice", "order_number": number, "invoice": invoice, "status": "accepted",
             "official_no": "26120000000000000042", "verification": "https://tax.example.gov/v/42"},
            {"kind": "einvoice", "order_number": number, "invoice": invoice, "status": "refused", "reason": "late"},
            {"kind": "einvoice", "order_number": number, "invoice": "OTHER-INV01", "status": "accepted",
             "official_no": "1"},
            {"kind": "einvoice", "order_number": number, "invoice": invoice, "status": "lost"}]
        with oms.db.session() as s:
            oms.callbacks.receive(s, "tax_json", answers)
        oms.pipeline.run_until_idle()
        [inv] = _invoices(oms, number)
        assert (inv["submission"]["state"], inv["submission"]["official_no"], inv["submission"]["verification"]) == (
            "accepted", "26120000000000000042", "https://tax.example.gov/v/42")
        with oms.db.read() as s:
            [row] = s.execute(select(InboxMessage.status, InboxMessage.outcome)
                              .where(InboxMessage.source == "tax_json")).all()
        assert row.status == "rejected"
        assert row.outcome.split("; ") == [
            f"{invoice} accepted by the tax platform as 26120000000000000042",
            f"ignored: invoice {invoice} was accepted already, as 26120000000000000042",
            f"rejected: order {number} has no invoice OTHER-INV01",
            "rejected: unknown e-invoice status 'lost' (known: accepted, refused)"]
    finally:
        oms.close()


def test_the_submission_on_the_connectors_page_is_what_tax_json_sends(taxing: OMS, platform: TaxStandIn) -> None:
    doc = (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8")
    request, answer, refusal = [json.loads(b) for b in re.findall(r"```json tax\n(.*?)```", doc, re.S)]
    number = _paid(taxing, "TX-10")
    taxing.pipeline.run_until_idle()
    [req] = platform.received
    sent = json.loads(req.body)
    assert sent.keys() == request.keys() and sent["data"].keys() == request["data"].keys()
    assert (sent["type"], sent["id"], sent["kind"], sent["order_number"], sent["format"]) == (
        "einvoice", f"{number}-INV01", "invoice", number, "oms-einvoice/1")
    got = json.loads(req.answer)
    assert got.keys() == answer.keys() and got["status"] == answer["status"]
    assert refusal["status"] == "refused" and refusal.keys() == {"id", "status", "reason"}


# -- invoices from before: unsubmitted, sent when asked ------------------------------------------------------
def _downgrade(engine: Any, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_invoices_from_before_read_unsubmitted_queue_nothing_and_are_submitted_on_request(
        tmp_path: Path, db_url: str) -> None:
    oms = build_oms(tmp_path, db_url, tax_connector="")
    number = _paid(oms, "TX-11")
    oms.commands.cancel(number, actor="support:ann", reason="changed mind")
    oms.close()
    engine = make_engine(db_url)
    _downgrade(engine, "0019")
    with engine.connect() as conn:
        assert "submission" not in {c["name"] for c in inspect(conn).get_columns("invoices")}
    upgrade(engine)
    engine.dispose()
    oms = OMS(make_config(tmp_path, db_url), clock=SimulatedClock(T0))    # config.yaml's: the simulated platform
    try:
        with oms.db.read() as s:
            rows = s.execute(select(Invoice.number, Invoice.submission, Invoice.official_no, Invoice.submission_at)
                             .order_by(Invoice.id)).all()
            queued = s.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.topic == "tax.einvoice"))
        assert [tuple(r) for r in rows] == [(f"{number}-INV01", "unsubmitted", None, None),
                                            (f"{number}-CN01", "unsubmitted", None, None)]
        assert queued == 0                  # the upgrade floods nothing
        assert oms.invoices.submit_unsubmitted() == 2
        assert oms.invoices.submit_unsubmitted() == 0
        oms.pipeline.run_until_idle()
        assert [i["submission"]["state"] for i in _invoices(oms, number)] == ["accepted", "accepted"]
        assert [m.payload["invoice"] for m in _tax_messages(oms)] == [f"{number}-INV01", f"{number}-CN01"]
    finally:
        oms.close()


def test_the_commands_show_and_submit(cli: Cli) -> None:
    cli.write_config(tax_connector="")
    [r] = cli.ingest(cli.write_orders("o.json", order_json("TX-CLI")))
    invoice = f"{r['number']}-INV01"
    shown = json.loads(cli("invoices", "show", invoice).stdout)
    assert shown["submission"] == {"state": "unsubmitted", "official_no": None, "verification": None,
                                   "reason": None, "at": None}
    cli.write_config()                      # the simulated platform
    assert "name the invoices to submit, or give --all-unsubmitted" in cli("invoices", "submit", ok=False).stderr
    assert cli("invoices", "submit", invoice).stdout.strip() == f"{invoice}: pending"
    assert "no invoice or credit note 'X-INV01'" in cli("invoices", "submit", "X-INV01", ok=False).stderr
    cli("run")
    shown = json.loads(cli("invoices", "show", invoice).stdout)
    assert shown["submission"]["state"] == "accepted" and re.fullmatch(r"\d{20}", shown["submission"]["official_no"])
    assert "is accepted: only an unsubmitted or refused one" in cli("invoices", "submit", invoice, ok=False).stderr
    assert "0 invoices and credit notes queued" in cli("invoices", "submit", "--all-unsubmitted").stdout
    story = cli.show(r["number"])
    assert story["invoices"][0]["submission"]["official_no"] == shown["submission"]["official_no"]
    table = cli("order", "show", r["number"]).stdout
    assert shown["submission"]["official_no"] in table


def test_a_platform_that_answers_nonsense_is_asked_again(taxing: OMS, platform: TaxStandIn,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The wire is recorded with the order whatever the answer; an answer without an official number is no answer.
    number = _paid(taxing, "TX-12")
    platform.fail(1, status=400)            # a 4xx that does not say "refused": not a refusal of the e-invoice
    taxing.pipeline.run_until_idle()
    [msg] = _tax_messages(taxing)
    assert (msg.status, msg.attempts) == ("pending", 1)
    assert _invoices(taxing, number)[0]["submission"]["state"] == "pending"
    taxing.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    taxing.pipeline.run_until_idle()
    assert _invoices(taxing, number)[0]["submission"]["state"] == "accepted"
    with taxing.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Exchange)
                        .where(Exchange.connector == "tax_json")) == 4


def test_the_api_shows_the_submission_with_the_invoice_and_the_order(sqlite_oms: OMS, api: ApiServer) -> None:
    number = _paid(sqlite_oms, "TX-API")
    sqlite_oms.pipeline.run_until_idle()
    shown = api.get(f"/api/invoices/{number}-INV01", token=VIEWER).json
    assert shown["submission"]["state"] == "accepted" and re.fullmatch(r"\d{20}", shown["submission"]["official_no"])
    [listed] = api.get(f"/api/orders/{number}", token=VIEWER).json["invoices"]
    assert listed["submission"] == shown["submission"]

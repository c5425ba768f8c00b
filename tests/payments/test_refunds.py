"""Refunds owed reach the payment provider through the outbox and its answer settles them: paid back once,
however often the message is sent; refused with the reason; answered later by callback."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.errors import CommandError
from oms_engine.orders.explain import explain
from oms_engine.storage.models import Exchange
from tests.support import NO_REFUSALS, ROOT, build_oms, order_json
from tests.support.payment_standin import PaymentStandIn, payment_standin
from tests.support.pipeline import ingest_one, order_row

__all__ = ["payment_standin"]     # a fixture
SECRET_ENV = "OMS_TEST_PAYMENT_SECRET"


def _refunds(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return [p for p in explain(s, number)["payments"] if p["kind"] == "refund"]


def _cancelled_paid_order(oms: OMS, external_id: str) -> str:
    r = ingest_one(oms, order_json(external_id, [("TEA-1", 1)]))
    assert oms.commands.cancel(r.number, actor="support:ann", reason="changed mind") == "cancelled"
    return r.number


def test_a_refund_goes_to_the_simulated_provider_and_is_paid_back(oms: OMS) -> None:
    number = _cancelled_paid_order(oms, "RF-1")
    [owed] = _refunds(oms, number)
    assert owed["status"] == "due"
    oms.pipeline.run_until_idle()
    [paid] = _refunds(oms, number)
    assert (paid["status"], paid["provider_ref"]) == ("refunded", f"SIMRF-{number}-R01")
    assert [(e["from"], e["to"], e["actor"]) for e in paid["log"]] == [
        (None, "due", "support:ann"), ("due", "sent", "payment:sim_payment"),
        ("sent", "refunded", "payment:sim_payment")]


@pytest.fixture
def provider(payment_standin: Callable[..., PaymentStandIn], monkeypatch: pytest.MonkeyPatch) -> PaymentStandIn:
    monkeypatch.setenv(SECRET_ENV, "pay-s3cret")
    return payment_standin(secret="pay-s3cret")


@pytest.fixture
def paying(tmp_path: Path, db_url: str, provider: PaymentStandIn) -> Iterator[OMS]:
    o = build_oms(tmp_path, db_url, payment_connector="payment_json", plugin_settings={
        **NO_REFUSALS, "payment_json": {"url": provider.url, "secret_env": SECRET_ENV, "timeout": 2}})
    yield o
    o.close()


def test_a_refund_whose_answer_was_lost_is_asked_again_and_paid_back_once(paying: OMS,
                                                                         provider: PaymentStandIn) -> None:
    oms = paying
    number = _cancelled_paid_order(oms, "RF-2")
    provider.lose_answers(1)
    oms.pipeline.run_until_idle()
    [owed] = _refunds(oms, number)
    assert owed["status"] == "due"                      # the provider paid, the OMS did not hear it
    oms.clock.advance(timedelta(minutes=5))
    oms.pipeline.run_until_idle()
    [paid] = _refunds(oms, number)
    assert (paid["status"], paid["provider_ref"]) == ("refunded", "RF-00001")
    # Asked twice under one key, paid once.
    keys = [r.key for r in provider.received]
    assert keys == [f"oms-refund-{number}-R01"] * 2 and all(r.signed for r in provider.received)
    assert [r.outcome for r in provider.received] == ["paid, answer lost", "duplicate"]
    assert [(p.refund, p.amount, p.currency) for p in provider.paid.values()] == [
        (f"{number}-R01", f"{paid['amount'] // 100}.{paid['amount'] % 100:02d}", "CNY")]
    with oms.db.read() as s:
        wire = s.scalars(select(Exchange.status).where(Exchange.order_number == number,
                                                       Exchange.connector == "payment_json")).all()
    assert 500 in wire and 201 in wire                 # both answers are on record with the order


def test_the_refund_request_on_the_connectors_page_is_what_payment_json_sends(paying: OMS,
                                                                           provider: PaymentStandIn) -> None:
    [example] = [json.loads(b) for b in re.findall(r"```json payment\n(.*?)```",
                                                   (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8"),
                                                   re.S)]
    number = _cancelled_paid_order(paying, "RF-5")
    paying.pipeline.run_until_idle()
    [sent] = [json.loads(r.body) for r in provider.received]
    assert sent.keys() == example.keys() and sent["data"].keys() == example["data"].keys()
    assert (sent["type"], sent["id"], sent["data"]["refund"], sent["data"]["payment"]) == (
        "refund", f"oms-refund-{number}-R01", f"{number}-R01", f"{number}-P01")
    assert sent["data"]["amount"] == f"{order_row(paying, number).payable / 100:.2f}"


def test_a_refund_the_provider_refuses_fails_with_its_reason_and_stays_owed(paying: OMS,
                                                                          provider: PaymentStandIn) -> None:
    provider.mode = "refused"
    number = _cancelled_paid_order(paying, "RF-3")
    paying.pipeline.run_until_idle()
    [refund] = _refunds(paying, number)
    assert refund["status"] == "failed"
    assert refund["log"][-1]["note"] == "refused by the provider: the card account is closed"
    assert provider.paid == {}


def test_a_pending_refund_is_settled_by_the_providers_callback(paying: OMS, provider: PaymentStandIn) -> None:
    provider.mode = "pending"
    number = _cancelled_paid_order(paying, "RF-4")
    paying.pipeline.run_until_idle()
    assert _refunds(paying, number)[0]["status"] == "sent"
    with paying.db.session() as s:
        paying.callbacks.receive(s, "payment_json", {"kind": "refund", "order_number": number,
                                                     "refund": f"{number}-R01", "status": "refunded",
                                                     "provider_ref": "RF-LATER"})
    paying.pipeline.run_until_idle()
    assert [(r["status"], r["provider_ref"]) for r in _refunds(paying, number)] == [("refunded", "RF-LATER")]
    # The same answer again changes nothing; an answer about a refund the order does not have is refused.
    with paying.db.session() as s:
        for serial in (f"{number}-R01", "OTHER-R01"):
            paying.callbacks.receive(s, "payment_json", {"kind": "refund", "order_number": number,
                                                         "refund": serial, "status": "refunded"})
    paying.pipeline.run_until_idle()
    assert [len(r["log"]) for r in _refunds(paying, number)] == [3]


def test_a_refused_refund_is_sent_again_by_a_person_and_paid_back_once(paying: OMS, provider: PaymentStandIn) -> None:
    provider.mode = "refused"
    number = _cancelled_paid_order(paying, "RF-6")
    paying.pipeline.run_until_idle()
    serial = f"{number}-R01"
    assert _refunds(paying, number)[0]["status"] == "failed"
    provider.mode = "refunded"                  # the customer's account is open again
    assert paying.commands.retry_refund(serial, actor="support:ann") == "due"
    with pytest.raises(CommandError, match=f"refund {serial} is due: only a refund the provider refused"):
        paying.commands.retry_refund(serial, actor="support:ann")
    paying.pipeline.run_until_idle()
    [refund] = _refunds(paying, number)
    assert refund["status"] == "refunded"
    assert [(e["from"], e["to"]) for e in refund["log"]] == [
        (None, "due"), ("due", "sent"), ("sent", "failed"), ("failed", "due"), ("due", "sent"), ("sent", "refunded")]
    assert len(provider.paid) == 1
    with pytest.raises(CommandError, match="no refund 'NOPE-R01'"):
        paying.commands.retry_refund("NOPE-R01", actor="support:ann")

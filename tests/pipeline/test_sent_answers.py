"""A tax platform's answer given while its e-invoice is sent is applied there and then; anything else a connector
calls back with while sending (another kind of callback, an answer that would be rejected) goes to the inbox,
where it is kept with its outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.orders.explain import explain
from oms_engine.pipeline.answers import SentAnswers
from oms_engine.pipeline.context import BufferedContext
from oms_engine.storage.models import InboxMessage
from tests.support import order_json
from tests.support.pipeline import ingest_one


def _answer(number: str, invoice: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "einvoice", "order_number": number, "invoice": invoice, **kw}


def _sim_tax_inbox(oms: OMS) -> list[tuple[str, str]]:
    with oms.db.read() as s:
        return [(r.status, r.outcome) for r in s.execute(
            select(InboxMessage.status, InboxMessage.outcome).where(InboxMessage.source == "sim_tax")
            .order_by(InboxMessage.id))]


def test_answers_that_apply_are_taken_and_the_rest_go_to_the_inbox_with_their_reason(oms: OMS) -> None:
    number = ingest_one(oms, order_json("SA-1", [("TEA-1", 1)])).number
    assert number is not None
    invoice = f"{number}-INV01"
    answers = SentAnswers(callbacks=oms.callbacks, clock=oms.clock)
    with oms.db.session() as s:
        ctx = BufferedContext(s, oms.clock, oms.callbacks, answers)
        ctx.receive_callback("sim_tax", _answer(number, invoice, status="accepted", official_no="42"))
        ctx.receive_callback("sim_tax", [_answer(number, invoice, status="refused", reason="late"),
                                         _answer(number, "OTHER-INV01", status="accepted", official_no="1")])
        ctx.receive_callback("sim_tax", _answer(number, invoice, status="lost"))
        ctx.receive_callback("sim_tax", {"kind": "order", "order_number": number, "status": "PICKING"})
        ctx.commit()
    # The first was applied in that transaction; nothing of it waits for the inbox.
    with oms.db.read() as s:
        [inv] = explain(s, number)["invoices"]
    assert (inv["submission"]["state"], inv["submission"]["official_no"]) == ("accepted", "42")
    assert [status for status, _ in _sim_tax_inbox(oms)] == ["pending", "pending", "pending"]
    oms.pipeline.run_until_idle()
    inbox = _sim_tax_inbox(oms)
    assert inbox[:2] == [
        ("rejected", f"ignored: invoice {invoice} was accepted already, as 42; "
                     f"rejected: order {number} has no invoice OTHER-INV01"),
        ("rejected", "rejected: unknown e-invoice status 'lost' (known: accepted, refused)")]
    # A callback of another kind is the inbox's to read: here one sim_tax cannot read at all.
    assert inbox[2][0] == "rejected" and inbox[2][1].startswith("unreadable callback: ")
    with oms.db.read() as s:
        [inv] = explain(s, number)["invoices"]
    assert (inv["submission"]["state"], inv["submission"]["official_no"]) == ("accepted", "42")


def test_the_simulated_platform_answers_are_applied_in_the_pass_that_sends_them(oms: OMS) -> None:
    numbers = [ingest_one(oms, order_json(f"SA-{i}", [("TEA-1", 1)])).number for i in range(2, 5)]
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        states = [explain(s, str(n))["invoices"][0]["submission"]["state"] for n in numbers]
    assert states == ["accepted"] * 3
    assert _sim_tax_inbox(oms) == []

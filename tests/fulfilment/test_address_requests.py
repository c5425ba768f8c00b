"""A new delivery address after dispatch becomes a request to the warehouse that holds the order: asked through
the outbox, applied when the warehouse accepts, refused with the reason once the parcel is on its way. Against
the simulated WMS, and over HTTP against the stand-in WMS with the JSON and XML connectors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from oms_engine.cli.render import print_order
from oms_engine.cli.root import console
from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.orders.explain import explain
from oms_engine.plugin.testing import drive_until_state, status
from oms_engine.storage.models import AddressRequest, InboxMessage, Incident, Order, OrderUpdate, OutboxMessage
from oms_engine.web.app import create_app
from tests.support import order_json, payload
from tests.support.web import TOKENS, ApiServer
from tests.support.wms_standin import WmsStandIn

NEW_STREET = "88 Nanjing Road"


def _send(oms: OMS, o: dict[str, Any]) -> Any:
    [res] = oms.intake.ingest("json", payload(o))
    assert res.error is None, res.error
    return res


def _moved(o: dict[str, Any], line1: str = NEW_STREET) -> dict[str, Any]:
    out = copy.deepcopy(o)
    out["ship_to"]["line1"] = line1
    return out


def _dispatched(oms: OMS, external_id: str, lines: list[tuple[str, int]] | None = None) -> tuple[dict[str, Any], str]:
    o = order_json(external_id, lines)
    number = _send(oms, o).number
    oms.pipeline.run_until_idle()
    assert status(oms, number) == "dispatched"
    return o, number


def _street(oms: OMS, number: str) -> str:
    with oms.db.read() as s:
        return str(s.scalar(select(Order.ship_to).where(Order.number == number))["line1"])


def _requests(oms: OMS, number: str) -> list[dict[str, Any]]:
    with oms.db.read() as s:
        return explain(s, number)["address_requests"]


def _asked(oms: OMS, number: str | None = None) -> list[Any]:
    """The readdress messages in the outbox (of one order), oldest first."""
    with oms.db.read() as s:
        stmt = select(OutboxMessage).where(OutboxMessage.topic == "wms.readdress").order_by(OutboxMessage.id)
        if number is not None:
            stmt = stmt.where(OutboxMessage.order_number == number)
        return list(s.scalars(stmt))


def _incidents(oms: OMS, number: str) -> list[tuple[str, str]]:
    with oms.db.read() as s:
        oid = s.scalar(select(Order.id).where(Order.number == number))
        return [(i.stage, i.error) for i in s.scalars(select(Incident).where(Incident.order_id == oid)
                                                      .order_by(Incident.id))]


def _answered(oms: OMS, request: int, max_steps: int = 30) -> str:
    """Drive the simulated clock until the warehouse answered ``request``; its status."""
    for _ in range(max_steps):
        oms.pipeline.run_until_idle()
        with oms.db.read() as s:
            st = s.scalar(select(AddressRequest.status).where(AddressRequest.id == request))
        if st != "pending":
            return str(st)
        due = oms.pipeline.next_due()
        assert due is not None, f"address request {request} is never answered"
        oms.clock.advance_to(due)  # type: ignore[attr-defined]
    raise AssertionError(f"address request {request} still pending")


def _answer(oms: OMS, number: str, request: int, verdict: str, reason: str = "") -> str:
    """The simulated warehouse's callback about a request, as its connector hands it to the core: "<the
    callback's status> | <its outcome>"."""
    with oms.db.session() as s:
        inbox = oms.callbacks.receive(s, "sim_wms", {"kind": "readdress", "order_number": number,
                                                     "status": verdict, "request": request, "reason": reason})
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        row = s.get(InboxMessage, inbox)
        assert row is not None
        return f"{row.status} | {row.outcome}"


# -- one order ----------------------------------------------------------------------------------------------
def test_a_dispatched_order_asks_its_warehouse_and_takes_the_address_once_it_accepts(
        oms: OMS, monkeypatch: pytest.MonkeyPatch) -> None:
    o, number = _dispatched(oms, "RA-1")
    res = _send(oms, _moved(o))
    assert res.duplicate and res.update is not None
    [req] = _requests(oms, number)
    assert f"ship_to: asked of WH-SH (address request {req['id']})" in (res.message or "")
    assert (req["status"], req["warehouse"], req["document"], req["order"]) == ("pending", "WH-SH", number, number)
    # The order keeps its address until the warehouse answers.
    assert _street(oms, number) == "1 Century Avenue"
    [msg] = _asked(oms)
    assert (msg.kind, msg.target, msg.order_number, msg.status) == ("connector", "sim_wms", number, "pending")
    assert msg.payload == {"order_number": number, "document": number, "warehouse": "WH-SH",
                           "ship_to": {**o["ship_to"], "line1": NEW_STREET}, "request": req["id"],
                           "reason": f"the channel json sent a new delivery address (update {res.update})"}

    # The simulated warehouse has not packed it: it accepts, and the order goes to the new address.
    assert _answered(oms, req["id"]) == "accepted"
    assert _street(oms, number) == NEW_STREET
    [req] = _requests(oms, number)
    assert req["answered_at"] and req["answer"] == "accepted"
    assert _asked(oms)[0].status == "sent"
    assert _incidents(oms, number) == []
    with oms.db.read() as s:
        story = explain(s, number)
    assert story["ship_to"]["line1"] == NEW_STREET
    [callback] = [c for c in story["callbacks"] if "address request" in c["outcome"]]
    assert callback["status"] == "applied"
    assert callback["outcome"] == (f"{number} address request {req['id']} accepted by WH-SH: the order goes to "
                                   "the new address")
    # ``oms order show`` has it with the updates and in the timeline.
    monkeypatch.setattr(console, "width", 300)
    with console.capture() as shown:
        print_order(story)
    printed = shown.get()
    assert "new addresses asked of the warehouse" in printed and "address asked" in printed
    assert "address accepted" in printed


def test_a_refused_answer_keeps_the_address_leaves_an_incident_and_a_second_answer_changes_nothing(oms: OMS) -> None:
    o, number = _dispatched(oms, "RA-2")
    _send(oms, _moved(o))
    [req] = _requests(oms, number)
    said = _answer(oms, number, req["id"], "refused", "the label is printed")
    assert said == f"applied | {number} address request {req['id']} refused by WH-SH: the label is printed"
    assert _street(oms, number) == "1 Century Avenue"
    [req] = _requests(oms, number)
    assert (req["status"], req["answer"]) == ("refused", "the label is printed")
    assert _incidents(oms, number) == [
        ("address request", f"WH-SH refused address request {req['id']}: the label is printed")]
    # The warehouse changes its mind: the request was answered, nothing moves.
    again = _answer(oms, number, req["id"], "accepted")
    assert again.startswith(f"ignored | ignored: order {number}: address request {req['id']} is refused already")
    assert _street(oms, number) == "1 Century Avenue"
    # So does the simulated warehouse's own answer when it comes.
    assert _answered(oms, req["id"]) == "refused"
    assert _street(oms, number) == "1 Century Avenue" and len(_incidents(oms, number)) == 1


def test_an_answer_about_a_request_never_asked_is_rejected_with_an_incident(oms: OMS) -> None:
    _, number = _dispatched(oms, "RA-3")
    said = _answer(oms, number, 999, "accepted")
    assert said == f"rejected | rejected: no address request 999 (order {number})"
    [(stage, error)] = _incidents(oms, number)
    assert stage == "address request" and "address request 999, which the OMS never asked" in error
    # And a word that is neither yes nor no is not guessed at.
    o2, other = _dispatched(oms, "RA-3b")
    _send(oms, _moved(o2))
    [req] = _requests(oms, other)
    assert _answer(oms, other, req["id"], "maybe").startswith("rejected | rejected: order")
    assert _requests(oms, other)[0]["status"] == "pending"


def test_an_acceptance_from_a_warehouse_the_order_has_since_left_is_set_aside_for_a_person(oms: OMS) -> None:
    o, number = _dispatched(oms, "RA-3c")
    _send(oms, _moved(o))
    [req] = _requests(oms, number)
    oms.commands.move(number, "WH-BJ", actor="support:li", reason="Shanghai flooded")
    said = _answer(oms, number, req["id"], "accepted")
    assert said == (f"applied | {number} address request {req['id']} set aside: WH-SH accepted, but the order had "
                    "moved to WH-BJ by then")
    assert _street(oms, number) == "1 Century Avenue" and _requests(oms, number)[0]["status"] == "refused"
    assert [stage for stage, _ in _incidents(oms, number)] == ["address request"]


def test_a_packed_order_is_asked_and_the_simulated_warehouse_refuses(oms: OMS) -> None:
    o = order_json("RA-4")
    number = _send(oms, o).number
    drive_until_state(oms, number, "packed")
    res = _send(oms, _moved(o))
    [req] = _requests(oms, number)
    assert "asked of WH-SH" in (res.message or "")
    assert _answered(oms, req["id"]) == "refused"
    [req] = _requests(oms, number)
    assert req["answer"] in ("the parcel is packed already", "the parcel is shipped already")
    assert _street(oms, number) == "1 Century Avenue"
    assert [stage for stage, _ in _incidents(oms, number)] == ["address request"]


def test_a_shipped_order_is_refused_at_once_for_a_person(oms: OMS) -> None:
    o = order_json("RA-5")
    number = _send(oms, o).number
    drive_until_state(oms, number, "shipped")
    res = _send(oms, _moved(o))
    assert ("ship_to: refused: the order is shipped: the parcel is on its way, so the new address is for a "
            "person to take up with the carrier") in (res.message or "")
    assert _asked(oms) == [] and _requests(oms, number) == []
    assert _street(oms, number) == "1 Century Avenue"
    [(stage, error)] = _incidents(oms, number)
    assert stage == "channel update" and error.startswith("ship_to: refused: the order is shipped")


def test_a_newer_address_supersedes_a_pending_request_which_is_never_sent(oms: OMS) -> None:
    o, number = _dispatched(oms, "RA-6")
    _send(oms, _moved(o, "2 First Street"))
    res = _send(oms, _moved(o, "3 Second Street"))
    first, second = _requests(oms, number)
    assert (first["status"], second["status"]) == ("superseded", "pending")
    assert f"address request {first['id']} superseded" in (res.message or "")
    assert [m.status for m in _asked(oms)] == ["withdrawn", "pending"]
    assert _answered(oms, second["id"]) == "accepted"
    assert _street(oms, number) == "3 Second Street"
    assert [m.status for m in _asked(oms)] == ["withdrawn", "sent"]
    # A late word about the superseded one changes nothing.
    assert _answer(oms, number, first["id"], "accepted").startswith("ignored | ")
    assert _street(oms, number) == "3 Second Street"


def test_going_back_to_the_address_it_has_asks_only_when_the_warehouse_was_told_otherwise(oms: OMS) -> None:
    o, number = _dispatched(oms, "RA-6b")
    _send(oms, _moved(o, "2 First Street"))
    res = _send(oms, o)             # the customer changed their mind before the warehouse heard of it
    [first] = _requests(oms, number)
    assert "ship_to: it goes to that address already (address request " in (res.message or "")
    assert first["status"] == "superseded" and [m.status for m in _asked(oms)] == ["withdrawn"]
    _send(oms, _moved(o, "2 First Street"))
    oms.pipeline.run_until_idle()   # this time the warehouse is sent it
    res = _send(oms, {**o, "note": "back home"})
    _, second, third = _requests(oms, number)
    assert (second["status"], third["status"]) == ("superseded", "pending")
    assert third["ship_to"]["line1"] == "1 Century Avenue" and "asked of WH-SH" in (res.message or "")
    assert [m.status for m in _asked(oms)] == ["withdrawn", "sent", "pending"]
    # The warehouse's word on the older one is kept with it, and changes nothing.
    assert _answer(oms, number, second["id"], "accepted").startswith("ignored | ")
    assert _requests(oms, number)[1]["answer"].endswith("then WH-SH answered 'accepted'")
    assert _answered(oms, third["id"]) == "accepted"
    assert _street(oms, number) == "1 Century Avenue"


def test_the_same_update_applied_twice_asks_once(oms: OMS) -> None:
    o, number = _dispatched(oms, "RA-7")
    updates, oms.intake.updates = oms.intake.updates, None     # an intake stopped before applying it
    res = _send(oms, _moved(o))
    oms.intake.updates = updates
    assert res.update is not None and _asked(oms) == []
    first = oms.updates.apply_pending()
    assert oms.updates.apply(res.update) == first[res.update]      # applied again: its outcome, nothing more
    assert oms.updates.apply_pending() == {}
    assert _send(oms, _moved(o)).update is None                     # the same content again: a duplicate
    assert len(_asked(oms)) == 1 and len(_requests(oms, number)) == 1
    with oms.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OrderUpdate).where(OrderUpdate.status == "pending")) == 0
    # The channel sends it once more with something else changed: the address it asked for is no change.
    res = _send(oms, {**_moved(o), "note": "ring twice"})
    assert "ship_to" not in (res.message or "") and "note: recorded" in (res.message or "")
    assert len(_asked(oms)) == 1


def test_a_merged_parcel_is_asked_about_by_its_document(oms: OMS) -> None:
    a = order_json("RA-8a", flat="8")
    b = order_json("RA-8b", flat="8")
    first, second = _send(oms, a).number, _send(oms, b).number
    for _ in range(10):
        oms.pipeline.run_until_idle()
        if {status(oms, first), status(oms, second)} == {"dispatched"}:
            break
        oms.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]
    with oms.db.read() as s:
        document = s.scalars(select(OutboxMessage.order_number).where(OutboxMessage.topic == "wms.create")).one()
    assert document not in (first, second), "the two orders ship as one parcel"
    _send(oms, _moved(b))
    [msg] = _asked(oms)
    assert (msg.payload["order_number"], msg.payload["document"]) == (second, document)
    [req] = _requests(oms, second)
    assert req["document"] == document
    assert _answered(oms, req["id"]) == "accepted"
    assert (_street(oms, first), _street(oms, second)) == ("1 Century Avenue", NEW_STREET)


# -- a split order ------------------------------------------------------------------------------------------
def _split(oms: OMS, external_id: str) -> tuple[dict[str, Any], str, dict[str, str]]:
    """An order of two merchants: the pen from Guangzhou, the mug from Shanghai."""
    o = order_json(external_id, [("PEN-1", 1), ("MUG-1", 1)])
    number = _send(oms, o).number
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        children = {c["warehouse"]: c["number"] for c in explain(s, number)["children"]}
    assert set(children) == {"WH-GZ", "WH-SH"}
    return o, number, children


def test_a_split_order_answers_each_part_by_its_state(oms: OMS, monkeypatch: pytest.MonkeyPatch) -> None:
    # Guangzhou's WMS cannot be reached: its part's document waits in the outbox, not sent.
    monkeypatch.setenv("OMS_WMS_SECRET_GZ", "gz-secret")
    oms.masterdata.apply("warehouses", [Row("t", {"code": "WH-GZ", "wms_connector": "wms_json", "wms_settings": {
        "url": "http://127.0.0.1:9", "secret_env": "OMS_WMS_SECRET_GZ", "timeout": 1}})],
        actor="t", source="t", merge=True)
    o, number, children = _split(oms, "RA-9")
    gz, sh = children["WH-GZ"], children["WH-SH"]
    assert (status(oms, gz), status(oms, sh)) == ("routed", "dispatched")
    res = _send(oms, _moved(o))
    [req] = _requests(oms, number)
    assert req["order"] == sh
    assert (f"ship_to: the order goes to the new address; part {gz}: the order goes to the new address (its "
            f"document for WH-GZ, not sent yet, with it); part {sh}: asked of WH-SH (address request {req['id']})"
            ) in (res.message or "")
    # The parent follows the customer, the routed part goes there at once, its waiting document with it; the
    # dispatched part keeps its address until Shanghai answers.
    assert (_street(oms, number), _street(oms, gz), _street(oms, sh)) == (NEW_STREET, NEW_STREET, "1 Century Avenue")
    with oms.db.read() as s:
        [doc] = s.scalars(select(OutboxMessage).where(OutboxMessage.order_number == gz,
                                                      OutboxMessage.topic == "wms.create"))
        assert doc.status == "pending" and doc.payload["ship_to"]["line1"] == NEW_STREET
    [msg] = _asked(oms)
    assert msg.order_number == sh and msg.target == "sim_wms"
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        asked_of = s.get(AddressRequest, req["id"])
        assert asked_of is not None and asked_of.status == "pending"
    # Only the Shanghai part's own queue carries on: answered there, it goes to the new address too.
    _answer(oms, sh, req["id"], "accepted")
    assert _street(oms, sh) == NEW_STREET
    assert _incidents(oms, number) == []


def test_a_split_order_with_a_part_shipped_refuses_that_part_and_asks_for_the_other(oms: OMS) -> None:
    o, number, children = _split(oms, "RA-10")
    gz, sh = children["WH-GZ"], children["WH-SH"]
    # Shanghai ships its part (as its WMS says, over the callback path) before the new address comes.
    with oms.db.session() as s:
        for step in ("ACCEPTED", "PICKING", "PACKED"):
            oms.callbacks.receive(s, "sim_wms", {"order_number": sh, "status": step})
        oms.callbacks.receive(s, "sim_wms", {"order_number": sh, "status": "SHIPPED", "tracking_no": "SIM1"})
    oms.pipeline.run_until_idle()
    assert (status(oms, gz), status(oms, sh)) == ("dispatched", "shipped")
    res = _send(oms, _moved(o))
    [req] = _requests(oms, number)
    assert req["order"] == gz
    said = res.message or ""
    assert f"part {gz}: asked of WH-GZ (address request {req['id']})" in said
    assert f"part {sh}: refused: the order is shipped: the parcel is on its way" in said
    assert _street(oms, number) == NEW_STREET
    assert [stage for stage, _ in _incidents(oms, sh)] == ["channel update"]
    assert _answered(oms, req["id"]) == "accepted"
    assert (_street(oms, gz), _street(oms, sh)) == (NEW_STREET, "1 Century Avenue")


def test_a_split_order_with_every_part_shipped_is_refused_and_keeps_its_address(oms: OMS) -> None:
    o, number, children = _split(oms, "RA-11")
    for child in children.values():
        drive_until_state(oms, child, "shipped")
    res = _send(oms, _moved(o))
    assert "ship_to: refused: no part of the order can take it" in (res.message or "")
    assert _street(oms, number) == "1 Century Avenue" and _asked(oms) == []


# -- over HTTP, against the stand-in WMS ----------------------------------------------------------------------
SECRET, SECRET_ENV = "wms-secret-for-shanghai", "OMS_WMS_SECRET_SH"


@pytest.fixture(params=["json", "xml"])
def standin(request: pytest.FixtureRequest, oms: OMS, monkeypatch: pytest.MonkeyPatch) -> Iterator[WmsStandIn]:
    """WH-SH run by a stand-in WMS speaking JSON or XML, calling back through the OMS's API on loopback."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    api = ApiServer(create_app(oms, tokens=TOKENS))
    try:
        with WmsStandIn(request.param, secret=SECRET, oms_url=f"http://127.0.0.1:{api.port}") as wms:
            oms.masterdata.apply("warehouses", [Row("t", {"code": "WH-SH", "wms_connector": f"wms_{request.param}",
                                                          "wms_settings": {"url": wms.url, "secret_env": SECRET_ENV,
                                                                           "timeout": 2}})],
                                 actor="t", source="t", merge=True)
            yield wms
    finally:
        api.close()


def test_over_http_the_wms_is_asked_and_its_answers_are_applied(oms: OMS, standin: WmsStandIn) -> None:
    wms = standin
    o, number = _dispatched(oms, "RA-HTTP-1")
    _send(oms, _moved(o))
    oms.pipeline.run_until_idle()
    [asked] = wms.readdress_asked()
    [req] = _requests(oms, number)
    assert asked.data == {"order_number": number, "document": number, "warehouse": "WH-SH",
                          "ship_to": {**o["ship_to"], "line1": NEW_STREET}, "request": req["id"],
                          "reason": asked.data["reason"]}
    [sent] = wms.requests("readdress")
    assert sent.signed and sent.outcome == "created" and sent.headers["idempotency-key"] == asked.key
    assert _asked(oms)[0].status == "sent"
    assert _street(oms, number) == "1 Century Avenue"
    reply = wms.answer_readdress(asked, accepted=True)
    assert reply.status == 202
    oms.pipeline.run_until_idle()
    assert _street(oms, number) == NEW_STREET and _requests(oms, number)[0]["status"] == "accepted"
    # The same callback delivered twice is a duplicate; another saying no changes nothing either.
    wms.post_callback(reply.body)
    wms.answer_readdress(asked, accepted=False, reason="too late")
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        statuses = [m.status for m in s.scalars(select(InboxMessage).where(InboxMessage.source == f"wms_{wms.fmt}")
                                                .order_by(InboxMessage.id))]
    assert statuses == ["applied", "duplicate", "ignored"]
    assert _street(oms, number) == NEW_STREET and _incidents(oms, number) == []

    # Another order: the warehouse refuses, with its reason.
    o2, other = _dispatched(oms, "RA-HTTP-2")
    _send(oms, _moved(o2))
    oms.pipeline.run_until_idle()
    asked2 = wms.readdress_asked()[-1]
    assert asked2.data["order_number"] == other
    wms.answer_readdress(asked2, accepted=False, reason="the parcel is sealed")
    oms.pipeline.run_until_idle()
    [req2] = _requests(oms, other)
    assert (req2["status"], req2["answer"]) == ("refused", "the parcel is sealed")
    assert _street(oms, other) == "1 Century Avenue"
    assert [stage for stage, _ in _incidents(oms, other)] == ["address request"]


def test_over_http_a_readdress_the_wms_refuses_to_take_is_retried_not_lost(oms: OMS, standin: WmsStandIn) -> None:
    wms = standin
    o, number = _dispatched(oms, "RA-HTTP-3")
    wms.fail(1)
    _send(oms, _moved(o))
    oms.pipeline.run_until_idle()
    [msg] = _asked(oms)
    assert (msg.status, msg.attempts) == ("pending", 1) and wms.readdress_asked() == []
    due = oms.pipeline.next_due()
    assert due is not None
    oms.clock.advance_to(due)  # type: ignore[attr-defined]
    oms.pipeline.run_until_idle()
    [asked] = wms.readdress_asked()
    assert asked.data["request"] == _requests(oms, number)[0]["id"] and _asked(oms)[0].status == "sent"

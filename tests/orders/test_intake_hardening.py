"""Hostile and sloppy input at intake: refused with the field named, on SQLite and PostgreSQL alike.

Each test runs on both backends (the ``oms`` fixture) because the failures it
guards against differed by backend: PostgreSQL refused NUL characters and
over-long text at INSERT, SQLite stored them; an out-of-range amount or date
crashed the whole ingest on one and not the other.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.orders.canonical import MAX_AMOUNT, CanonicalOrder
from oms_engine.orders.customers import CustomerError, update_customer
from oms_engine.orders.explain import explain
from oms_engine.orders.intake import IngestResult
from oms_engine.orders.queries import get_order
from oms_engine.storage.db import append
from oms_engine.storage.models import Customer, CustomerChange, History, Order, RawPayload
from oms_plugins.channels.json_channel import JsonChannel
from tests.support import T0, build_oms, order_json, payload
from tests.support.pipeline import stock, table_counts

Change = Callable[[dict[str, Any]], Any]


def changed(external_id: str, change: Change, **kw: Any) -> dict[str, Any]:
    o = copy.deepcopy(order_json(external_id, **kw))
    change(o)
    return o


def last_outcome(oms: OMS) -> str:
    with oms.db.session() as s:
        raw = s.scalars(select(RawPayload).order_by(RawPayload.id.desc())).first()
        assert raw is not None
        return raw.outcome


def ingest_refused(oms: OMS, cases: dict[str, tuple[bytes, str]]) -> list[str]:
    """Ingest each body alone; returns what went wrong: an exception, a stored order, an error not naming
    the field, or any row left behind but the raw payload."""
    problems: list[str] = []
    for name, (body, field) in cases.items():
        before, stock_before = table_counts(oms), stock(oms)
        try:
            results = oms.intake.ingest("json", body)
        except Exception as exc:  # the bug this guards against: one bad payload took the ingest down
            problems.append(f"{name}: raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if len(results) != 1 or results[0].number is not None or not results[0].error:
            problems.append(f"{name}: not refused: {[r.to_dict() for r in results]}")
            continue
        if field not in results[0].error:
            problems.append(f"{name}: the error does not name {field!r}: {results[0].error[:300]}")
        after = table_counts(oms)
        if after["raw_payloads"] != before["raw_payloads"] + 1:
            problems.append(f"{name}: the raw payload was not kept")
        left = {t: (before[t], n) for t, n in after.items() if t != "raw_payloads" and n != before[t]}
        if left or stock(oms) != stock_before:
            problems.append(f"{name}: rows left behind: {left}")
        if field not in last_outcome(oms):
            problems.append(f"{name}: the raw payload's outcome does not name {field!r}: {last_outcome(oms)[:300]}")
    return problems


def body_of(change: Change, **kw: Any) -> bytes:
    return payload(changed("BAD-1", change, **kw))


def _set(path: str, value: Any) -> Change:
    """A change setting ``a.b.0.c`` (dotted, list indexes as numbers) to ``value``."""
    *parents, last = path.split(".")

    def change(o: dict[str, Any]) -> None:
        node: Any = o
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return change


# -- 1. out of bounds: amounts, dates, text, characters --------------------------------------------
OUT_OF_BOUNDS: dict[str, tuple[Change, str]] = {
    "amount 1e30": (_set("freight", "1e30"), "freight"),
    "amount 1e999999999": (_set("coupon", "1e999999999"), "coupon"),
    "amount past 2^63 as a string": (_set("lines.0.unit_price", str(2**63)), "lines.0.unit_price"),
    "amount past 2^63 as a number": (_set("payment.amount", 2**63), "payment.amount"),
    "amount just past the bound": (_set("freight", "100000000000.01"), "freight"),
    "quantity past 2^63": (_set("lines.0.quantity", 2**63), "lines.0.quantity"),
    "a line past the bound": (_set("lines.0", {"sku": "TEA-1", "quantity": 100_000,
                                              "unit_price": "1000000.01"}), "lines.0"),
    "lines past the bound together": (_set("lines", [{"sku": "TEA-1", "quantity": 1, "unit_price": "60000000000.00"},
                                                     {"sku": "MUG-1", "quantity": 1, "unit_price": "60000000000.00"}]),
                                      "lines + freight + tax"),
    "placed in year 9999": (_set("placed_at", "9999-12-31T23:59:59Z"), "placed_at"),
    "placed before 1970": (_set("placed_at", "1969-12-31T23:59:59Z"), "placed_at"),
    "paid in year 9999": (_set("payment.paid_at", "9999-12-31T23:59:59+14:00"), "payment.paid_at"),
    "NUL in the customer's name": (_set("customer.name", "Li\u0000Lei"), "customer.name"),
    "NUL in the address": (_set("ship_to.line1", "1 Century\u0000 Avenue"), "ship_to.line1"),
    "NUL in the note": (_set("note", "ring twice\u0000"), "note"),
    "NUL in the SKU": (_set("lines.0.sku", "TEA-1\u0000"), "lines.0.sku"),
    "escape in the external id": (_set("external_id", "BAD-1\u001b[2J"), "external_id"),
    "C1 control in the city": (_set("ship_to.city", "Shang\u0085hai"), "ship_to.city"),
    "lone surrogate in the name": (_set("customer.name", "\ud800"), "customer.name"),
    "NUL in an unknown key": (_set("\u0000", 1), "\\u0000"),
    "300-character SKU": (_set("lines.0.sku", "S" * 300), "lines.0.sku"),
    "300-character transaction id": (_set("payment.transaction_id", "T" * 300), "payment.transaction_id"),
    "10,000-character name": (_set("customer.name", "N" * 10_000), "customer.name"),
    "10,000-character line name": (_set("lines.0.name", "N" * 10_000), "lines.0.name"),
    "129-character customer ref": (_set("customer.ref", "C" * 129), "customer.ref"),
    "129-character external id": (_set("external_id", "E" * 129), "external_id"),
    "4,001-character note": (_set("note", "n" * 4001), "note"),
    "65-character phone": (_set("ship_to.phone", "1" * 65), "ship_to.phone"),
}


def test_out_of_bounds_input_is_refused_naming_the_field_and_stores_nothing(oms: OMS) -> None:
    cases = {name: (body_of(change), field) for name, (change, field) in OUT_OF_BOUNDS.items()}
    assert not ingest_refused(oms, cases)
    assert table_counts(oms)["orders"] == 0


WHOLE_BODY: dict[str, tuple[bytes, str]] = {
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "nested"),
    "a 5,000-digit integer": (b'{"external_id": "BAD-1", "freight": ' + b"9" * 5000 + b"}", "number"),
    "UTF-16": (payload(order_json("BAD-1")).decode().encode("utf-16"), "byte-order mark"),
    # ASCII in UTF-16 is valid UTF-8 with NULs in it: refused as the JSON it then is not.
    "UTF-16 without a byte-order mark": (payload(order_json("BAD-1")).decode().encode("utf-16-le"), "invalid JSON"),
    "Latin-1": ('{"external_id": "BAD-\u00e9"}'.encode("latin-1"), "UTF-8"),
    "duplicate keys": (b'{"external_id": "BAD-1", "external_id": "BAD-2"}', "twice"),
    "NaN": (b'{"external_id": "BAD-1", "freight": NaN}', "NaN"),
}


def test_malformed_json_is_refused_as_such_and_stores_nothing(oms: OMS) -> None:
    cases = {name: (body, field) for name, (body, field) in WHOLE_BODY.items()}
    assert not ingest_refused(oms, cases)
    with oms.db.session() as s:
        outcomes = list(s.scalars(select(RawPayload.outcome)))
    assert len(outcomes) == len(WHOLE_BODY) and all("invalid JSON" in o for o in outcomes), outcomes


MAPPER = """
from oms_engine import hookimpl

@hookimpl
def oms_resolve_sku(sku):
    if sku == "EXT-LONG":
        return "X" * 300
    if sku == "EXT-BOOM":
        raise ConnectionError("the mapping service is down")
    return None
"""


def test_a_failing_sku_mapper_holds_only_its_orders_with_the_reason(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "mapper.py").write_text(MAPPER, encoding="utf-8")
    oms = build_oms(tmp_path, sqlite_url, plugins=[str(tmp_path / "mapper.py")])
    try:
        results = oms.intake.ingest("json", payload(order_json("MAP-1", [("EXT-LONG", 1)]),
                                                    order_json("MAP-2"), order_json("MAP-3", [("EXT-BOOM", 1)])))
        long_, fine, boom = results
        assert fine.status == "paid"
        assert long_.status == boom.status == "on_hold"      # stored and held, never dropped
        with oms.db.read() as s:
            held = {n: explain(s, n) for n in (long_.number, boom.number)}
        assert "EXT-LONG' could not be mapped" in held[long_.number]["hold_reason"]
        assert "64 characters" in held[long_.number]["hold_reason"]
        assert "ConnectionError: the mapping service is down" in held[boom.number]["hold_reason"]
        [incident] = held[boom.number]["incidents"]
        assert incident["plugin"] == "mapper" and incident["hook"] == "oms_resolve_sku"
        assert held[boom.number]["lines"][0]["sku"] == "EXT-BOOM"
    finally:
        oms.close()


# -- 2. each order of a payload on its own ----------------------------------------------------------
def test_a_bad_order_costs_only_itself_and_the_outcome_says_which(oms: OMS) -> None:
    bad = changed("BAD-9999", _set("placed_at", "9999-12-31T23:59:59Z"))
    long_sku = changed("BAD-SKU", _set("lines.0.sku", "S" * 300))
    results = oms.intake.ingest("json", payload(order_json("GOOD-1"), bad, order_json("GOOD-2"), long_sku))
    assert [r.external_id for r in results] == ["GOOD-1", "BAD-9999", "GOOD-2", "BAD-SKU"]
    good1, bad1, good2, bad2 = results
    assert good1.status == good2.status == "paid" and good1.number and good2.number
    assert bad1.number is None and bad1.error and "placed_at" in bad1.error
    assert bad2.number is None and bad2.error and "lines.0.sku" in bad2.error
    with oms.db.session() as s:
        assert sorted(s.scalars(select(Order.external_id))) == ["GOOD-1", "GOOD-2"]
    outcome = last_outcome(oms)
    assert f"GOOD-1: {good1.number}" in outcome and f"GOOD-2: {good2.number}" in outcome
    assert "BAD-9999: placed_at" in outcome and "BAD-SKU: lines.0.sku" in outcome


def test_an_order_failing_half_way_through_creation_leaves_nothing_and_its_neighbours_stored(
        oms: OMS, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever breaks inside creation (here: after the order, its customer, its reservation and its history
    were written), the order's savepoint takes back all of it, and the stock it held is there for the next."""
    real = oms.intake.creator._finish

    def finish(s: Any, draft: Any, order: Any, *args: Any, **kw: Any) -> None:
        real(s, draft, order, *args, **kw)
        if draft.canon.external_id == "BOOM":
            raise RuntimeError("a bug after the rows were written")

    monkeypatch.setattr(oms.intake.creator, "_finish", finish)
    before, stock_before = table_counts(oms), stock(oms)
    # RARE-1: one unit in all; BOOM reserves it and fails, LAST must get it.
    results = oms.intake.ingest("json", payload(
        order_json("FIRST"), order_json("BOOM", [("RARE-1", 1)], customer="C-BOOM"),
        order_json("LAST", [("RARE-1", 1)])))
    first, boom, last = results
    assert boom.number is None and boom.error == "the order could not be stored (RuntimeError)"
    assert first.status == "paid" and last.status == "paid", results
    with oms.db.session() as s:
        assert sorted(s.scalars(select(Order.external_id))) == ["FIRST", "LAST"]
        assert s.scalar(select(Customer).where(Customer.ref == "C-BOOM")) is None
    after = table_counts(oms)
    assert after["orders"] == before["orders"] + 2 and after["customers"] == before["customers"]
    assert after["reservations"] == before["reservations"] + 2  # FIRST's tea and LAST's RARE-1
    assert stock(oms)[("WH-SH", "RARE-1")] == (stock_before[("WH-SH", "RARE-1")][0], 1)


def test_a_row_failing_only_at_commit_costs_its_own_order_only(oms: OMS, monkeypatch: pytest.MonkeyPatch) -> None:
    """History rows and the like are queued and written at commit, for the whole payload at once: a bad one
    must not take the payload's other orders with it."""
    real = oms.intake.creator._finish

    def finish(s: Any, draft: Any, order: Any, *args: Any, **kw: Any) -> None:
        real(s, draft, order, *args, **kw)
        if draft.canon.external_id == "POISON":
            append(s, History, order_id=order.id, from_state=None, to_state=None, event="x", actor="x", cause="",
                   at=T0)  # to_state is NOT NULL

    monkeypatch.setattr(oms.intake.creator, "_finish", finish)
    before = table_counts(oms)
    results = oms.intake.ingest("json", payload(order_json("OK-A"), order_json("POISON"), order_json("OK-B")))
    assert [(r.external_id, r.status) for r in results] == [("OK-A", "paid"), ("POISON", None), ("OK-B", "paid")]
    assert results[1].error and "could not be stored" in results[1].error
    with oms.db.session() as s:
        assert sorted(s.scalars(select(Order.external_id))) == ["OK-A", "OK-B"]
    after = table_counts(oms)
    assert after["order_history"] - before["order_history"] == 4  # create + pay, for each good order
    assert after["reservations"] - before["reservations"] == 2


# -- 3. time zones ------------------------------------------------------------------------------------
OFFSETS = ["+08:00", "-08:00", "Z", "+05:45", "-03:30", "+14:00"]


def at_offset(t: datetime, offset: str) -> str:
    """``t`` (naive UTC) written as the same instant at ``offset``."""
    if offset == "Z":
        return t.isoformat() + "Z"
    sign = 1 if offset[0] == "+" else -1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return t.replace(tzinfo=UTC).astimezone(zone).isoformat()


def test_placed_at_offsets_are_applied_and_the_payment_window_is_30_minutes_at_every_offset(oms: OMS) -> None:
    orders = [order_json(f"TZ-{i}", paid=False, placed_at=at_offset(T0, off)) for i, off in enumerate(OFFSETS)]
    assert orders[0]["placed_at"] == "2026-11-02T17:00:00+08:00"
    assert orders[1]["placed_at"] == "2026-11-02T01:00:00-08:00"
    results = oms.intake.ingest("json", payload(*orders))
    assert [r.status for r in results] == ["pending_payment"] * len(OFFSETS), results
    with oms.db.session() as s:
        for r in results:
            o = get_order(s, r.number)
            assert (o.placed_at, o.due_at) == (T0, T0 + timedelta(minutes=30)), (r.external_id, o.placed_at)
    oms.pipeline.run_until_idle()
    oms.clock.advance(timedelta(minutes=29))  # type: ignore[attr-defined]
    oms.pipeline.run_until_idle()
    with oms.db.session() as s:
        assert [get_order(s, r.number).status for r in results] == ["pending_payment"] * len(OFFSETS)
    oms.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    oms.pipeline.run_until_idle()
    with oms.db.session() as s:
        assert [get_order(s, r.number).status for r in results] == ["cancelled"] * len(OFFSETS)


def test_paid_at_is_kept_in_utc(oms: OMS) -> None:
    o = order_json("TZ-PAID", placed_at="2026-11-02T17:00:00+08:00")
    o["payment"]["paid_at"] = "2026-11-02T01:05:30.25-08:00"
    [r] = oms.intake.ingest("json", payload(o))
    assert r.status == "paid"
    with oms.db.session() as s:
        row = get_order(s, r.number)
        assert row.placed_at == T0 and row.paid_at == T0 + timedelta(minutes=5, seconds=30, milliseconds=250)


def test_a_time_without_an_offset_or_in_another_format_is_refused(oms: OMS) -> None:
    cases = {
        "placed_at without offset": (body_of(_set("placed_at", "2026-11-02T09:00:00")), "placed_at"),
        "paid_at without offset": (body_of(_set("payment.paid_at", "2026-11-02T09:00:00")), "payment.paid_at"),
        "date only": (body_of(_set("placed_at", "2026-11-02")), "placed_at"),
        "unix seconds": (body_of(_set("placed_at", 1793610000)), "placed_at"),
        "space separated": (body_of(_set("placed_at", "2026-11-02 09:00:00Z")), "placed_at"),
        "hour 25": (body_of(_set("placed_at", "2026-11-02T25:00:00Z")), "placed_at"),
    }
    assert not ingest_refused(oms, cases)
    [r] = oms.intake.ingest("json", body_of(_set("placed_at", "2026-11-02T09:00:00")))
    assert r.error and "offset" in r.error


# -- 4. the customer record is the OMS's ---------------------------------------------------------------
def test_a_payload_does_not_overwrite_a_known_customer_and_keeps_its_contact_on_the_order(oms: OMS) -> None:
    o = order_json("CONTACT-1")  # C-OLD is "Loyal Li", li@example.com, 13800000000 in the OMS
    o["customer"].update(name="Mallory", email="mallory@example.net", phone="13999999999")
    [r] = oms.intake.ingest("json", payload(o))
    assert r.status == "paid"
    with oms.db.session() as s:
        c = s.scalars(select(Customer).where(Customer.ref == "C-OLD")).one()
        assert (c.name, c.email, c.phone, c.level) == ("Loyal Li", "li@example.com", "13800000000", "gold")
        assert get_order(s, r.number).contact == {"name": "Mallory", "email": "mallory@example.net",
                                                  "phone": "13999999999"}
        assert s.scalar(select(func.count()).select_from(CustomerChange)) == 0


def test_a_new_customer_is_made_from_the_first_order_and_later_orders_do_not_change_it(oms: OMS) -> None:
    first = order_json("NEWC-1", customer="C-NEW")
    first["customer"].update(name="First Name", level="silver")
    second = order_json("NEWC-2", customer="C-NEW")
    second["customer"].update(name="Second Name", email="second@example.com", level="platinum")
    r1, r2 = oms.intake.ingest("json", payload(first, second))
    [r3] = oms.intake.ingest("json", payload(changed("NEWC-3", _set("customer.phone", "999"), customer="C-NEW")))
    with oms.db.session() as s:
        c = s.scalars(select(Customer).where(Customer.ref == "C-NEW")).one()
        assert (c.name, c.email, c.phone, c.level) == ("First Name", "c-new@example.com", "13800000000", "silver")
        assert get_order(s, r2.number).contact["name"] == "Second Name"
        assert get_order(s, r3.number).contact["phone"] == "999"
        assert {get_order(s, r.number).customer_id for r in (r1, r2, r3)} == {c.id}


def test_update_customer_is_audited_field_by_field(oms: OMS) -> None:
    with oms.db.session() as s:
        rows = update_customer(s, "C-OLD", {"email": "li.lei@example.com", "phone": "13800000000",
                                            "blacklisted": True}, "support:ann", "customer asked by phone",
                               at=T0)
        assert [(r.field, r.old_value, r.new_value) for r in rows] == [
            ("email", "li@example.com", "li.lei@example.com"), ("blacklisted", "false", "true")]
    with oms.db.session() as s:
        c = s.scalars(select(Customer).where(Customer.ref == "C-OLD")).one()
        assert (c.email, c.phone, c.blacklisted) == ("li.lei@example.com", "13800000000", True)
        audit = list(s.scalars(select(CustomerChange).order_by(CustomerChange.id)))
        assert [(a.customer_id, a.field, a.actor, a.reason, a.at) for a in audit] == [
            (c.id, "email", "support:ann", "customer asked by phone", T0),
            (c.id, "blacklisted", "support:ann", "customer asked by phone", T0)]
        assert update_customer(s, "C-OLD", {"email": "li.lei@example.com"}, "support:ann", "again") == []


REFUSED_CHANGES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("C-OLD", {"nickname": "x"}, "ops", "why", "nickname"),
    ("C-OLD", {"name": "ok", "email": "x" * 201}, "ops", "why", "email"),
    ("C-OLD", {"name": "Li\u0000Lei"}, "ops", "why", "name"),
    ("C-OLD", {"blacklisted": "yes"}, "ops", "why", "blacklisted"),
    ("C-OLD", {"name": "ok"}, "ops", "  ", "reason"),
    ("C-OLD", {"name": "ok"}, "ops", "bad\u0000reason", "reason"),
    ("C-OLD", {"name": "ok"}, "", "why", "actor"),
    ("C-NOBODY", {"name": "ok"}, "ops", "why", "C-NOBODY"),
]


def test_update_customer_refuses_and_changes_nothing(oms: OMS) -> None:
    for ref, changes, actor, reason, says in REFUSED_CHANGES:
        with oms.db.session() as s, pytest.raises(CustomerError, match=says):
            update_customer(s, ref, changes, actor, reason)
    with oms.db.session() as s:
        assert s.scalars(select(Customer.name).where(Customer.ref == "C-OLD")).one() == "Loyal Li"
        assert s.scalar(select(func.count()).select_from(CustomerChange)) == 0


# -- 5. exactly the documented format --------------------------------------------------------------------
LOOSE: dict[str, tuple[Change, str]] = {
    "quantity as a string": (_set("lines.0.quantity", "2"), "lines.0.quantity"),
    "quantity as true": (_set("lines.0.quantity", True), "lines.0.quantity"),
    "quantity as 2.0": (_set("lines.0.quantity", 2.0), "lines.0.quantity"),
    "Arabic-Indic digits": (_set("lines.0.unit_price", "\u0665\u0669.\u0660\u0660"), "lines.0.unit_price"),
    "fullwidth digits": (_set("freight", "\uff11\uff10.00"), "freight"),
    "underscores": (_set("lines.0.unit_price", "1_000.00"), "lines.0.unit_price"),
    "an exponent": (_set("freight", "1e1"), "freight"),
    "spaces": (_set("freight", " 10.00"), "freight"),
    "a plus sign": (_set("freight", "+10.00"), "freight"),
    "a negative amount": (_set("freight", "-10.00"), "freight"),
    "a number for money": (_set("freight", 10), "freight"),
    "a float for money": (_set("payment.amount", 128.0), "payment.amount"),
    "more decimals than the currency has": (_set("freight", "10.001"), "freight"),
    "currency XXX": (_set("currency", "XXX"), "currency"),
    "currency XTS": (_set("currency", "XTS"), "currency"),
    "currency gold": (_set("currency", "XAU"), "currency"),
    "three letters but no currency": (_set("currency", "ABC"), "currency"),
    "Cyrillic letters": (_set("currency", "\u0415UR"), "currency"),
    "Greek letters": (_set("currency", "\u0391\u0392\u0393"), "currency"),
    "lower case": (_set("currency", "cny"), "currency"),
    "currency as a number": (_set("currency", 156), "currency"),
    "a country name": (_set("ship_to.country", "China"), "ship_to.country"),
    "external id as a number": (_set("external_id", 1001), "external_id"),
    "sku as a number": (_set("lines.0.sku", 1001), "lines.0.sku"),
}


def test_loose_input_is_refused_naming_the_field(oms: OMS) -> None:
    cases = {name: (body_of(change), field) for name, (change, field) in LOOSE.items()}
    assert not ingest_refused(oms, cases)


def test_every_error_of_an_order_is_named_at_once() -> None:
    o = changed("BAD-1", _set("freight", "1_0"), lines=[("TEA-1", 1)])
    o["lines"][0]["quantity"] = "1"
    o["customer"]["name"] = "\u0000"
    [p] = JsonChannel().parse(payload(o))
    assert p.error and all(f in p.error for f in ("freight", "lines.0.quantity", "customer.name")), p.error


@pytest.mark.parametrize(("currency", "amount", "minor"), [("CNY", "10.5", 1050), ("JPY", "1000", 1000),
                                                           ("KWD", "1.250", 1250), ("EUR", "0", 0)])
def test_the_documented_format_is_accepted(currency: str, amount: str, minor: int) -> None:
    o = order_json("OK-1", currency=currency, freight="0", coupon="0")
    o["freight"] = amount
    o.pop("payment")
    [p] = JsonChannel().parse(payload(o))
    assert p.order is not None, p.error
    assert p.order.freight == minor and p.order.currency == currency


def test_the_canonical_model_holds_adapters_to_the_same_rules() -> None:
    """Adapters build the model from Python objects: no coercion there either, and times in UTC."""
    base: dict[str, Any] = {"channel": "x", "external_id": "A", "currency": "CNY", "customer": {"ref": "c"},
                            "ship_to": {}, "lines": [{"sku": "S", "quantity": 1}]}
    aware = datetime(2026, 11, 2, 17, 0, tzinfo=timezone(timedelta(hours=8)))
    order = CanonicalOrder.model_validate({**base, "placed_at": aware})
    assert order.placed_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC) and order.placed_at.utcoffset() == timedelta(0)
    for bad, field in [({"placed_at": datetime(2026, 11, 2, 9, 0)}, "placed_at"),
                       ({"freight": "100"}, "freight"), ({"freight": True}, "freight"),
                       ({"freight": MAX_AMOUNT + 1}, "freight"), ({"tax": -1}, "tax"),
                       ({"lines": [{"sku": "S", "quantity": 1.0}]}, "lines.0.quantity"),
                       ({"lines": [{"sku": "S", "quantity": 1}] * 501}, "lines")]:
        with pytest.raises(ValidationError) as err:
            CanonicalOrder.model_validate({**base, **bad})
        assert field in {".".join(map(str, e["loc"])) for e in err.value.errors()}, (bad, err.value)


# -- 6. a re-sent order whose content differs -----------------------------------------------------------
def test_a_resend_says_whether_its_content_differs(oms: OMS) -> None:
    original = order_json("RE-1", [("TEA-1", 2)])
    [first] = oms.intake.ingest("json", payload(original))
    assert first.to_dict().get("content_differs") is None and not first.duplicate

    # The same content, written differently: keys in another order, the same instant at another offset.
    same = dict(reversed(list(copy.deepcopy(original).items())))
    same["placed_at"] = "2026-11-02T17:00:00+08:00"
    [again] = oms.intake.ingest("json", json.dumps(same).encode())
    assert (again.duplicate, again.content_differs, again.number, again.message) == (True, False, first.number,
                                                                                      None)

    # Other content is taken as an update of the stored order (orders/updates.py): changed lines are refused
    # for a person, and the order stays as it was.
    other = order_json("RE-1", [("TEA-1", 3), ("MUG-1", 1)])
    [resent] = oms.intake.ingest("json", payload(other))
    assert resent.duplicate and resent.content_differs is True and resent.number == first.number
    assert resent.message and resent.message.startswith("taken as an update: lines: refused")
    assert resent.to_dict() == {"channel": "json", "external_id": "RE-1", "number": first.number, "status": "paid",
                                "duplicate": True, "content_differs": True, "message": resent.message,
                                "update": resent.update}
    assert "(content differs)" in last_outcome(oms)
    with oms.db.session() as s:
        stored = get_order(s, first.number)
        assert [(ln.sku, ln.quantity) for ln in stored.lines] == [("TEA-1", 2)]  # unchanged
        # The content the channel sent last is the one a re-send is compared with: the same again is a duplicate.
        parsed = JsonChannel().parse(payload(other))[0].order
        assert parsed is not None and stored.content_hash == parsed.content_hash()
        assert len(stored.content_hash or "") == 64
    [twice] = oms.intake.ingest("json", payload(other))
    assert twice.duplicate and twice.content_differs is False and twice.update is None
    assert table_counts(oms)["orders"] == 1


def test_a_resend_within_one_payload_is_compared_too(oms: OMS) -> None:
    results = oms.intake.ingest("json", payload(order_json("RE-2"), order_json("RE-2"),
                                                order_json("RE-2", [("MUG-1", 1)])))
    assert [(r.duplicate, r.content_differs) for r in results] == [(False, None), (True, False), (True, True)]
    assert len({r.number for r in results}) == 1


def test_a_resend_of_an_order_stored_before_content_hashes_says_it_cannot_tell(oms: OMS) -> None:
    [first] = oms.intake.ingest("json", payload(order_json("RE-3")))
    with oms.db.session() as s:
        get_order(s, first.number).content_hash = None
    [again] = oms.intake.ingest("json", payload(order_json("RE-3")))
    assert again.duplicate and again.content_differs is None and again.message
    assert "content_differs" not in again.to_dict()


def test_ingest_result_to_dict_leaves_out_what_does_not_apply() -> None:
    assert IngestResult("json", "X", "1", "paid").to_dict() == {"channel": "json", "external_id": "X", "number": "1",
                                                                "status": "paid", "duplicate": False}

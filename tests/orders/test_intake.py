"""Intake through the canonical JSON channel: field-named errors, idempotence, partial payloads, limits."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.orders.intake import MAX_PAYLOAD_BYTES, PayloadTooLarge
from oms_engine.orders.queries import get_order
from oms_engine.storage.models import Order, RawPayload
from oms_plugins.channels.json_channel import JsonChannel
from tests.support import order_json, payload


def count(oms: OMS, model: Any) -> int:
    with oms.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def mutate(fn: Any) -> dict[str, Any]:
    o = copy.deepcopy(order_json("BAD-1"))
    fn(o)
    return o


BAD_ORDERS = {
    "negative quantity": (lambda o: o["lines"][0].update(quantity=-1), "lines.0.quantity"),
    "zero quantity": (lambda o: o["lines"][0].update(quantity=0), "lines.0.quantity"),
    "missing lines": (lambda o: o.pop("lines"), "lines"),
    "empty lines": (lambda o: o.update(lines=[]), "lines"),
    "float freight": (lambda o: o.update(freight=12.5), "freight"),
    "float unit price": (lambda o: o["lines"][0].update(unit_price=12.5), "lines.0.unit_price"),
    "float payment": (lambda o: o["payment"].update(amount=12.5), "payment.amount"),
    "too many decimals": (lambda o: o.update(coupon="1.005"), "coupon"),
    "too many decimals in a line": (lambda o: o["lines"][0].update(unit_price="59.001"), "lines.0.unit_price"),
    "unknown field": (lambda o: o.update(colour="red"), "colour"),
    "unknown line field": (lambda o: o["lines"][0].update(colour="red"), "lines.0.colour"),
    "unknown customer field": (lambda o: o["customer"].update(nickname="x"), "customer.nickname"),
    "missing customer": (lambda o: o.pop("customer"), "customer"),
    "negative freight": (lambda o: o.update(freight="-1.00"), "freight"),
    "bad currency": (lambda o: o.update(currency="C1"), "currency"),
}


@pytest.mark.parametrize("case", sorted(BAD_ORDERS))
def test_parse_names_the_bad_field(case: str) -> None:
    change, field = BAD_ORDERS[case]
    [parsed] = JsonChannel().parse(json.dumps(mutate(change)).encode())
    assert parsed.order is None
    assert parsed.error and field in parsed.error, parsed.error
    assert parsed.external_id == "BAD-1"


@pytest.mark.parametrize("body", [b"{not json", b'{"external_id": "X"', b"\xff\xfe", b""])
def test_parse_invalid_json_is_an_error_not_an_exception(body: bytes) -> None:
    [parsed] = JsonChannel().parse(body)
    assert parsed.order is None and parsed.error and "invalid JSON" in parsed.error


def test_parse_non_object_items() -> None:
    parsed = JsonChannel().parse(b'[1, "x", null]')
    assert len(parsed) == 3 and all(p.order is None and p.error for p in parsed)


def test_parse_good_order_is_in_minor_units() -> None:
    o = order_json("GOOD-1", [("TEA-1", 2)], freight="10.00", coupon="5.50")
    o["lines"][0]["unit_price"] = "59.90"
    [parsed] = JsonChannel().parse(payload(o))
    assert parsed.error is None and parsed.order is not None
    assert parsed.order.freight == 1000 and parsed.order.coupon == 550
    assert parsed.order.lines[0].unit_price == 5990 and parsed.order.lines[0].quantity == 2


def test_ingest_bad_order_reports_and_stores_raw_but_no_order(sqlite_oms: OMS) -> None:
    body = json.dumps(mutate(lambda o: o["lines"][0].update(quantity=-3))).encode()
    [res] = sqlite_oms.intake.ingest("json", body, source="test")
    assert res.number is None and res.error and "lines.0.quantity" in res.error
    assert count(sqlite_oms, Order) == 0
    with sqlite_oms.db.session() as s:
        [raw] = s.scalars(select(RawPayload))
        assert raw.body == body  # kept verbatim
        assert "lines.0.quantity" in raw.outcome


def test_same_order_twice_is_one_order(oms: OMS) -> None:
    body = payload(order_json("DUP-1"))
    [first] = oms.intake.ingest("json", body)
    [second] = oms.intake.ingest("json", body)
    assert first.number and first.status == "paid" and not first.duplicate
    assert second.duplicate and second.number == first.number
    assert count(oms, Order) == 1
    # also within one payload
    results = oms.intake.ingest("json", payload(order_json("DUP-2"), order_json("DUP-2")))
    assert results[0].number == results[1].number and results[1].duplicate
    assert count(oms, Order) == 2


def test_list_with_one_bad_and_one_good_stores_the_good(oms: OMS) -> None:
    bad = mutate(lambda o: o.update(external_id="BAD-2", freight=12.5))
    good = order_json("GOOD-2")
    results = oms.intake.ingest("json", payload(bad, good))
    assert [r.external_id for r in results] == ["BAD-2", "GOOD-2"]
    assert results[0].error and "freight" in results[0].error and results[0].number is None
    assert results[1].error is None and results[1].number
    with oms.db.session() as s:
        assert [o.external_id for o in s.scalars(select(Order))] == ["GOOD-2"]


def test_oversized_payload_is_refused_before_anything_is_stored(sqlite_oms: OMS) -> None:
    o = order_json("BIG-1")
    o["note"] = "x" * MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLarge):
        sqlite_oms.intake.ingest("json", payload(o))
    assert count(sqlite_oms, RawPayload) == 0
    assert count(sqlite_oms, Order) == 0


def test_unmapped_sku_is_stored_on_hold_with_reason(oms: OMS) -> None:
    [res] = oms.intake.ingest("json", payload(order_json("UNM-1", [("NO-SUCH-SKU", 1)])))
    assert res.status == "on_hold"
    with oms.db.session() as s:
        order = get_order(s, res.number)
        assert "unmapped SKU 'NO-SUCH-SKU'" in (order.hold_reason or "")


def test_totals_that_disagree_are_held_not_dropped(sqlite_oms: OMS) -> None:
    o = order_json("TOT-1", [("TEA-1", 1)], paid=False, declared_total="1.00")
    [res] = sqlite_oms.intake.ingest("json", payload(o))
    assert res.status == "on_hold"
    with sqlite_oms.db.session() as s:
        assert "totals disagree" in (get_order(s, res.number).hold_reason or "")


def test_webhook_signature() -> None:
    """The JSON channel's signature covers the signing time and the delivery id as well as the body."""
    ch = JsonChannel()
    body = payload(order_json("SIG-1"))
    stamp = {"X-OMS-Timestamp": "1793000000", "X-OMS-Delivery": "d-1"}
    good = "sha256=" + hmac.new(b"s3cret", b"1793000000.d-1." + body, hashlib.sha256).hexdigest()
    assert ch.verify({**stamp, "X-OMS-Signature": good}, body, "s3cret")
    assert ch.verify({k.lower(): v for k, v in {**stamp, "X-OMS-Signature": good}.items()}, body, "s3cret")
    assert not ch.verify({**stamp, "X-OMS-Signature": good}, body + b" ", "s3cret")
    assert not ch.verify({**stamp, "X-OMS-Signature": good}, body, "other")
    assert not ch.verify({**stamp, "X-OMS-Delivery": "d-2", "X-OMS-Signature": good}, body, "s3cret")
    assert not ch.verify({**stamp, "X-OMS-Timestamp": "1793000001", "X-OMS-Signature": good}, body, "s3cret")
    body_only = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert not ch.verify({**stamp, "X-OMS-Signature": body_only}, body, "s3cret")
    assert not ch.verify({**stamp, "X-OMS-Signature": good[len("sha256="):]}, body, "s3cret")
    assert not ch.verify(stamp, body, "s3cret")
    assert not ch.verify({**stamp, "X-OMS-Signature": ""}, body, "s3cret")


def test_concurrent_first_orders_of_a_new_customer_are_all_stored(oms: OMS) -> None:
    """Two payloads from a customer never seen before, arriving at once: both orders are stored."""
    rounds, width = 4, 4
    problems: list[str] = []
    for r in range(rounds):
        barrier = threading.Barrier(width)

        def work(i: int, r: int = r, barrier: threading.Barrier = barrier) -> None:
            body = payload(order_json(f"NEW-{r}-{i}", customer=f"C-NEW-{r}"))
            barrier.wait()
            try:
                [res] = oms.intake.ingest("json", body)
                if res.error or not res.number:
                    problems.append(f"NEW-{r}-{i}: {res}")
            except Exception as exc:
                problems.append(f"NEW-{r}-{i}: {type(exc).__name__}: {str(exc).splitlines()[0]}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(width)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not problems, problems
    assert count(oms, Order) == rounds * width


def test_concurrent_duplicates_are_one_order(oms: OMS) -> None:
    body = payload(order_json("RACE-1"))
    barrier = threading.Barrier(4)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            results.extend(oms.intake.ingest("json", body))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len({r.number for r in results}) == 1 and len(results) == 4
    assert sum(not r.duplicate for r in results) == 1
    assert count(oms, Order) == 1


def test_release_of_a_stock_hold_counts_a_line_held_in_several_warehouses(sqlite_oms: OMS) -> None:
    from oms_engine.storage.models import Reservation, Stock

    # 120 tea fits only across three warehouses (50 + 50 + 20); one of two RARE-1 is missing.
    [r] = sqlite_oms.intake.ingest("json", payload(order_json("SPREAD-1", [("TEA-1", 120), ("RARE-1", 2)])))
    assert r.status == "on_hold"
    with sqlite_oms.db.session() as s:
        s.get(Stock, ("WH-SH", "RARE-1")).on_hand += 5  # type: ignore[union-attr]
    assert sqlite_oms.commands.release(r.number, actor="ops") == "paid"
    with sqlite_oms.db.read() as s:
        held: dict[str, int] = {}
        for res in s.scalars(select(Reservation)):
            held[res.sku] = held.get(res.sku, 0) + res.quantity
        reserved = dict(s.execute(select(Stock.sku, func.sum(Stock.reserved)).group_by(Stock.sku)).all())
    # exactly what the order needs, nothing reserved twice
    assert held == {"TEA-1": 120, "RARE-1": 2}
    assert reserved["TEA-1"] == 120 and reserved["RARE-1"] == 2

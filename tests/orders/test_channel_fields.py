"""What a channel sends beyond the canonical order (seed 002): kept as sent, shown, never refused for existing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.orders.canonical import MAX_EXTENSION_BYTES
from oms_engine.orders.explain import explain
from oms_engine.storage.models import ChannelFields, Order
from tests.support import order_json, payload


def _with_fields(external_id: str) -> dict[str, Any]:
    o = order_json(external_id, [("TEA-1", 1), ("TEA-2", 1)])
    o.update(order_type="StandardOrder", channel_status="Unshipped",
             extensions={"tags": ["vip", "gift"], "note_attributes": [{"name": "colour", "value": "green"}],
                         "is_prime": True, "fulfillment_channel": "MFN", "number": 1001})
    o["lines"][0].update(properties=[{"name": "Custom Engraving", "value": "Happy Birthday"}],
                         extensions={"variant_id": 39072856, "tax_lines": [{"price": "3.98", "rate": 0.06}]})
    return o


def test_the_channels_own_fields_are_kept_and_shown_with_the_order(oms: OMS) -> None:
    [res] = oms.intake.ingest("json", payload(_with_fields("EXT-1")))
    assert res.error is None and res.number
    with oms.db.session() as s:
        shown = explain(s, res.number)
    assert shown["channel_fields"] == {
        "order_type": "StandardOrder", "channel_status": "Unshipped",
        "extensions": {"tags": ["vip", "gift"], "note_attributes": [{"name": "colour", "value": "green"}],
                       "is_prime": True, "fulfillment_channel": "MFN", "number": 1001}}
    first, second = shown["lines"]
    assert first["properties"] == [{"name": "Custom Engraving", "value": "Happy Birthday"}]
    assert first["extensions"] == {"variant_id": 39072856, "tax_lines": [{"price": "3.98", "rate": 0.06}]}
    assert second["properties"] == [] and second["extensions"] == {}


def test_control_characters_in_the_channels_own_text_are_kept_as_sent(oms: OMS) -> None:
    o = order_json("EXT-4")
    o["extensions"] = {"gift_message": "Happy\tbirthday\u0007!\nLove, Mum", "bell\u0001": True}
    [res] = oms.intake.ingest("json", payload(o))
    assert res.error is None, res.error
    with oms.db.session() as s:
        assert explain(s, res.number)["channel_fields"]["extensions"] == o["extensions"]


def test_an_order_with_none_of_them_writes_no_row_for_them(oms: OMS) -> None:
    [res] = oms.intake.ingest("json", payload(order_json("EXT-2")))
    with oms.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ChannelFields)) == 0
        shown = explain(s, res.number)
    assert shown["channel_fields"] == {"order_type": "", "channel_status": "", "extensions": {}}
    assert shown["lines"][0]["properties"] == []


def test_the_same_order_sent_again_with_its_fields_is_one_order(oms: OMS) -> None:
    body = payload(_with_fields("EXT-3"))
    [first] = oms.intake.ingest("json", body)
    [again] = oms.intake.ingest("json", body)
    assert again.duplicate and again.number == first.number
    with oms.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ChannelFields)) == 1


@pytest.mark.parametrize(("change", "field", "why"), [
    (lambda o: o.update(extensions={"x": 2 ** 70}), "extensions", "x: the number 1180591620717411303424 is"),
    (lambda o: o.update(extensions={"": 1}), "extensions", "is not a name of 1 to 64"),
    (lambda o: o.update(extensions={"gift": "a\x00b"}), "extensions", "gift: contains U+0000 (NUL) at position 1"),
    (lambda o: o.update(extensions={"deep": [[[[[[[[[1]]]]]]]]]}), "extensions", "nested deeper than 8"),
    (lambda o: o.update(extensions={"big": "x" * MAX_EXTENSION_BYTES}), "extensions", "over the limit"),
    (lambda o: o.update(extensions=["not", "an", "object"]), "extensions", "an object of names"),
    (lambda o: o["lines"][0].update(properties=[{"value": "no name"}]), "lines.0.properties.0.name",
     "Field required"),
    (lambda o: o.update(order_type="x" * 33), "order_type", "at most 32"),
])
def test_fields_that_cannot_be_kept_are_refused_with_the_field_named(oms: OMS, change: Any, field: str,
                                                                     why: str) -> None:
    o = order_json("EXT-BAD")
    change(o)
    [res] = oms.intake.ingest("json", payload(o))
    assert res.number is None and res.error is not None
    assert field in res.error and why in res.error
    with oms.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0

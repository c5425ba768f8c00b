"""An id typed in another Unicode form is the same id: external ids and SKUs are compared composed (NFC)."""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.storage.models import Order, SkuMapping
from tests.support import order_json, payload

COMPOSED = "CAFÉ-1001"                                    # É as one character
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)       # E and a combining acute accent


def test_an_order_sent_with_its_id_decomposed_is_the_same_order(oms: OMS) -> None:
    assert COMPOSED != DECOMPOSED
    [first] = oms.intake.ingest("json", payload(order_json(COMPOSED)))
    [again] = oms.intake.ingest("json", payload(order_json(DECOMPOSED)))
    assert again.duplicate and again.number == first.number
    with oms.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert s.scalar(select(Order.external_id)) == COMPOSED


def test_a_channel_sku_in_either_form_finds_its_mapping(oms: OMS) -> None:
    with oms.db.session() as s:
        s.add(SkuMapping(channel="json", channel_sku="THÉ-VERT", sku="TEA-1", active=True, version=1))
    [res] = oms.intake.ingest("json", payload(order_json("U-1", [(unicodedata.normalize("NFD", "THÉ-VERT"), 1)],
                                                         paid=False)))
    assert res.status == "pending_payment", res
    with oms.db.session() as s:
        [line] = s.scalar(select(Order).where(Order.number == res.number)).lines  # type: ignore[union-attr]
        assert (line.channel_sku, line.sku) == ("THÉ-VERT", "TEA-1")

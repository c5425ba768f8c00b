"""At intake the OMS charges the freight a channel does not send, by the template rules/freight.yaml names, and
checks the freight it does send; a line's promotions are kept as the channel sent them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.plugin.testing import show_order
from tests.support import build_oms, copy_rules, order_json, payload

STANDARD = {"code": "STANDARD", "name": "Standard", "currency": "CNY", "free_above": "99.00",
            "zones": [{"regions": ["CN"], "first_price": "10.00"},
                      {"regions": ["Xinjiang"], "first_weight_g": 1000, "first_price": "20.00",
                       "extra_weight_g": 1000, "extra_price": "8.00"}]}


def _templates(oms: OMS, *records: dict[str, Any]) -> None:
    report = oms.masterdata.apply("freight-templates", [Row(f"t:{r['code']}", r) for r in records], actor="t",
                                  source="t")
    assert not report.errors, report.errors


def _ingest(oms: OMS, order: dict[str, Any]) -> dict[str, Any]:
    [result] = oms.intake.ingest("json", payload(order))
    assert result.number is not None, result
    return show_order(oms, result.number)


def _order(ext: str, lines: list[tuple[str, int]], *, freight: str | None, paid: str | None, **kw: Any
           ) -> dict[str, Any]:
    o = order_json(ext, lines, customer=kw.pop("customer", "C-NEW"), paid=paid is not None, **kw)
    if freight is None:
        del o["freight"]
    else:
        o["freight"] = freight
    if paid is not None:
        o["payment"]["amount"] = paid
    return o


def _freight_decisions(shown: dict[str, Any]) -> list[dict[str, Any]]:
    return [d["outcome"] for d in shown["decisions"] if d["point"] == "freight"]


def test_an_order_without_freight_is_charged_by_the_template_and_says_so(oms: OMS) -> None:
    _templates(oms, STANDARD)
    # One tea (59.00, 500 g) to Shanghai: the flat 10.00; paid 69.00 it goes on as paid.
    shown = _ingest(oms, _order("F-1", [("TEA-1", 1)], freight=None, paid="69.00"))
    assert (shown["amounts"]["freight"], shown["amounts"]["payable"], shown["status"]) == (1000, 6900, "paid")
    [outcome] = _freight_decisions(shown)
    assert outcome["source"] == "template" and outcome["template"] == "STANDARD" and outcome["freight"] == 1000
    # Two teas reach 99.00: free.
    shown = _ingest(oms, _order("F-2", [("TEA-1", 2)], freight=None, paid="118.00"))
    assert (shown["amounts"]["freight"], shown["status"]) == (0, "paid")
    assert "free" in _freight_decisions(shown)[0]["why"]


def test_the_weight_and_the_destination_choose_the_price(oms: OMS) -> None:
    _templates(oms, STANDARD)
    xinjiang = {"name": "A", "country": "CN", "region": "Xinjiang", "city": "Urumqi", "line1": "1 Road"}
    # Three mugs, 1,500 g, to Xinjiang: 20.00 for the first kilo, 8.00 for the next (part of a) kilo.
    shown = _ingest(oms, _order("F-3", [("MUG-1", 1), ("PEN-1", 2)], freight=None, paid=None, ship_to=xinjiang))
    assert shown["amounts"]["freight"] == 2800
    assert shown["amounts"]["payable"] == 3900 + 1000 + 2800


def test_a_channel_figure_that_agrees_stands_unremarked_and_one_that_differs_is_recorded(oms: OMS) -> None:
    _templates(oms, STANDARD)
    agrees = _ingest(oms, _order("F-4", [("TEA-1", 1)], freight="10.00", paid="69.00"))
    assert agrees["amounts"]["freight"] == 1000 and _freight_decisions(agrees) == []
    differs = _ingest(oms, _order("F-5", [("TEA-1", 1)], freight="6.00", paid="65.00"))
    # The channel's figure is what the customer saw and paid: it stands, and the difference is on record.
    assert (differs["amounts"]["freight"], differs["status"]) == (600, "paid")
    [outcome] = _freight_decisions(differs)
    assert (outcome["source"], outcome["expected"], outcome["held"]) == ("channel", 1000, False)
    assert "the channel charged 6.00 CNY, template STANDARD says 10.00 CNY to CN/Shanghai" in outcome["why"]


@pytest.fixture
def strict(tmp_path: Path, db_url: str) -> OMS:
    rules = copy_rules(tmp_path)
    text = (rules / "freight.yaml").read_text(encoding="utf-8")
    (rules / "freight.yaml").write_text(text.replace("- template: {code: STANDARD}",
                                                     "- template: {code: STANDARD, on_mismatch: hold, tolerance: 100}"),
                                        encoding="utf-8")
    return build_oms(tmp_path, db_url, rules_dir=rules)


def test_with_on_mismatch_hold_a_difference_beyond_the_tolerance_is_held_for_a_person(strict: OMS) -> None:
    oms = strict
    try:
        _templates(oms, STANDARD)
        near = _ingest(oms, _order("F-6", [("TEA-1", 1)], freight="9.00", paid="68.00"))
        assert near["status"] == "paid" and _freight_decisions(near) == []      # within 1.00
        far = _ingest(oms, _order("F-7", [("TEA-1", 1)], freight="5.00", paid="64.00"))
        assert far["status"] == "on_hold"
        assert "freight disagrees: the channel charged 5.00 CNY, template STANDARD says 10.00 CNY" in far["hold_reason"]
        assert _freight_decisions(far)[0]["held"] is True
    finally:
        oms.close()


def test_an_order_the_template_cannot_price_is_held_with_the_reason_not_dropped(oms: OMS) -> None:
    # No template in master data yet: an order without freight waits for a person.
    shown = _ingest(oms, _order("F-8", [("TEA-1", 1)], freight=None, paid="59.00"))
    assert shown["status"] == "on_hold"
    assert "freight: no active freight template 'STANDARD' in master data; the channel sent none" in \
        shown["hold_reason"]
    _templates(oms, STANDARD)
    abroad = {"name": "A", "country": "JP", "region": "Tokyo", "city": "Tokyo", "line1": "1-1"}
    shown = _ingest(oms, _order("F-9", [("TEA-1", 1)], freight=None, paid=None, ship_to=abroad))
    assert shown["status"] == "on_hold" and "has no zone for JP/Tokyo" in shown["hold_reason"]


def test_a_vip_customer_travels_free_by_rule(oms: OMS) -> None:
    _templates(oms, STANDARD)
    oms.intake.ingest("json", payload({**_order("F-10", [("TEA-1", 1)], freight=None, paid="59.00", customer="C-VIP"),
                                       "customer": {"ref": "C-VIP", "name": "V", "level": "vip"}}))
    [result] = oms.intake.ingest("json", payload(_order("F-11", [("TEA-1", 1)], freight=None, paid="59.00",
                                                        customer="C-VIP")))
    shown = show_order(oms, result.number or "")
    assert shown["amounts"]["freight"] == 0 and shown["status"] == "paid"
    assert _freight_decisions(shown)[0]["why"] == "VIP customers travel free"


def test_freight_templates_are_master_data_with_history_and_partial_changes(oms: OMS) -> None:
    _templates(oms, STANDARD)
    report = oms.masterdata.apply("freight-templates", [Row("t:2", {"code": "STANDARD", "free_above": "199.00"})],
                                  actor="t", source="t", merge=True)
    assert report.updated == ["STANDARD"], report
    [rec] = oms.masterdata.list("freight-templates")
    assert rec["free_above"] == 19900 and rec["zones"][1]["extra_price"] == 800   # minor units, as prices are
    shown = _ingest(oms, _order("F-12", [("TEA-1", 2)], freight=None, paid="128.00"))
    assert shown["amounts"]["freight"] == 1000      # 118.00 of goods no longer travel free


def test_line_promotions_are_kept_as_sent_and_decide_each_line_discount(oms: OMS) -> None:
    order = _order("F-13", [("TEA-1", 2), ("MUG-1", 1)], freight="10.00", paid="142.00", coupon="15.00")
    order["lines"][1]["promotions"] = [{"code": "MUG10", "name": "10 off mugs", "kind": "coupon", "amount": "10.00"}]
    shown = _ingest(oms, order)
    tea, mug = shown["lines"]
    assert mug["promotions"] == [{"code": "MUG10", "name": "10 off mugs", "kind": "coupon", "amount": 1000}]
    # The mug's 10.00 is its own; the other 5.00 of the coupon is shared by what is left of each line's goods.
    rest = {"tea": 11800, "mug": 3900 - 1000}
    assert tea["discount"] + mug["discount"] == 1500
    assert mug["discount"] == 1000 + round(500 * rest["mug"] / (rest["tea"] + rest["mug"]))
    assert tea["promotions"] == []


def test_line_promotions_without_an_order_coupon_are_the_coupon_and_too_much_is_held(oms: OMS) -> None:
    order = _order("F-14", [("TEA-1", 1)], freight="10.00", paid="64.00", coupon="0.00")
    order["lines"][0]["promotions"] = [{"name": "launch", "amount": "5.00"}]
    shown = _ingest(oms, order)
    assert (shown["amounts"]["coupon"], shown["amounts"]["payable"], shown["status"]) == (500, 6400, "paid")
    order = _order("F-15", [("TEA-1", 1)], freight="10.00", paid="64.00", coupon="5.00")
    order["lines"][0]["promotions"] = [{"name": "launch", "amount": "5.00"}, {"name": "again", "amount": "3.00"}]
    shown = _ingest(oms, order)
    assert shown["status"] == "on_hold"
    assert "line promotions add up to 8.00 CNY, more than the order's coupon 5.00 CNY" in shown["hold_reason"]

"""Freight templates price a parcel by the zone of its destination, its weight and the goods' worth."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from oms_engine.freight.templates import Template
from oms_engine.masterdata.schemas import FreightTemplateIn, freight_input

STANDARD = {"code": "STANDARD", "name": "Standard", "currency": "CNY", "free_above": "99.00",
            "zones": [{"regions": ["CN"], "first_price": "10.00"},
                      {"regions": ["Xinjiang", "Tibet"], "first_weight_g": 1000, "first_price": "20.00",
                       "extra_weight_g": 500, "extra_price": "8.00", "free_above": "299.00"},
                      {"regions": ["CN/Hainan"], "first_price": "15.00"},
                      {"regions": ["*"], "first_weight_g": 500, "first_price": "80.00", "extra_weight_g": 500,
                       "extra_price": "40.00"}]}


def _template(data: dict = STANDARD) -> Template:  # type: ignore[type-arg]
    rec = FreightTemplateIn.model_validate(data)
    return Template.of(rec.code, rec.name, rec.currency, rec.model_dump()["zones"], rec.free_above)


def test_the_most_specific_zone_decides_and_weight_steps_are_rounded_up() -> None:
    t = _template()
    assert t.price("CN", "Shanghai", 5000, 5000).amount == 1000           # the country's flat price
    assert t.price("CN", "Hainan", 100, 5000).amount == 1500              # country/region beats the country
    # 20.00 for the first kilo, then 8.00 for each 500 g or part of it: 2,001 g is 3 steps.
    assert t.price("CN", "Xinjiang", 2001, 5000).amount == 2000 + 3 * 800
    assert t.price("CN", "xinjiang", 1000, 5000).amount == 2000           # region names match in any case
    assert t.price("JP", "Tokyo", 1200, 5000).amount == 8000 + 2 * 4000  # "*": anywhere else


def test_goods_at_the_threshold_travel_free_and_a_zone_may_set_its_own() -> None:
    t = _template()
    assert t.price("CN", "Shanghai", 100, 9900).amount == 0
    assert t.price("CN", "Shanghai", 100, 9899).amount == 1000
    # Xinjiang's own threshold is 299.00, not the template's 99.00.
    assert t.price("CN", "Xinjiang", 900, 9900).amount == 2000
    assert t.price("CN", "Xinjiang", 900, 29900).amount == 0


def test_a_destination_no_zone_covers_is_not_priced_and_says_why() -> None:
    t = _template({**STANDARD, "zones": STANDARD["zones"][:1]})
    charge = t.price("JP", "Tokyo", 100, 100)
    assert charge.amount is None and "no zone for JP/Tokyo" in charge.reason


def test_amounts_are_read_exactly_in_the_currency_and_bad_templates_are_refused() -> None:
    jpy = FreightTemplateIn.model_validate({**STANDARD, "currency": "JPY", "free_above": "5000",
                                            "zones": [{"regions": ["JP"], "first_price": "800"}]})
    assert (jpy.free_above, jpy.zones[0].first_price) == (5000, 800)
    for bad, words in [({"zones": [{"regions": ["CN"], "first_price": "10.001"}]}, "more decimals"),
                       ({"zones": [{"regions": ["CN"], "first_price": "-1"}]}, "negative"),
                       ({"zones": []}, "at least 1"),
                       ({"zones": [{"regions": ["cn/Xinjiang"], "first_price": "1"}]}, "COUNTRY/REGION"),
                       ({"zones": [{"regions": ["CN"], "first_price": "1"}, {"regions": ["cn"], "first_price": "2"}]},
                        "in zone 1 already"),
                       ({"zones": [{"regions": ["CN"], "first_price": "1", "extra_price": "2"}]}, "first_weight_g")]:
        with pytest.raises(ValidationError) as exc:
            FreightTemplateIn.model_validate({**STANDARD, **bad})
        assert words in str(exc.value)


def test_a_stored_template_reads_back_as_the_same_record() -> None:
    rec = FreightTemplateIn.model_validate(STANDARD)
    stored = rec.model_dump()
    again = FreightTemplateIn.model_validate(freight_input(stored))
    assert again.model_dump() == stored

"""Money: exact parsing of decimal amounts, formatting, and apportionment with no cent lost."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms_engine.money import MAX_AMOUNT, MoneyError, apportion, currency_digits, exponent, format_minor, to_minor

totals = st.integers(min_value=-10**12, max_value=10**12)
weights = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30)


# --------------------------------------------------------------------------- apportion


@given(totals, weights)
def test_apportion_parts_sum_to_total_exactly(total: int, ws: list[int]) -> None:
    parts = apportion(total, ws)
    assert len(parts) == len(ws)
    assert all(isinstance(p, int) for p in parts)
    assert sum(parts) == total


@given(totals, weights)
def test_apportion_each_part_within_one_of_exact_share(total: int, ws: list[int]) -> None:
    parts = apportion(total, ws)
    base = sum(ws)
    for part, w in zip(parts, ws, strict=True):
        exact = Fraction(total * w, base) if base else Fraction(total, len(ws))
        assert abs(part - exact) < 1, (part, exact)


@given(totals, weights)
def test_apportion_zero_weight_gets_zero_unless_all_zero(total: int, ws: list[int]) -> None:
    parts = apportion(total, ws)
    if any(ws):
        assert all(p == 0 for p, w in zip(parts, ws, strict=True) if w == 0)
    else:
        # all zero: spread evenly, nobody more than one unit from anyone else
        assert max(parts) - min(parts) <= 1


@given(totals, weights)
def test_apportion_is_deterministic(total: int, ws: list[int]) -> None:
    assert apportion(total, ws) == apportion(total, list(ws))


@given(st.integers(min_value=0, max_value=10**9), weights)
def test_apportion_negative_total_mirrors_positive(total: int, ws: list[int]) -> None:
    assert apportion(-total, ws) == [-p for p in apportion(total, ws)]


def test_apportion_examples() -> None:
    assert apportion(100, [1, 1, 1]) == [34, 33, 33]  # tie goes to the earlier line
    assert apportion(10, [0, 5, 5]) == [0, 5, 5]
    assert apportion(7, [0, 0]) == [4, 3]
    assert apportion(0, []) == []


def test_apportion_refuses_negative_weights_and_empty_lines() -> None:
    with pytest.raises(MoneyError):
        apportion(10, [1, -1])
    with pytest.raises(MoneyError):
        apportion(10, [])


# --------------------------------------------------------------------------- to_minor

CURRENCIES = {"CNY": 2, "USD": 2, "JPY": 0, "KWD": 3}


@given(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT), st.sampled_from(sorted(CURRENCIES)))
def test_to_minor_is_exact_for_decimal_strings(minor: int, currency: str) -> None:
    exp = CURRENCIES[currency]
    text = str(Decimal(minor).scaleb(-exp))
    assert to_minor(text, currency, signed=True) == minor
    # the same amount written with a trailing zero is still the same amount
    if exp:
        assert to_minor(f"{Decimal(minor).scaleb(-exp):.{exp + 1}f}", currency, signed=True) == minor


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_to_minor_refuses_floats(value: float) -> None:
    with pytest.raises(MoneyError):
        to_minor(value, "CNY")


def test_to_minor_refuses_float_even_when_exactly_representable() -> None:
    with pytest.raises(MoneyError, match="float"):
        to_minor(12.5, "CNY")
    with pytest.raises(MoneyError):
        to_minor(True, "CNY")


@pytest.mark.parametrize(("value", "currency"), [
    ("12.345", "CNY"), ("0.001", "USD"), ("1.5", "JPY"), ("0.1", "JPY"), ("1.2345", "KWD"), ("0.0001", "KWD"),
])
def test_to_minor_refuses_more_decimals_than_currency_allows(value: str, currency: str) -> None:
    with pytest.raises(MoneyError, match=currency):
        to_minor(value, currency)


@pytest.mark.parametrize(("value", "currency", "minor"), [
    ("12.30", "CNY", 1230), ("12.3", "CNY", 1230), ("12", "CNY", 1200), (12, "CNY", 1200),
    (Decimal("0.01"), "CNY", 1), ("1500", "JPY", 1500), ("1.234", "KWD", 1234), ("1.234", "kwd", 1234),
    (" 5.00 ", "USD", 500), ("0.00", "CNY", 0), ("007.50", "CNY", 750), ("1.500", "KWD", 1500),
    ("100000000000.00", "CNY", MAX_AMOUNT), ("10000000000000", "JPY", MAX_AMOUNT), ("1.5", "IQD", 1500),
])
def test_to_minor_examples(value: object, currency: str, minor: int) -> None:
    assert to_minor(value, currency) == minor  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["-3.10", "-0.00", "-0", -1, Decimal("-0.01"), Decimal("-0")])
def test_to_minor_refuses_negative_amounts_unless_signed(value: object) -> None:
    with pytest.raises(MoneyError, match="is negative; amounts are 0 or more"):
        to_minor(value, "CNY")  # type: ignore[arg-type]
    assert to_minor(value, "CNY", signed=True) <= 0  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["100000000000.01", "1" * 5000, 10**14, Decimal("1e30"), "-100000000000.01"])
def test_to_minor_holds_every_amount_to_one_limit(value: object) -> None:
    with pytest.raises(MoneyError, match=r"is over the limit of 100,000,000,000\.00 CNY"):
        to_minor(value, "CNY", signed=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "digits"), [("CNY", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("VND", 0),
                                               ("KWD", 3), ("IQD", 3), ("LYD", 3), ("UGX", 0)])
def test_one_iso_4217_table_gives_the_decimals_of_each_currency(code: str, digits: int) -> None:
    assert currency_digits(code) == exponent(code) == digits


@pytest.mark.parametrize(("code", "why"), [("XAU", "not an active ISO 4217 currency"),
                                           ("XXX", "not an active ISO 4217 currency"),
                                           ("cny", "three capital letters"), ("EURO", "three capital letters"),
                                           (None, "is required")])
def test_currency_digits_says_why_a_code_is_not_a_currency(code: object, why: str) -> None:
    with pytest.raises(MoneyError, match=why):
        currency_digits(code)


def test_amounts_are_parsed_in_one_place() -> None:
    """The canonical order, the API and master data read amounts with money.to_minor and its limit."""
    from oms_engine.orders import canonical
    assert canonical.MAX_AMOUNT is MAX_AMOUNT
    with pytest.raises(ValueError, match="is negative"):
        canonical.minor_units("-0.00", "CNY")
    with pytest.raises(ValueError, match="over the limit"):
        canonical.minor_units("100000000000.01", "CNY")


@pytest.mark.parametrize("value", ["", "abc", "1,00", "NaN", "Infinity", "1e", "--1"])
def test_to_minor_refuses_non_numbers(value: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(value, "CNY")


# --------------------------------------------------------------------------- format_minor


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (12345, "CNY", "123.45 CNY"), (5, "CNY", "0.05 CNY"), (0, "CNY", "0.00 CNY"), (-5, "CNY", "-0.05 CNY"),
    (123456789, "USD", "1,234,567.89 USD"), (1500, "JPY", "1,500 JPY"), (-1500, "JPY", "-1,500 JPY"),
    (1234, "KWD", "1.234 KWD"), (7, "KWD", "0.007 KWD"),
])
def test_format_minor_examples(amount: int, currency: str, text: str) -> None:
    assert format_minor(amount, currency) == text


@given(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT), st.sampled_from(sorted(CURRENCIES)))
def test_format_minor_round_trips_through_to_minor(amount: int, currency: str) -> None:
    number, code = format_minor(amount, currency).split(" ")
    assert code == currency
    assert to_minor(number.replace(",", ""), currency, signed=True) == amount


@given(st.integers(-MAX_AMOUNT, MAX_AMOUNT), st.sampled_from(["CNY", "JPY", "KWD", "USD"]))
def test_decimal_text_reads_back_exactly(amount: int, currency: str) -> None:
    from oms_engine.money import decimal_text
    assert to_minor(decimal_text(amount, currency), currency, signed=True) == amount


@given(st.sampled_from([("JPY", 0), ("KRW", 0), ("CNY", 2), ("USD", 2), ("KWD", 3), ("BHD", 3)]),
       st.integers(0, 10**12), weights)
def test_an_amount_in_any_currency_exponent_apportions_to_parts_that_add_up_in_its_own_decimals(
        currency: tuple[str, int], minor: int, ws: list[int]) -> None:
    """Exponents 0, 2 and 3: the amount as a channel writes it, split over lines, gives parts that are each
    an amount of that currency and add up, decimal for decimal, to what was written."""
    from oms_engine.money import decimal_text
    code, exp = currency
    text = decimal_text(minor, code)
    assert len(text.partition(".")[2]) == exp
    parts = apportion(to_minor(text, code), ws)
    assert sum(parts) == minor
    assert sum(Decimal(decimal_text(p, code)) for p in parts) == Decimal(text)
    assert all(to_minor(decimal_text(p, code), code) == p for p in parts)

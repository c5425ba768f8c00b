"""Money in integer minor units, and apportionment with no cent lost.

Every amount in the OMS is an ``int`` of the currency's minor unit (cents, fen).
Floats never touch money: channel payloads carry decimal strings, which are parsed
with :mod:`decimal` and rejected when they have more digits than the currency allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal

# 10^13 minor units (100 billion in a two-decimal currency) per amount: far above any real order, and even
# a few of them added together stay far below the 64-bit columns' 9.2 x 10^18. Every amount the OMS takes
# in (a channel's payload, the API, the CLI, master data) is held to it.
MAX_AMOUNT = 10**13


# ISO 4217 list one (published 2026-01-01): active codes for legal tender and their minor units.
# Left out on purpose: funds (BOV CHE CHW CLF COU MXV USN UYI UYW), units of account (XAD XBA XBB XBC
# XBD XDR XSU XUA), precious metals (XAG XAU XPD XPT), XTS (testing) and XXX (no currency).
def _codes(codes: str, digits: int) -> dict[str, int]:
    return dict.fromkeys(codes.split(), digits)


ISO_4217: dict[str, int] = {
    **_codes(
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF "
        "CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL "
        "HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT "
        "MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB "
        "SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH "
        "USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG", 2),
    **_codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF", 0),
    **_codes("BHD IQD JOD KWD LYD OMR TND", 3),
}


class MoneyError(ValueError):
    pass


def _shown(value: object, limit: int = 40) -> str:
    """``value`` quoted for an error message, cut to ``limit`` characters."""
    text = repr(value if not isinstance(value, str) or len(value) <= limit else value[:limit])
    return text + ("..." if isinstance(value, str) and len(value) > limit else "")


def currency_digits(code: object) -> int:
    """The decimals of ``code``, an active ISO 4217 currency; MoneyError says why anything else is not one."""
    if not isinstance(code, str):
        raise MoneyError(f"an ISO 4217 currency code (e.g. \"CNY\") is required, not {type(code).__name__}")
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise MoneyError(f"{_shown(code)} is not an ISO 4217 code: three capital letters A-Z, e.g. \"CNY\"")
    digits = ISO_4217.get(code)
    if digits is None:
        raise MoneyError(f"{code} is not an active ISO 4217 currency")
    return digits


def exponent(currency: str) -> int:
    """The decimals of ``currency`` (any case); two for a code not in ISO 4217, which nothing stored has."""
    return ISO_4217.get(currency.upper(), 2)


_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def to_minor(value: str | int | Decimal, currency: str, *, signed: bool = False) -> int:
    """A decimal amount ("12.30", 12, Decimal("12.3")) in minor units of ``currency``, exactly; MoneyError says
    what is wrong with anything else.

    A string is ASCII digits with an optional point and an optional leading minus, nothing else: no exponent,
    "_", "+", spaces inside or other scripts' digits, which Decimal would take silently. Floats are refused:
    they cannot represent most decimal amounts exactly. Without ``signed`` an amount is 0 or more ("-0.00"
    is negative too: a sign nobody means). Its size is at most :data:`MAX_AMOUNT` either way.
    """
    if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
        raise MoneyError(f"amount {_shown(value)} must be a decimal string or integer, not {type(value).__name__}")
    digits = exponent(currency)
    if isinstance(value, str):
        m = _DECIMAL.fullmatch(value.strip())
        if m is None:
            raise MoneyError(f"{_shown(value)} is not a decimal amount: ASCII digits with an optional \".\", "
                             f"e.g. \"129.90\"")
        negative, whole, fraction = m.group(1) == "-", m.group(2).lstrip("0") or "0", m.group(3) or ""
        if len(fraction.rstrip("0")) > digits:
            raise MoneyError(f"{_shown(value)} has more decimals than {currency} allows ({digits})")
        # Digits are counted before int(), so a 5,000-digit amount is refused as too large, cheaply.
        fraction = fraction[:digits].ljust(digits, "0")
        magnitude = int(whole + fraction) if len(whole) <= 20 else MAX_AMOUNT + 1
    else:
        d = Decimal(value)
        if not d.is_finite():
            raise MoneyError(f"amount {_shown(value)} is not a finite number")
        negative, d = d.is_signed(), abs(d)
        if d.adjusted() > 20:
            magnitude = MAX_AMOUNT + 1
        else:
            scaled = d.scaleb(digits)
            if scaled != scaled.to_integral_value():
                raise MoneyError(f"{_shown(value)} has more decimals than {currency} allows ({digits})")
            magnitude = int(scaled)
    if negative and not signed:
        raise MoneyError(f"{_shown(value)} is negative; amounts are 0 or more")
    if magnitude > MAX_AMOUNT:
        raise MoneyError(f"{_shown(value)} is over the limit of {format_minor(MAX_AMOUNT, currency)}")
    return -magnitude if negative else magnitude


def decimal_text(amount: int, currency: str) -> str:
    """Minor units as the plain decimal amount :func:`to_minor` reads back: 12345 CNY -> "123.45"."""
    return decimal_formatter(currency)(amount)


def decimal_formatter(currency: str) -> Callable[[int], str]:
    """:func:`decimal_text` for one currency, its decimals looked up once: a document of many amounts (an
    e-invoice) formats them all with it."""
    exp = exponent(currency)
    if not exp:
        return str
    scale = 10**exp

    def text(amount: int) -> str:
        whole, frac = divmod(abs(amount), scale)
        return f"{'-' if amount < 0 else ''}{whole}.{frac:0{exp}d}"

    return text


def format_minor(amount: int, currency: str) -> str:
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp) if exp else (abs(amount), 0)
    return f"{sign}{whole:,}.{frac:0{exp}d} {currency}" if exp else f"{sign}{whole:,} {currency}"


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, by largest remainder.

    The parts always sum to ``total`` exactly; ties in the remainder go to the
    earlier weight so the result is deterministic. Zero weights get zero unless
    every weight is zero, in which case the total is spread evenly.
    """
    if not weights:
        if total:
            raise MoneyError(f"cannot apportion {total} over no lines")
        return []
    if any(w < 0 for w in weights):
        raise MoneyError("apportionment weights must not be negative")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    base = sum(weights)
    if base == 0:
        weights = [1] * len(weights)
        base = len(weights)
    shares = [magnitude * w // base for w in weights]
    remainders = [magnitude * w % base for w in weights]
    left = magnitude - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        shares[i] += 1
    return [sign * s for s in shares]

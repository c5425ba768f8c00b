"""Money in integer minor units, and apportionment with no cent lost.

Every amount in the OMS is an ``int`` of the currency's minor unit (cents, fen).
Floats never touch money: channel payloads carry decimal strings, which are parsed
with :mod:`decimal` and rejected when they have more digits than the currency allows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

# ISO 4217 exponents that differ from 2; everything else has two decimals.
_EXPONENTS: dict[str, int] = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


class MoneyError(ValueError):
    pass


_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Minor units are stored in 64-bit columns; far below that, sums of lines cannot overflow either.
MAX_MINOR = 10**15


def to_minor(value: str | int | Decimal, currency: str) -> int:
    """Parse a decimal amount ("12.30", 12, Decimal) into minor units, exactly.

    A string is ASCII digits with an optional point, nothing else: no exponent,
    "_", "+" or other scripts' digits, which Decimal would take silently.
    Floats are refused: they cannot represent most decimal amounts exactly.
    """
    if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
        raise MoneyError(f"amount {value!r} must be a decimal string or integer, not {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            raise MoneyError(f"amount {value[:40]!r} is not a decimal number (ASCII digits and an optional point)")
        d = Decimal(text)
    elif isinstance(value, int):
        d = Decimal(value)
    else:
        d = value
        if not d.is_finite():
            raise MoneyError(f"amount {value!r} is not a finite number")
    try:
        scaled = d.scaleb(exponent(currency))
        exact = scaled == scaled.to_integral_value()
    except InvalidOperation:
        raise MoneyError(f"amount {str(value)[:40]!r} is out of range") from None
    if not exact:
        raise MoneyError(f"amount {value!r} has more decimals than {currency} allows")
    if abs(scaled) > MAX_MINOR:
        raise MoneyError(f"amount {str(value)[:40]!r} is out of range")
    return int(scaled)


def decimal_text(amount: int, currency: str) -> str:
    """Minor units as the plain decimal amount :func:`to_minor` reads back: 12345 CNY -> "123.45"."""
    exp = exponent(currency)
    if not exp:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


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

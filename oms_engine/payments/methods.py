"""The means of payment the OMS knows, and how a channel's or provider's name for one is read."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache


class Method(StrEnum):
    CARD = "card"
    WALLET = "wallet"            # Alipay, WeChat Pay, PayPal, Apple Pay ...
    GIFT_CARD = "gift_card"
    POINTS = "points"
    COD = "cod"                  # cash on delivery: collected by the carrier
    BANK_TRANSFER = "bank_transfer"
    OTHER = "other"


# How a replacement order an after-sales exchange sends is paid: by nothing, the goods it replaces came back.
REPLACEMENT = "exchange"

# Words in a channel's own name for the method, most specific first.
# ("cod" as a word only: "QR code" is no cash on delivery.)
_WORDS: tuple[tuple[str | re.Pattern[str], Method], ...] = (
    ("gift", Method.GIFT_CARD), ("points", Method.POINTS), ("loyalty", Method.POINTS),
    ("cash on delivery", Method.COD), ("cash_on_delivery", Method.COD), (re.compile(r"\bcod\b"), Method.COD),
    ("alipay", Method.WALLET), ("wechat", Method.WALLET), ("paypal", Method.WALLET), ("apple", Method.WALLET),
    ("google", Method.WALLET), ("wallet", Method.WALLET), ("amazon pay", Method.WALLET),
    ("bank", Method.BANK_TRANSFER), ("transfer", Method.BANK_TRANSFER), ("bacs", Method.BANK_TRANSFER),
    ("card", Method.CARD), ("credit", Method.CARD), ("debit", Method.CARD), ("visa", Method.CARD),
    ("mastercard", Method.CARD), ("stripe", Method.CARD), ("shopify_payments", Method.CARD),
)


_BY_VALUE = {m.value: m for m in Method}


@lru_cache(maxsize=512)     # every order names its method, and a shop has a handful of names for them
def method_of(name: str | None) -> Method:
    """The method a name stands for: one of :class:`Method` as it is, else read from its words (OTHER when
    none tells)."""
    text = (name or "").strip().lower()
    if text in _BY_VALUE:
        return _BY_VALUE[text]
    for word, method in _WORDS:
        if (word in text) if isinstance(word, str) else word.search(text):
            return method
    return Method.OTHER

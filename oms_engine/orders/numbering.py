"""Order numbers: unique across processes, opaque about volume, carrying a shard key.

Format (19 digits): ``YYMMDD`` + ``SS`` shard + ``NNNNNNNNNN`` + check digit.

* Uniqueness: each process takes blocks of sequence values from the
  ``number_blocks`` row with one atomic UPDATE, so processes on any number of
  machines never hand out the same value.
* Opacity: the sequence value goes through a keyed Feistel permutation of
  [0, 10^10) before it is printed, so consecutive orders get unrelated
  numbers and the number says nothing about how many orders came that day.
* Shard: two digits from a hash of the customer, so one customer's orders
  fall in one partition when order data is later split by it.
* A Luhn check digit catches a mistyped number before any lookup.

Child orders of a split take the parent's number plus ``-1``, ``-2`` ...
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import datetime

from sqlalchemy import Engine, select, update

from ..storage.models import NumberBlock

DOMAIN = 10**10
_HALF_BITS = 17  # 2 * 17 bits = 2^34 > 10^10: cycle-walk back into the domain
_MASK = (1 << _HALF_BITS) - 1


class Permutation:
    def __init__(self, secret: str, rounds: int = 4) -> None:
        self._keys = [hashlib.sha256(f"{secret}:{i}".encode()).digest() for i in range(rounds)]

    def _f(self, key: bytes, half: int) -> int:
        digest = hmac.new(key, half.to_bytes(4, "big"), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") & _MASK

    def _round_trip(self, x: int) -> int:
        left, right = x >> _HALF_BITS, x & _MASK
        for key in self._keys:
            left, right = right, left ^ self._f(key, right)
        return (left << _HALF_BITS) | right

    def __call__(self, x: int) -> int:
        if not 0 <= x < DOMAIN:
            raise ValueError("sequence value out of range")
        # Cycle-walking: a permutation of 2^34 restricted to 10^10 stays a bijection.
        y = self._round_trip(x)
        while y >= DOMAIN:
            y = self._round_trip(y)
        return y


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid(number: str) -> bool:
    base = number.split("-", 1)[0]
    return len(base) == 19 and base.isdigit() and luhn_digit(base[:-1]) == base[-1]


def shard_of(customer_ref: str, shard_count: int) -> int:
    h = hashlib.blake2b(customer_ref.encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % shard_count


class NumberGenerator:
    BLOCK = 500

    def __init__(self, engine: Engine, secret: str, shard_count: int = 64) -> None:
        if shard_count > 100:
            raise ValueError("shard_count must fit two digits (at most 100)")
        self.engine = engine
        self.permute = Permutation(secret)
        self.shard_count = shard_count
        self._blocks: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def _take_block(self, size: int) -> None:
        # Its own short transaction, so the counter row is locked only for this
        # UPDATE and a rolled-back batch never gives its block back to others.
        with self.engine.begin() as conn:
            end = conn.execute(
                update(NumberBlock).where(NumberBlock.name == "order")
                .values(next_value=NumberBlock.next_value + size)
                .returning(NumberBlock.next_value)
            ).scalar_one()
        self._blocks.append((int(end) - size, int(end)))

    def prefetch(self, count: int) -> None:
        """Hold at least ``count`` values in hand before a write transaction starts.

        On SQLite a write transaction holds the database lock, so taking a
        block from inside one would wait on itself: intake calls this first.
        """
        with self._lock:
            have = sum(end - start for start, end in self._blocks)
            if have < count:
                self._take_block(max(self.BLOCK, count - have))

    def next_sequence(self) -> int:
        with self._lock:
            if not self._blocks:
                self._take_block(self.BLOCK)
            start, end = self._blocks[0]
            if start + 1 >= end:
                self._blocks.pop(0)
            else:
                self._blocks[0] = (start + 1, end)
            return start

    def new_number(self, customer_ref: str, at: datetime) -> tuple[str, int]:
        shard = shard_of(customer_ref, self.shard_count)
        body = f"{at:%y%m%d}{shard:02d}{self.permute(self.next_sequence() % DOMAIN):010d}"
        return body + luhn_digit(body), shard

    def current(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(NumberBlock.next_value).where(NumberBlock.name == "order")).scalar()

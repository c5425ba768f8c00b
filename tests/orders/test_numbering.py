"""Order numbers: a keyed permutation, Luhn check digit, shard, uniqueness across generators."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms_engine.orders.numbering import DOMAIN, NumberGenerator, Permutation, is_valid, luhn_digit, shard_of
from oms_engine.storage.db import make_engine
from oms_engine.storage.migrate import upgrade
from tests.support import T0


def test_permutation_is_injective_over_200k_consecutive_inputs() -> None:
    p = Permutation("secret-a")
    start = 123_456
    outs = [p(x) for x in range(start, start + 200_000)]
    assert len(set(outs)) == len(outs)
    assert all(0 <= y < DOMAIN for y in outs)


def test_permutation_hides_the_sequence() -> None:
    p = Permutation("secret-a")
    outs = [p(x) for x in range(10_000)]
    consecutive = sum(1 for a, b in itertools.pairwise(outs) if abs(b - a) == 1)
    assert consecutive == 0
    increasing = sum(1 for a, b in itertools.pairwise(outs) if b > a)
    assert 4_000 < increasing < 6_000  # no visible order either
    # another deployment secret gives other numbers
    q = Permutation("secret-b")
    assert sum(p(x) == q(x) for x in range(1_000)) == 0


@given(st.integers(min_value=0, max_value=DOMAIN - 1))
def test_permutation_is_deterministic_and_in_domain(x: int) -> None:
    assert Permutation("k")(x) == Permutation("k")(x)
    assert 0 <= Permutation("k")(x) < DOMAIN


@pytest.mark.parametrize("x", [-1, DOMAIN])
def test_permutation_refuses_out_of_range(x: int) -> None:
    with pytest.raises(ValueError):
        Permutation("k")(x)


@given(st.text(alphabet="0123456789", min_size=18, max_size=18), st.integers(0, 17), st.integers(1, 9))
def test_is_valid_rejects_any_single_mistyped_digit(body: str, pos: int, delta: int) -> None:
    number = body + luhn_digit(body)
    assert is_valid(number)
    typo = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1:]
    assert not is_valid(typo)
    assert is_valid(number + "-2")  # a child keeps its parent's number


@pytest.mark.parametrize("bad", ["", "123", "261102403468270026a", "26110240346827002680", "2611024034682700268x"])
def test_is_valid_rejects_malformed(bad: str) -> None:
    assert not is_valid(bad)


def _generator(url: str, secret: str = "s") -> NumberGenerator:
    return NumberGenerator(make_engine(url), secret, shard_count=64)


def test_numbers_are_19_digits_luhn_valid_and_carry_the_customer_shard(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade(make_engine(url))
    gen = _generator(url)
    seen = set()
    for i in range(300):
        ref = f"C-{i % 37}"
        number, shard = gen.new_number(ref, T0)
        assert re.fullmatch(r"\d{19}", number), number
        assert is_valid(number)
        assert number.startswith(T0.strftime("%y%m%d"))
        assert shard == shard_of(ref, 64) and 0 <= shard < 64
        assert int(number[6:8]) == shard
        seen.add(number)
    assert len(seen) == 300
    # the same customer always lands in the same shard
    assert {gen.new_number("C-5", T0)[1] for _ in range(5)} == {shard_of("C-5", 64)}
    gen.engine.dispose()


def test_shard_count_must_fit_two_digits(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        NumberGenerator(make_engine(f"sqlite:///{tmp_path / 'n.db'}"), "s", shard_count=101)


def test_two_generators_on_one_database_never_collide(db_url: str) -> None:
    upgrade(make_engine(db_url))
    a, b = _generator(db_url), _generator(db_url)
    a.BLOCK = b.BLOCK = 37  # small blocks: many interleaved block grabs
    numbers: list[str] = []
    for i in range(1_000):
        numbers.append(a.new_number(f"C-{i % 7}", T0)[0])
        numbers.append(b.new_number(f"C-{i % 7}", T0)[0])
    assert len(numbers) == 2_000
    assert len(set(numbers)) == 2_000, "duplicate order numbers"
    assert all(is_valid(n) for n in numbers)
    a.engine.dispose()
    b.engine.dispose()


def test_prefetch_then_sequence_values_are_unique(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade(make_engine(url))
    a, b = _generator(url), _generator(url)
    a.prefetch(1200)
    values = [a.next_sequence() for _ in range(700)] + [b.next_sequence() for _ in range(700)]
    values += [a.next_sequence() for _ in range(700)]
    assert len(set(values)) == len(values)
    a.engine.dispose()
    b.engine.dispose()

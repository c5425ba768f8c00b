"""The typed ledger: every movement type moves a balance as movements.py says, available never goes below
zero, the stock's value at moving average cost is always the sum of its ledger rows, with no cent lost, and so
are the damaged units kept apart (never below zero either)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from oms_engine.engine import OMS
from oms_engine.stock import damaged
from oms_engine.stock.ledger import StockError, count, post, transfer
from oms_engine.stock.movements import EFFECTS, Movement, deltas, value_in, value_out
from oms_engine.storage.models import DamagedStock, Product, Stock, StockMovement
from tests.support import T0, build_oms


def test_every_movement_type_has_its_effect_and_refuses_the_wrong_quantity() -> None:
    assert set(EFFECTS) == set(Movement)
    assert deltas(Movement.SALE_OUT, 3) == (-3, -3)
    assert deltas(Movement.RESERVE, 3) == (0, 3)
    assert deltas(Movement.ADJUSTMENT, -2) == (-2, 0)
    for kind in Movement:
        with pytest.raises(ValueError):
            deltas(kind, 0)
        if not EFFECTS[kind].signed:
            with pytest.raises(ValueError):
                deltas(kind, -1)


def test_average_cost_arithmetic_loses_no_cent() -> None:
    # 3 units worth 100: one out takes 33, the next 34 of the 67 left (rounded half up), the last what is left.
    assert value_out(100, 3, 1) == 33
    assert value_out(67, 2, 1) == 34
    assert value_out(33, 1, 1) == 33
    assert value_in(100, 3, 3, None) == 100      # a return at the average
    assert value_in(100, 3, 2, 70) == 140        # a receipt at its cost
    assert value_in(0, 0, 5, None) == 0          # nothing to average over


@pytest.fixture(scope="module")
def world() -> Iterator[OMS]:
    with tempfile.TemporaryDirectory() as d:
        o = build_oms(Path(d), f"sqlite:///{d}/ledger.db")
        yield o
        o.close()


_skus = itertools.count()

steps = st.lists(st.one_of(
    st.tuples(st.just("receipt"), st.integers(1, 9), st.integers(0, 5000)),
    st.tuples(st.just("out"), st.integers(1, 9), st.just(0)),
    st.tuples(st.just("adjust"), st.integers(-9, 9).filter(bool), st.just(0)),
    st.tuples(st.just("transfer"), st.integers(1, 9), st.just(0)),
    st.tuples(st.just("count"), st.integers(0, 15), st.just(0)),
    st.tuples(st.just("return"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("damaged"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("scrap"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("regrade"), st.integers(1, 4), st.just(0)),
), min_size=1, max_size=15)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_balances_and_values_are_their_ledger(world: OMS, steps: list[tuple[str, int, int]]) -> None:
    sku = f"VAL-{next(_skus)}"
    with world.db.session() as s:
        s.execute(insert(Product).values(sku=sku, name=sku, price=100, currency="CNY", merchant="M", weight_g=1,
                                         attributes={}))
    # The model: (units, value) per warehouse, moved at moving average cost by the module's own arithmetic.
    units = {"WH-SH": 0, "WH-BJ": 0}
    worth = {"WH-SH": 0, "WH-BJ": 0}
    broken = 0   # damaged units at WH-BJ: apart from on hand, without value

    def goods(w: str, n: int, cost: int | None = None) -> int:
        v = value_in(worth[w], units[w], n, cost) if n > 0 else -value_out(worth[w], units[w], -n)
        units[w] += n
        worth[w] += v
        return v

    for op, q, cost in steps:
        try:
            with world.db.session() as s:
                if op == "receipt":
                    post(s, Movement.PURCHASE_RECEIPT, "WH-SH", sku, q, document="po", at=T0, unit_cost=cost)
                    goods("WH-SH", q, cost)
                elif op == "out":
                    post(s, Movement.RETURN_TO_VENDOR, "WH-SH", sku, q, document="rtv", at=T0)
                    goods("WH-SH", -q)
                elif op == "adjust":
                    post(s, Movement.ADJUSTMENT, "WH-SH", sku, q, document="adj", at=T0, actor="test", note="found")
                    goods("WH-SH", q)
                elif op == "transfer":
                    moved = transfer(s, sku, q, "WH-SH", "WH-BJ", document="tr", at=T0)
                    assert moved == -goods("WH-SH", -q)
                    units["WH-BJ"] += q
                    worth["WH-BJ"] += moved
                elif op == "count":
                    assert count(s, "WH-BJ", sku, q, document="count", at=T0) == q - units["WH-BJ"]
                    if q != units["WH-BJ"]:
                        goods("WH-BJ", q - units["WH-BJ"])
                elif op == "damaged":
                    damaged.post(s, Movement.RETURN_DAMAGED, "WH-BJ", sku, q, document="rma", at=T0)
                    broken += q
                elif op == "scrap":
                    damaged.post(s, Movement.SCRAP, "WH-BJ", sku, q, document="scrap", at=T0, note="broken")
                    broken -= q
                elif op == "regrade":
                    # back on hand at the average, as a return in good condition
                    assert damaged.post(s, Movement.REGRADE, "WH-BJ", sku, q, document="rg", at=T0) == \
                        goods("WH-BJ", q)
                    broken -= q
                else:
                    post(s, Movement.CUSTOMER_RETURN, "WH-BJ", sku, q, document="rma", at=T0)
                    goods("WH-BJ", q)
        except StockError:
            # refused only when the units are not there, and then nothing changed
            if op in ("scrap", "regrade"):
                assert broken < q
            else:
                assert op in ("out", "adjust", "transfer") and units["WH-SH"] < (q if op != "adjust" else -q)
        with world.db.read() as s:
            rows = {r.warehouse: r for r in s.scalars(select(Stock).where(Stock.sku == sku))}
            sums = {w: (h, r, v) for w, h, r, v in s.execute(
                select(StockMovement.warehouse, func.sum(StockMovement.on_hand_delta),
                       func.sum(StockMovement.reserved_delta), func.sum(StockMovement.value_delta))
                .where(StockMovement.sku == sku).group_by(StockMovement.warehouse))}
            kept = s.scalar(select(DamagedStock.quantity).where(DamagedStock.sku == sku)) or 0
            kept_ledger = s.scalar(select(func.sum(StockMovement.damaged_delta)).where(StockMovement.sku == sku)) or 0
        assert kept == kept_ledger == broken >= 0
        for w, n in units.items():
            row = rows.get(w)
            if row is None:
                assert n == 0 and sums.get(w, (0, 0, 0)) == (0, 0, 0)
                continue
            assert (row.on_hand, row.reserved, row.value) == sums[w], w
            assert (row.on_hand, row.value) == (n, worth[w]), w
            assert row.value >= 0
            if row.on_hand == 0:
                assert row.value == 0, "the last unit out takes what is left"


def test_a_movement_that_would_overdraw_changes_nothing(world: OMS) -> None:
    with world.db.session() as s:
        post(s, Movement.PURCHASE_RECEIPT, "WH-GZ", "PEN-1", 10, document="po-x", at=T0, unit_cost=250)
    with world.db.read() as s:
        before = s.get(Stock, ("WH-GZ", "PEN-1"))
        assert before is not None
        figures = (before.on_hand, before.reserved, before.value)
    for move in (lambda s: post(s, Movement.RETURN_TO_VENDOR, "WH-GZ", "PEN-1", 10_000, document="r", at=T0),
                 lambda s: post(s, Movement.ADJUSTMENT, "WH-GZ", "PEN-1", -10_000, document="a", at=T0),
                 lambda s: transfer(s, "PEN-1", 10_000, "WH-GZ", "WH-SH", document="t", at=T0),
                 lambda s: post(s, Movement.RESERVE, "WH-GZ", "PEN-1", 3, document="x", at=T0, unit_cost=1)):
        with pytest.raises(StockError), world.db.session() as s:
            move(s)
    with world.db.read() as s:
        after = s.get(Stock, ("WH-GZ", "PEN-1"))
        assert after is not None and (after.on_hand, after.reserved, after.value) == figures

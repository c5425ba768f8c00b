"""Stock: reservations never overdraw available stock, under concurrency, and every change is in the ledger."""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from oms_engine.engine import OMS
from oms_engine.orders.queries import get_order
from oms_engine.stock import reservations
from oms_engine.stock.ledger import StockError, post
from oms_engine.stock.movements import Movement
from oms_engine.storage.db import Database
from oms_engine.storage.models import Product, Reservation, Stock, StockMovement
from tests.support import T0, build_oms, order_json, payload


def blank_orders(oms: OMS, n: int, prefix: str) -> list[int]:
    """``n`` stored orders that hold no stock (unmapped SKU, unpaid): owners for test reservations."""
    body = payload(*[order_json(f"{prefix}-{i}", [("UNMAPPED-SKU", 1)], paid=False) for i in range(n)])
    results = oms.intake.ingest("json", body)
    assert all(r.status == "on_hold" for r in results), results
    numbers = [r.number for r in results]
    with oms.db.session() as s:
        return [get_order(s, n).id for n in numbers]


def add_sku(oms: OMS, sku: str, stock: dict[str, int]) -> None:
    with oms.db.session() as s:
        s.execute(insert(Product), [dict(sku=sku, name=sku, price=100, currency="CNY", merchant="M-T",
                                         weight_g=1, attributes={})])
    with oms.db.session() as s:
        for w, q in stock.items():
            if q:
                post(s, Movement.OPENING, w, sku, q, document="opening", at=T0)
            else:   # a row at 0, as a warehouse that sold out has: no movement explains anything
                s.execute(insert(Stock).values(warehouse=w, sku=sku, on_hand=0, reserved=0))


def row(oms: OMS, warehouse: str, sku: str) -> tuple[int, int]:
    with oms.db.session() as s:
        st_ = s.get(Stock, (warehouse, sku))
        assert st_ is not None
        return st_.on_hand, st_.reserved


def movements(oms: OMS, sku: str, kind: str | None = None) -> int:
    with oms.db.session() as s:
        stmt = select(func.count()).select_from(StockMovement).where(StockMovement.sku == sku)
        if kind:
            stmt = stmt.where(StockMovement.kind == kind)
        return int(s.scalar(stmt) or 0)


def _hammer(makers: list, order_ids: list[int], sku: str) -> list[bool]:  # type: ignore[type-arg]
    """Each worker thread tries its share of the 40 reservations of one unit, each in its own transaction."""
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(makers))
    errors: list[BaseException] = []
    per = len(order_ids) // len(makers)

    def work(k: int) -> None:
        try:
            barrier.wait()
            for oid in order_ids[k * per:(k + 1) * per]:
                with makers[k]() as s, s.begin():
                    ok = reservations.reserve(s, oid, f"test:{oid}", 1, "WH-SH", sku, 1, T0)
                with lock:
                    results.append(ok)
        except BaseException as exc:  # reported below: a crash is a failure, not a lost attempt
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(makers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def _check_exactly_ten(oms: OMS, results: list[bool], sku: str, order_ids: list[int]) -> None:
    assert len(results) == 40
    assert results.count(True) == 10
    assert row(oms, "WH-SH", sku) == (10, 10)
    assert movements(oms, sku, "reserve") == 10
    with oms.db.session() as s:
        n = s.scalar(select(func.count()).select_from(Reservation).where(Reservation.sku == sku))
    assert n == 10


def test_concurrent_reservations_never_overdraw(oms: OMS) -> None:
    add_sku(oms, "CONC-1", {"WH-SH": 10})
    order_ids = blank_orders(oms, 40, "CONC")
    makers = [oms.db.sessionmaker] * 8
    results = _hammer(makers, order_ids, "CONC-1")
    _check_exactly_ten(oms, results, "CONC-1", order_ids)


def test_concurrent_reservations_with_separate_sqlite_engines(sqlite_oms: OMS) -> None:
    add_sku(sqlite_oms, "CONC-2", {"WH-SH": 10})
    order_ids = blank_orders(sqlite_oms, 40, "CONC2")
    dbs = [Database(sqlite_oms.db.url) for _ in range(8)]
    try:
        results = _hammer([d.sessionmaker for d in dbs], order_ids, "CONC-2")
    finally:
        for d in dbs:
            d.dispose()
    _check_exactly_ten(sqlite_oms, results, "CONC-2", order_ids)


def test_reserve_refuses_non_positive_and_unknown_rows(sqlite_oms: OMS) -> None:
    [oid] = blank_orders(sqlite_oms, 1, "R")
    with sqlite_oms.db.session() as s:
        for q in (0, -1):
            with pytest.raises(StockError):
                reservations.reserve(s, oid, "d", 1, "WH-SH", "TEA-1", q, T0)
        # no stock row for MUG-1 at WH-GZ: refused, nothing recorded
        assert reservations.reserve(s, oid, "d", 1, "WH-GZ", "MUG-1", 1, T0) is False
        assert reservations.reserve(s, oid, "d", 1, "WH-SH", "RARE-1", 2, T0) is False
    assert row(sqlite_oms, "WH-SH", "RARE-1") == (1, 0)
    assert movements(sqlite_oms, "RARE-1", "reserve") == 0 and movements(sqlite_oms, "MUG-1", "reserve") == 0


def test_release_and_ship_arithmetic(oms: OMS) -> None:
    a, b = blank_orders(oms, 2, "ARITH")
    with oms.db.session() as s:
        assert reservations.reserve(s, a, "order:a", 1, "WH-SH", "TEA-1", 3, T0)
        assert reservations.reserve(s, a, "order:a", 2, "WH-SH", "MUG-1", 2, T0)
        assert reservations.reserve(s, b, "order:b", 1, "WH-SH", "TEA-1", 4, T0)
    assert row(oms, "WH-SH", "TEA-1") == (50, 7)
    assert row(oms, "WH-SH", "MUG-1") == (20, 2)
    with oms.db.session() as s:
        assert reservations.release_order(s, a, "cancel:a", T0) == 5
        assert reservations.release_order(s, a, "cancel:a", T0) == 0  # nothing left to release
    assert row(oms, "WH-SH", "TEA-1") == (50, 4)
    assert row(oms, "WH-SH", "MUG-1") == (20, 0)
    with oms.db.session() as s:
        assert reservations.ship_order(s, b, "ship:b", T0) == 4
        assert reservations.reservations_of(s, [a, b]) == {}
    with oms.db.read() as s:
        assert not list(s.scalars(select(Reservation).where(Reservation.order_id.in_([a, b]))))
    assert row(oms, "WH-SH", "TEA-1") == (46, 0)
    with oms.db.session() as s:
        post(s, Movement.PURCHASE_RECEIPT, "WH-SH", "TEA-1", 5, document="po:1", at=T0)
        with pytest.raises(StockError):
            post(s, Movement.PURCHASE_RECEIPT, "WH-SH", "TEA-1", 0, document="po:2", at=T0)
    assert row(oms, "WH-SH", "TEA-1") == (51, 0)
    with oms.db.session() as s:
        kinds = [(m.kind, m.on_hand_delta, m.reserved_delta, m.document) for m in s.scalars(
            select(StockMovement).where(StockMovement.sku == "TEA-1", StockMovement.warehouse == "WH-SH")
            .order_by(StockMovement.id))]
    assert kinds == [("opening", 50, 0, "opening:test world:stock 1"), ("reserve", 0, 3, "order:a"),
                     ("reserve", 0, 4, "order:b"),
                     ("release", 0, -3, "cancel:a"), ("sale_out", -4, -4, "ship:b"),
                     ("purchase_receipt", 5, 0, "po:1")]


def _reservations(oms: OMS, oid: int) -> list[tuple[str, str, int, int]]:
    with oms.db.session() as s:
        return sorted((r.warehouse, r.sku, r.line_no, r.quantity)
                      for r in s.scalars(select(Reservation).where(Reservation.order_id == oid)))


def test_move_to_warehouse_moves_reservations(oms: OMS) -> None:
    [oid] = blank_orders(oms, 1, "MOVE")
    with oms.db.session() as s:
        assert reservations.reserve(s, oid, "o", 1, "WH-SH", "TEA-1", 2, T0)
        assert reservations.reserve(s, oid, "o", 2, "WH-SH", "TV-1", 1, T0)
        assert reservations.reserve(s, oid, "o", 2, "WH-BJ", "TV-1", 1, T0)
    with oms.db.session() as s:
        held = reservations.reservations_of(s, [oid])[oid]
        assert reservations.move_to_warehouse(s, oid, "o", "WH-BJ", {(1, "TEA-1"): 2, (2, "TV-1"): 2}, held, T0)
    assert _reservations(oms, oid) == [("WH-BJ", "TEA-1", 1, 2), ("WH-BJ", "TV-1", 2, 1), ("WH-BJ", "TV-1", 2, 1)]
    assert row(oms, "WH-SH", "TEA-1") == (50, 0)
    assert row(oms, "WH-SH", "TV-1") == (5, 0)
    assert row(oms, "WH-BJ", "TEA-1") == (50, 2)
    assert row(oms, "WH-BJ", "TV-1") == (5, 2)


def test_move_to_warehouse_fails_cleanly_when_target_lacks_stock(oms: OMS) -> None:
    [oid] = blank_orders(oms, 1, "NOMOVE")
    with oms.db.session() as s:
        assert reservations.reserve(s, oid, "o", 1, "WH-SH", "TEA-1", 2, T0)
        assert reservations.reserve(s, oid, "o", 2, "WH-SH", "MUG-1", 1, T0)
    before = _reservations(oms, oid)
    # WH-GZ has TEA-1 but no MUG-1 at all: the move is refused as a whole (the caller's savepoint, as in routing)
    with oms.db.session() as s, s.begin_nested() as sp:
        held = reservations.reservations_of(s, [oid])[oid]
        ok = reservations.move_to_warehouse(s, oid, "o", "WH-GZ", {(1, "TEA-1"): 2, (2, "MUG-1"): 1}, held, T0)
        assert ok is False
        # nothing was released at the source
        assert s.get(Stock, ("WH-SH", "TEA-1")).reserved == 2  # type: ignore[union-attr]
        sp.rollback()
    assert _reservations(oms, oid) == before
    assert row(oms, "WH-SH", "TEA-1") == (50, 2) and row(oms, "WH-SH", "MUG-1") == (20, 1)
    assert row(oms, "WH-GZ", "TEA-1") == (50, 0)
    # WH-BJ has only 5 MUG-1: asking for 6 is refused too
    with oms.db.session() as s, s.begin_nested() as sp:
        held = reservations.reservations_of(s, [oid])[oid]
        assert not reservations.move_to_warehouse(s, oid, "o", "WH-BJ", {(2, "MUG-1"): 6}, held, T0)
        sp.rollback()
    assert _reservations(oms, oid) == before


# --------------------------------------------------------------------------- ledger property (SQLite)


@pytest.fixture(scope="module")
def ledger_oms() -> Iterator[tuple[OMS, list[int]]]:
    with tempfile.TemporaryDirectory() as d:
        o = build_oms(Path(d), f"sqlite:///{d}/ledger.db")
        pool = blank_orders(o, 40, "LEDGER")
        yield o, pool
        o.close()


_sku_counter = itertools.count()

ops = st.lists(st.one_of(
    st.tuples(st.just("reserve"), st.integers(1, 8)),
    st.tuples(st.just("release"), st.integers(0, 20)),
    st.tuples(st.just("ship"), st.integers(0, 20)),
    st.tuples(st.just("receive"), st.integers(1, 8)),
), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.integers(0, 12), steps=ops)
def test_ledger_property(ledger_oms: tuple[OMS, list[int]], initial: int, steps: list[tuple[str, int]]) -> None:
    oms, pool = ledger_oms
    sku = f"LEDGER-{next(_sku_counter)}"
    add_sku(oms, sku, {"WH-SH": initial})
    holders: list[tuple[int, int]] = []  # (order id, quantity) with a live reservation of this SKU
    try:
        _run_ledger_steps(oms, pool, sku, initial, steps, holders)
    finally:
        # hand the owners back with nothing reserved, so the next example starts clean
        with oms.db.session() as s:
            for oid, _ in holders:
                reservations.release_order(s, oid, "cleanup", T0)
        pool.extend(oid for oid, _ in holders)


def _run_ledger_steps(oms: OMS, pool: list[int], sku: str, initial: int, steps: list[tuple[str, int]],
                      holders: list[tuple[int, int]]) -> None:
    on_hand, reserved = initial, 0
    for op, n in steps:
        with oms.db.session() as s:
            if op == "reserve":
                oid = pool.pop()
                ok = reservations.reserve(s, oid, f"o:{oid}", 1, "WH-SH", sku, n, T0)
                assert ok is (on_hand - reserved >= n)
                if ok:
                    reserved += n
                    holders.append((oid, n))
                else:
                    pool.append(oid)
            elif op == "receive":
                post(s, Movement.PURCHASE_RECEIPT, "WH-SH", sku, n, document="po", at=T0)
                on_hand += n
            elif holders:
                oid, q = holders.pop(n % len(holders))
                if op == "release":
                    assert reservations.release_order(s, oid, "rel", T0) == q
                    reserved -= q
                else:
                    assert reservations.ship_order(s, oid, "ship", T0) == q
                    on_hand -= q
                    reserved -= q
                pool.append(oid)
        with oms.db.session() as s:
            stock = s.get(Stock, ("WH-SH", sku))
            assert stock is not None
            assert (stock.on_hand, stock.reserved) == (on_hand, reserved)
            assert stock.on_hand - stock.reserved >= 0 and stock.reserved >= 0
            d_on, d_res = s.execute(select(func.coalesce(func.sum(StockMovement.on_hand_delta), 0),
                                           func.coalesce(func.sum(StockMovement.reserved_delta), 0))
                                    .where(StockMovement.sku == sku)).one()
            assert stock.on_hand == d_on   # the opening balance is a ledger row too
            assert stock.reserved == d_res


# ----------------------------------------------------- greedy reservation across warehouses (SQLite)

_greedy_counter = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stock=st.lists(st.lists(st.integers(0, 6), min_size=3, max_size=3), min_size=1, max_size=3),
       lines=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 9)), min_size=1, max_size=5),
       prefer=st.sampled_from([None, 0, 1, 2]))
def test_reserve_lines_takes_what_the_greedy_ranking_says(ledger_oms: tuple[OMS, list[int]],
                                                          stock: list[list[int]], lines: list[tuple[int, int]],
                                                          prefer: int | None) -> None:
    """Lines (SKU index, quantity) are reserved preferred warehouse first, then by priority, a line spread
    over warehouses when one falls short; on SQLite a warehouse's rows are read only when those ranked
    before it fall short, which must not change what is taken."""
    oms, pool = ledger_oms
    tag = next(_greedy_counter)
    with oms.db.session() as s:
        whs = sorted(oms.warehouses.get(s), key=lambda w: (w.priority, w.code))[:3]
    skus = [f"GREEDY-{tag}-{i}" for i in range(len(stock))]
    for sku, qtys in zip(skus, stock, strict=True):
        add_sku(oms, sku, {w.code: q for w, q in zip(whs, qtys, strict=True)})
    wanted = [(no, skus[i % len(skus)], q) for no, (i, q) in enumerate(lines, start=1)]
    preferred = whs[prefer].code if prefer is not None else None
    # The oracle: every figure known up front.
    ranked = sorted(whs, key=lambda w: (w.code != preferred, w.priority, w.code))
    free = {(w.code, sku): q for sku, qtys in zip(skus, stock, strict=True) for w, q in zip(whs, qtys, strict=True)}
    expected, short = [], []
    for no, sku, q in wanted:
        for w in ranked:
            take = min(q, free[(w.code, sku)])
            if take:
                expected.append((w.code, sku, no, take))
                free[(w.code, sku)] -= take
                q -= take
            if q == 0:
                break
        if q:
            short.append(sku)
    oid = pool.pop()
    try:
        with oms.db.session() as s:
            assert reservations.reserve_lines(s, oid, "greedy", wanted, whs, T0, prefer=preferred) == short
        assert sorted(_reservations(oms, oid)) == sorted(expected)
        for (w, sku), left in free.items():
            on_hand, reserved = row(oms, w, sku)
            assert on_hand - reserved == left
    finally:
        with oms.db.session() as s:
            reservations.release_order(s, oid, "cleanup", T0)
        pool.append(oid)


def test_a_savepoint_rolled_back_takes_back_its_stock_moves_and_reads(ledger_oms: tuple[OMS, list[int]]) -> None:
    """Figures moved inside a savepoint that fails are as before it, in the same dict a stock view holds;
    rows first read inside it are forgotten (read again when next needed); what was written is not."""
    from oms_engine.plugin.views import StockView
    from oms_engine.stock.batch import stock_batch
    from oms_engine.storage.db import savepoint

    oms, pool = ledger_oms
    tag = next(_greedy_counter)
    a, b = f"SP-{tag}-A", f"SP-{tag}-B"
    add_sku(oms, a, {"WH-SH": 10})
    add_sku(oms, b, {"WH-SH": 4})
    first, second = pool.pop(), pool.pop()
    try:
        with oms.db.session() as s:
            batch = stock_batch(s)
            view = StockView((), batch.available)
            assert reservations.reserve(s, first, "o", 1, "WH-SH", a, 3, T0)
            with pytest.raises(RuntimeError), savepoint(s):
                assert reservations.reserve(s, second, "o", 1, "WH-SH", a, 5, T0)
                assert reservations.reserve(s, second, "o", 2, "WH-SH", b, 4, T0)
                assert view.qty("WH-SH", a) == 2 and view.qty("WH-SH", b) == 0
                raise RuntimeError("the order fails")
            assert view.qty("WH-SH", a) == 7
            assert ("WH-SH", b) not in batch.available
            assert reservations.reserve(s, second, "o", 2, "WH-SH", b, 4, T0)
        assert row(oms, "WH-SH", a) == (10, 3) and row(oms, "WH-SH", b) == (4, 4)
        assert _reservations(oms, first) == [("WH-SH", a, 1, 3)]
        assert _reservations(oms, second) == [("WH-SH", b, 2, 4)]
    finally:
        with oms.db.session() as s:
            reservations.release_order(s, first, "cleanup", T0)
            reservations.release_order(s, second, "cleanup", T0)
        pool.extend([first, second])

"""Helpers for the end-to-end tests: drive the pipeline, read what the OMS recorded.

Everything here reads the real database and the real notification files; nothing
of the project is replaced.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import drive, drive_until_state, ingest, ingest_one, status
from oms_engine.storage.models import (
    Base,
    DecisionRecord,
    History,
    Order,
    OutboxMessage,
    PluginState,
    Reservation,
    Stock,
    StockMovement,
)
from tests.support import CATALOGUE

# Re-exported: the e2e tests drive orders with the shipped plugin-author helpers.
__all__ = ["drive", "drive_until_state", "ingest", "ingest_one", "status"]

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"


# -- driving -----------------------------------------------------------------------
def run_stages(oms: OMS, *names: str) -> None:
    """Run only the named pipeline stages once, in pipeline order, in one transaction."""
    unknown = set(names) - {st.name for st in oms.pipeline.stages}
    assert not unknown, unknown
    oms.pipeline.run_pass(only=names)


# -- reading -------------------------------------------------------------------------
def order_row(oms: OMS, number: str) -> Order:
    with oms.db.session() as s:
        o = get_order(s, number)
        _ = (o.lines, o.children, o.customer)
        return o


@dataclass(frozen=True)
class Step:
    from_state: str | None
    to_state: str
    event: str
    actor: str
    cause: str
    at: datetime


def history(oms: OMS, number: str) -> list[Step]:
    with oms.db.session() as s:
        oid = s.scalar(select(Order.id).where(Order.number == number))
        rows = s.scalars(select(History).where(History.order_id == oid).order_by(History.id))
        return [Step(h.from_state, h.to_state, h.event, h.actor, h.cause, h.at) for h in rows]


def assert_history(oms: OMS, number: str, expected: list[tuple[str, str, str]]) -> list[Step]:
    """``expected`` is [(event, to_state, actor prefix)]; also checks the chain and causes."""
    steps = history(oms, number)
    got = [(h.event, h.to_state) for h in steps]
    assert got == [(e, t) for e, t, _ in expected], f"history of {number}:\n" + "\n".join(map(str, steps))
    for h, (_, _, actor) in zip(steps, expected, strict=True):
        assert h.actor.startswith(actor), (h, actor)
        assert h.cause, f"history row without a cause: {h}"
    assert steps[0].from_state is None
    for prev, cur in itertools.pairwise(steps):
        assert cur.from_state == prev.to_state, (prev, cur)
        assert cur.at >= prev.at, (prev, cur)
    assert steps[-1].to_state == status(oms, number)
    return steps


def decisions(oms: OMS, number: str) -> list[DecisionRecord]:
    with oms.db.session() as s:
        oid = s.scalar(select(Order.id).where(Order.number == number))
        return list(s.scalars(select(DecisionRecord).where(DecisionRecord.order_id == oid).order_by(DecisionRecord.id)))


def yaml_rule_names(point: str, rules_dir: Path = RULES_ROOT) -> set[str]:
    data = yaml.safe_load((rules_dir / f"{point}.yaml").read_text(encoding="utf-8"))
    return {r["name"] for r in data["rules"]}


def assert_decisions(oms: OMS, number: str, expected: list[tuple[str, list[str]]]) -> list[DecisionRecord]:
    """``expected`` is [(point, [rules fired in order])]; each carries its ruleset and version."""
    rows = decisions(oms, number)
    got = [(d.point, [f["rule"] for f in d.fired]) for d in rows]
    assert got == expected, f"decisions of {number}: {got}"
    for d in rows:
        assert d.ruleset == d.point
        assert d.version == oms.rulebook.version(d.point) and d.version, (d.point, d.version)
        for f in d.fired:
            assert f["rule"] in yaml_rule_names(d.point), f
            assert f["actions"], f
    return rows


def stock(oms: OMS) -> dict[tuple[str, str], tuple[int, int]]:
    """(warehouse, sku) -> (on_hand, reserved)."""
    with oms.db.session() as s:
        return {(r.warehouse, r.sku): (r.on_hand, r.reserved) for r in s.scalars(select(Stock))}


def initial_stock() -> dict[tuple[str, str], tuple[int, int]]:
    return {(w, sku): (q, 0) for sku, (_, _, _, st) in CATALOGUE.items() for w, q in st.items()}


def stock_after(changes: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int, int]]:
    """The seeded stock with on_hand changed by ``changes``, nothing reserved."""
    out = initial_stock()
    for key, delta in changes.items():
        on_hand, reserved = out[key]
        out[key] = (on_hand + delta, reserved)
    return out


def movements(oms: OMS, number: str | None = None) -> list[tuple[str, str, str, int, int]]:
    """(kind, warehouse, sku, on_hand_delta, reserved_delta) in ledger order."""
    with oms.db.session() as s:
        stmt = select(StockMovement).order_by(StockMovement.id)
        if number is not None:
            oid = s.scalar(select(Order.id).where(Order.number == number))
            stmt = stmt.where(StockMovement.order_id == oid)
        return [(m.kind, m.warehouse, m.sku, m.on_hand_delta, m.reserved_delta) for m in s.scalars(stmt)]


def reservations(oms: OMS, number: str | None = None) -> list[tuple[str, str, int]]:
    with oms.db.session() as s:
        stmt = select(Reservation).order_by(Reservation.id)
        if number is not None:
            oid = s.scalar(select(Order.id).where(Order.number == number))
            stmt = stmt.where(Reservation.order_id == oid)
        return [(r.warehouse, r.sku, r.quantity) for r in s.scalars(stmt)]


def outbox(oms: OMS, number: str | None = None) -> list[OutboxMessage]:
    with oms.db.session() as s:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if number is not None:
            stmt = stmt.where(OutboxMessage.order_number == number)
        return list(s.scalars(stmt))


def topics(oms: OMS, number: str) -> list[str]:
    return [m.topic for m in outbox(oms, number)]


def sent_files(oms: OMS) -> dict[str, list[dict[str, Any]]]:
    """medium -> the records of <outbox_dir>/<medium>.jsonl."""
    directory = oms.config.path(oms.config.outbox_dir)
    out: dict[str, list[dict[str, Any]]] = {}
    for medium in ("sms", "email"):
        path = directory / f"{medium}.jsonl"
        out[medium] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] \
            if path.exists() else []
    return out


def notifications_of(oms: OMS, number: str) -> list[tuple[str, str]]:
    """[(medium, template)] delivered for one order, in delivery-file id order."""
    recs = [(r["id"], medium, r["template"]) for medium, rs in sent_files(oms).items() for r in rs
            if r["order"] == number]
    return [(m, t) for _, m, t in sorted(recs)]


def assert_outbox_delivered(oms: OMS) -> None:
    """Every outbox row sent (or a warehouse document withdrawn because its order was cancelled first);
    each notification in its medium's file exactly once, in order per order."""
    rows = outbox(oms)
    unsent = [(m.id, m.topic, m.status, m.last_error) for m in rows
              if m.status != "sent" and not (m.status == "withdrawn" and m.topic == "wms.create")]
    assert not unsent, unsent
    files = sent_files(oms)
    for medium, recs in files.items():
        ids = Counter(r["id"] for r in recs)
        assert all(c == 1 for c in ids.values()), f"{medium}: delivered twice: {[i for i, c in ids.items() if c > 1]}"
    in_file = {(medium, r["id"]): r for medium, recs in files.items() for r in recs}
    notes = [m for m in rows if m.kind == "notification"]
    assert len(in_file) == len(notes), (len(in_file), len(notes))
    for m in notes:
        rec = in_file.get((m.target, m.id))
        assert rec is not None, f"notification {m.id} ({m.topic}) of {m.order_number} is not in {m.target}.jsonl"
        assert rec["order"] == m.order_number and rec["to"] == m.payload["recipient"]
        assert rec["body"] == m.payload["body"]
    # per order, messages reach the gateway in the order they were queued
    for medium, recs in files.items():
        by_order: dict[str, list[int]] = defaultdict(list)
        for r in recs:
            by_order[r["order"]].append(r["id"])
        for number, ids_ in by_order.items():
            assert ids_ == sorted(ids_), (medium, number, ids_)


def table_counts(oms: OMS) -> dict[str, int]:
    with oms.db.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def plugin_state(oms: OMS, namespace: str, key: str) -> Any:
    with oms.db.session() as s:
        row = s.get(PluginState, (namespace, key))
        return None if row is None else row.value.get("v")


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def table_counts_url(url: str) -> dict[str, int]:
    """Row counts of a database that no OMS could be built on (tables may be missing)."""
    from sqlalchemy import inspect

    from oms_engine.storage.db import make_engine
    engine = make_engine(url)
    try:
        names = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in Base.metadata.sorted_tables if t.name in names}
    finally:
        engine.dispose()

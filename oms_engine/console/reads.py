"""What the console's pages read that the API answers in other shapes: the dashboard's figures, the rule behind
each hold, an order's story as one timeline, stock totals per warehouse.

Everything here reads the same services and queries the API does (the
metrics collector of ``/metrics``, :func:`~oms_engine.orders.explain.explain`,
the stock service); only the shape is the console's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..engine import OMS
from ..fulfilment.timeliness import open_alerts
from ..money import format_minor
from ..storage.models import DecisionRecord, Order, Product, Stock, Warehouse
from ..web.metrics import OmsCollector

# The actions that put an order on hold (or in the bin, or refuse it): the decision behind a hold fired one.
HOLDING_ACTIONS = ("hold", "bin", "refuse")
DAYS_CHARTED = 14


# -- the dashboard -------------------------------------------------------------------------------------------
@dataclass
class Figures:
    orders_by_status: Counter[str] = field(default_factory=Counter)
    holds_by_reason: Counter[str] = field(default_factory=Counter)
    holds_by_stage: Counter[str] = field(default_factory=Counter)
    oldest_hold_seconds: float = 0.0
    pending_by_topic: Counter[str] = field(default_factory=Counter)
    dead_by_topic: Counter[str] = field(default_factory=Counter)
    oldest_pending_seconds: float = 0.0
    late_by_step: Counter[str] = field(default_factory=Counter)
    incidents_by_stage: Counter[str] = field(default_factory=Counter)
    placed_per_day: list[tuple[str, int]] = field(default_factory=list)
    late_orders: dict[str, Any] = field(default_factory=dict)


def figures(oms: OMS) -> Figures:
    """The figures ``GET /metrics`` gives Prometheus (read by the same collector), and orders placed per day."""
    f = Figures()
    into: dict[str, tuple[Counter[str], str]] = {
        "oms_orders": (f.orders_by_status, "status"), "oms_holds_by_reason": (f.holds_by_reason, "reason"),
        "oms_holds": (f.holds_by_stage, "stage"), "oms_late_steps": (f.late_by_step, "step"),
        "oms_incidents_total": (f.incidents_by_stage, "stage")}
    for family in OmsCollector(oms).collect():
        for sample in family.samples:
            if sample.name in into:
                counter, label = into[sample.name]
                counter[sample.labels[label]] += int(sample.value)
            elif sample.name == "oms_outbox_messages":
                by_topic = f.pending_by_topic if sample.labels["status"] == "pending" else f.dead_by_topic
                by_topic[sample.labels["topic"]] += int(sample.value)
            elif sample.name == "oms_oldest_hold_seconds":
                f.oldest_hold_seconds = sample.value
            elif sample.name == "oms_outbox_oldest_pending_seconds":
                f.oldest_pending_seconds = sample.value
    now = oms.clock.now()
    with oms.db.read() as s:
        f.placed_per_day = placed_per_day(s, now)
        f.late_orders = open_alerts(s, now, limit=8)
    return f


def placed_per_day(s: Session, now: datetime, days: int = DAYS_CHARTED) -> list[tuple[str, int]]:
    """Orders placed on each of the last ``days`` days (UTC), today last; a day without orders is 0."""
    first = (now - timedelta(days=days - 1)).date()
    # date() is SQLite's function and PostgreSQL's cast alike; one answers text, the other a date.
    day = func.date(Order.placed_at)
    counted = {str(d)[:10]: n for d, n in s.execute(
        select(day, func.count()).where(Order.placed_at >= datetime.combine(first, datetime.min.time()))
        .group_by(day))}
    return [(d.isoformat(), counted.get(d.isoformat(), 0)) for d in (first + timedelta(days=i) for i in range(days))]


def duration(seconds: float) -> str:
    """How long, in the largest two units that say it: 3d 4h, 2h 10m, 45s."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


# -- the rule behind a hold ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Behind:
    """The decision that put an order on hold: its ruleset, version, the rules that fired and what they said."""

    ruleset: str
    version: str
    rules: list[str]
    reasons: list[str]
    at: str


def _holding(fired: Any) -> tuple[list[str], list[str]]:
    """The rules of a decision that fired a holding action, and the reasons those actions gave."""
    rules, reasons = [], []
    for f in fired if isinstance(fired, list) else []:
        if not isinstance(f, Mapping):
            continue
        actions = [a for a in f.get("actions") or [] if isinstance(a, Mapping)]
        said = [a[k] for a in actions for k in HOLDING_ACTIONS if k in a]
        if said:
            rules.append(str(f.get("rule")))
            reasons.extend(str(p.get("reason", "")) for p in said if isinstance(p, Mapping) and p.get("reason"))
    return rules, reasons


def rules_behind(s: Session, numbers: Sequence[str]) -> dict[str, Behind]:
    """For each held order of ``numbers``, its latest decision that fired a hold (orders held by the OMS itself,
    an unmapped SKU say, have none)."""
    if not numbers:
        return {}
    ids = dict(s.execute(select(Order.id, Order.number).where(Order.number.in_(numbers))).all())
    found: dict[str, Behind] = {}
    rows = s.execute(select(DecisionRecord.order_id, DecisionRecord.ruleset, DecisionRecord.version,
                            DecisionRecord.fired, DecisionRecord.at)
                     .where(DecisionRecord.order_id.in_(list(ids))).order_by(DecisionRecord.id))
    for order_id, ruleset, version, fired, at in rows:
        rules, reasons = _holding(fired)
        if rules:   # later ones overwrite: the latest that held it wins
            found[ids[order_id]] = Behind(ruleset, version, rules, reasons, at.isoformat(timespec="seconds"))
    return found


# -- an order's timeline -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    at: str
    kind: str                 # state, decision, message, tracking, incident, late
    title: str
    lines: list[str]
    rules: list[tuple[str, str]] = field(default_factory=list)   # (rule, what it did), for decisions
    bad: bool = False         # an error or a dead message: shown as such


# Within one second: the order's own steps and the decisions behind them first, then what they sent, then the rest.
_AFTER = {"message": 1, "tracking": 2, "incident": 3, "late": 4}
_MAX_PARAM = 60


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM else text[:_MAX_PARAM - 1] + "…"


def _actions_text(actions: Iterable[Any]) -> str:
    parts = []
    for a in actions:
        if isinstance(a, Mapping):
            for name, params in a.items():
                if isinstance(params, Mapping) and params:
                    # A routing map's whole table says nothing at a glance: each parameter is cut short.
                    parts.append(f"{name}: " + ", ".join(f"{k}={_short(v)}" for k, v in params.items()))
                else:
                    parts.append(str(name))
    return "; ".join(parts)


def plain(value: Any, limit: int = 400) -> str:
    """A decision's outcome (JSON) as a person reads it: ``hold: yes; reasons: a, b``, empty parts left out."""
    def one(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, Mapping):
            return "{" + plain(v, limit) + "}"
        if isinstance(v, list):
            return ", ".join(one(x) for x in v)
        return str(v)

    if isinstance(value, Mapping):
        text = "; ".join(f"{k}: {one(v)}" for k, v in value.items() if v not in (None, [], {}, ""))
    else:
        text = one(value) if value not in (None, [], {}, "") else ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _when(at: str | None) -> str:
    return (at or "").replace("T", " ")


def _spine(history: list[Mapping[str, Any]], decisions: list[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """History and decisions as one sequence, each in its own order.

    Times are to the second, and one pipeline pass writes many steps in the same second; within it, a step a
    person, a channel or a connector took comes before the decisions that followed it, and a step the rules
    took (actor ``rules:<ruleset>``) after the decisions: so a release reads before the split and routing
    decisions it led to, and a hold after the screening decision that made it.
    """
    merged: list[tuple[str, Any]] = []
    i = j = 0
    while i < len(history) or j < len(decisions):
        h = history[i] if i < len(history) else None
        d = decisions[j] if j < len(decisions) else None
        if h is None or (d is not None and ((d["at"] or "") < (h["at"] or "") or (
                d["at"] == h["at"] and str(h.get("actor", "")).startswith("rules:")))):
            merged.append(("decision", d))
            j += 1
        else:
            merged.append(("state", h))
            i += 1
    return merged


def timeline(story: Mapping[str, Any]) -> list[Entry]:
    """:func:`explain`'s history, decisions, messages, tracking, incidents and late steps as one list, newest first."""
    keyed: list[tuple[tuple[str, int, int], Entry]] = []
    for seq, (kind, x) in enumerate(_spine(story.get("history", []), story.get("decisions", []))):
        if kind == "state":
            entry = Entry(x["at"] or "", "state", f"{x['event']}: {x['from'] or 'new'} → {x['to']}",
                          [y for y in (f"by {x['actor']}", x.get("cause") or "") if y])
        else:
            fired = [f for f in x.get("fired") or [] if isinstance(f, Mapping)]
            rules = [(str(f.get("rule")), _actions_text(f.get("actions") or [])) for f in fired]
            lines = [f"{x['ruleset']}@{x['version'][:12]}"] + ([] if rules else ["no rule fired"])
            if outcome := plain(x.get("outcome")):
                lines.append(outcome)
            entry = Entry(x["at"] or "", "decision", x["ruleset"], lines, rules)
        keyed.append(((entry.at, 0, seq), entry))
    others: list[Entry] = []
    for m in story.get("messages", []):
        lines = [f"{m['status']} after {m['attempts']} attempt(s)"]
        if m.get("sent_at"):
            lines.append(f"sent {_when(m['sent_at'])}")
        if m.get("last_error"):
            lines.append(m["last_error"][:500])
        others.append(Entry(m["created_at"] or "", "message", f"{m['topic']} → {m['target']}", lines,
                            bad=m["status"] == "dead"))
    for t in story.get("tracking", []):
        lines = [y for y in (t.get("place") or "", f"from {t['source']}", t.get("tracking_no") or "",
                             "" if t.get("customer_visible") else "not shown to the customer") if y]
        others.append(Entry(t["at"] or "", "tracking", t.get("label") or t.get("status") or "tracking", lines))
    for i in story.get("incidents", []):
        others.append(Entry(i["at"] or "", "incident", f"in {i['stage']}: {i['plugin']}.{i['hook']}",
                            [i["error"][:500], f"the OMS {i['action']}"], bad=True))
    for late in story.get("late_steps", []):
        others.append(Entry(late["raised_at"] or late["due_at"] or "", "late",
                            f"{late['step']} not reached within {late['limit']} of {late['after']}",
                            [f"due {_when(late['due_at'])}"] + ([f"resolved {_when(late['resolved_at'])}"]
                                                                if late.get("resolved_at") else []),
                            bad=not late.get("resolved_at")))
    keyed += [((e.at, _AFTER[e.kind], seq), e) for seq, e in enumerate(others)]
    keyed.sort(key=lambda ke: ke[0])
    return [e for _, e in reversed(keyed)]


# -- stock -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WarehouseStock:
    code: str
    name: str
    active: bool
    skus: int
    on_hand: int
    reserved: int
    values: list[str]        # the value of its stock, one per currency


def warehouse_totals(s: Session) -> list[WarehouseStock]:
    """Every warehouse with its stock's totals (units, and value at average cost per currency)."""
    units = {w: (n, oh or 0, r or 0) for w, n, oh, r in s.execute(
        select(Stock.warehouse, func.count(), func.sum(Stock.on_hand), func.sum(Stock.reserved))
        .where(Stock.on_hand > 0).group_by(Stock.warehouse))}
    values: dict[str, list[str]] = defaultdict(list)
    for w, currency, v in s.execute(select(Stock.warehouse, Product.currency, func.sum(Stock.value))
                                    .join(Product, Product.sku == Stock.sku)
                                    .group_by(Stock.warehouse, Product.currency)
                                    .order_by(Stock.warehouse, Product.currency)):
        if v:
            values[w].append(format_minor(int(v), currency))
    return [WarehouseStock(w.code, w.name, bool(w.active), *units.get(w.code, (0, 0, 0)), values.get(w.code, []))
            for w in s.scalars(select(Warehouse).order_by(Warehouse.code))]


def currencies(s: Session, skus: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    return dict(s.execute(select(Product.sku, Product.currency).where(Product.sku.in_(wanted))).all())

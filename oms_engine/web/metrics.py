"""``GET /metrics``: the OMS's state in Prometheus's text format, read from the database at each scrape.

Every figure is the database's, so any number of API processes answer the
same and nothing is lost when one restarts; Prometheus derives rates from the
counters (``rate(oms_payloads_received_total[5m])`` is the intake rate).

=================================  =======  ==================================================
oms_orders                         gauge    orders by status and channel
oms_orders_placed_total            counter  orders taken in, by channel
oms_payloads_received_total        counter  raw payloads received, by channel
oms_holds                          gauge    held orders by hold stage
oms_holds_by_reason                gauge    held orders by reason (the 20 commonest; the rest "other")
oms_oldest_hold_seconds            gauge    how long the longest-waiting held order has waited
oms_outbox_messages                gauge    outbox messages by topic and status (pending: the backlog;
                                            dead: dead letters)
oms_outbox_oldest_pending_seconds  gauge    age of the oldest message not yet sent
oms_late_steps                     gauge    open late-step alerts by step (timeliness)
oms_incidents_total                counter  incidents recorded, by stage
=================================  =======  ==================================================

Reason labels are the hold reasons' text up to the first colon, cut to 80
characters, so an SKU or an amount in a reason does not make a series of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..engine import OMS
from ..orders.late_steps import position
from ..orders.machine import TERMINAL, State
from ..storage.models import History, Incident, LateStep, Order, OutboxMessage, RawPayload

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOP_REASONS = 20


class OmsCollector(Collector):
    def __init__(self, oms: OMS) -> None:
        self._oms = oms

    def collect(self) -> Iterator[Metric]:
        now = self._oms.clock.now()
        with self._oms.db.read() as s:
            yield from _orders(s)
            yield from _holds(s, now)
            yield from _outbox(s, now)
            yield from _late(s)
            yield from _incidents(s)


def _orders(s: Session) -> Iterator[Metric]:
    by_status = GaugeMetricFamily("oms_orders", "Orders by status and channel", labels=["status", "channel"])
    placed = CounterMetricFamily("oms_orders_placed", "Orders taken in, by channel", labels=["channel"])
    per_channel: Counter[str] = Counter()
    for status, channel, n in s.execute(select(Order.status, Order.channel, func.count())
                                        .group_by(Order.status, Order.channel)):
        by_status.add_metric([status, channel], n)
        per_channel[channel] += n
    for channel, n in sorted(per_channel.items()):
        placed.add_metric([channel], n)
    yield by_status
    yield placed
    received = CounterMetricFamily("oms_payloads_received", "Raw payloads received, by channel", labels=["channel"])
    for channel, n in s.execute(select(RawPayload.channel, func.count()).group_by(RawPayload.channel)):
        received.add_metric([channel], n)
    yield received


def _holds(s: Session, now: datetime) -> Iterator[Metric]:
    held = Order.status == State.ON_HOLD.value
    by_stage = GaugeMetricFamily("oms_holds", "Held orders by hold stage", labels=["stage"])
    for stage, n in s.execute(select(Order.hold_stage, func.count()).where(held).group_by(Order.hold_stage)):
        by_stage.add_metric([stage or "unknown"], n)
    yield by_stage
    reasons: Counter[str] = Counter()
    for reason, n in s.execute(select(Order.hold_reason, func.count()).where(held).group_by(Order.hold_reason)):
        reasons[(reason or "unknown").split(":", 1)[0].strip()[:80] or "unknown"] += n
    by_reason = GaugeMetricFamily("oms_holds_by_reason", "Held orders by reason", labels=["reason"])
    top = reasons.most_common(TOP_REASONS)
    for reason, n in top:
        by_reason.add_metric([reason], n)
    rest = sum(reasons.values()) - sum(n for _, n in top)
    if rest:
        by_reason.add_metric(["other"], rest)
    yield by_reason
    # The latest hold event of each held order; the oldest of those is the longest wait.
    held_at = (select(func.max(History.at).label("at")).join(Order, Order.id == History.order_id)
               .where(held, History.event == "hold").group_by(History.order_id).subquery())
    oldest = s.scalar(select(func.min(held_at.c.at)))
    yield GaugeMetricFamily("oms_oldest_hold_seconds", "How long the longest-waiting held order has waited",
                            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def _outbox(s: Session, now: datetime) -> Iterator[Metric]:
    messages = GaugeMetricFamily("oms_outbox_messages", "Outbox messages by topic and status",
                                 labels=["topic", "status"])
    for topic, status, n in s.execute(select(OutboxMessage.topic, OutboxMessage.status, func.count())
                                      .where(OutboxMessage.status.in_(("pending", "dead")))
                                      .group_by(OutboxMessage.topic, OutboxMessage.status)):
        messages.add_metric([topic, status], n)
    yield messages
    oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending"))
    yield GaugeMetricFamily("oms_outbox_oldest_pending_seconds", "Age of the oldest outbox message not yet sent",
                            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def _late(s: Session) -> Iterator[Metric]:
    late = GaugeMetricFamily("oms_late_steps", "Open late-step alerts by step", labels=["step"])
    open_by_step: Counter[str] = Counter()
    for step, status, n in s.execute(
            select(LateStep.step, Order.status, func.count()).join(Order, Order.id == LateStep.order_id)
            .where(LateStep.resolved_at.is_(None), Order.status.not_in([st.value for st in TERMINAL]))
            .group_by(LateStep.step, Order.status)):
        # As the late-steps report counts them: an order already past the step by another way is not late.
        if position(status) < position(step):
            open_by_step[step] += n
    for step, n in sorted(open_by_step.items()):
        late.add_metric([step], n)
    yield late


def _incidents(s: Session) -> Iterator[Metric]:
    incidents = CounterMetricFamily("oms_incidents", "Incidents recorded, by stage", labels=["stage"])
    for stage, n in s.execute(select(Incident.stage, func.count()).group_by(Incident.stage)):
        incidents.add_metric([stage], n)
    yield incidents


def exposition(oms: OMS) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OmsCollector(oms))
    return generate_latest(registry)

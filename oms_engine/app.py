"""The OMS: configuration, storage, plugins and rules wired together.

:class:`OMS` is what the CLI, the admin API, the demo and the tests drive.
Every change of an order's state goes through :meth:`OMS.fire`, which checks
the transition table and the guards before touching anything, then writes
the history row, runs the side effects of the edge (stock, outbox), asks the
notification rules what to tell the customer, and calls the observers, all
in the caller's transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from . import inventory
from .clock import Clock
from .config import Config
from .contracts import Connector
from .db import Database, append
from .domain import WarehouseView
from .extensions import Extensions
from .facts import STATISTICS, customer_stats, order_facts, order_view
from .models import Decision, History, Inbox, Order, Outbox, PluginState, ScheduledTask
from .numbering import NumberGenerator
from .pluginmanager import build_plugin_manager
from .rulebook import Rulebook
from .states import AT_WAREHOUSE, Event, IllegalTransition, State, next_state
from .status_map import StatusEntry, load_status_map
from .templating import TemplateProblem, render
from .templating import check as check_template

log = logging.getLogger("oms")


class GuardFailed(IllegalTransition):
    def __init__(self, order: str, state: str, event: str, why: str) -> None:
        Exception.__init__(self, f"order {order}: event '{event}' refused in state '{state}': {why}")
        self.order, self.state, self.event = order, state, event


class OrderNotFound(LookupError):
    pass


class DatabaseNotReady(RuntimeError):
    pass


@dataclass
class Batch:
    """Per-transaction memo: customer statistics and rule facts, computed once per batch.

    An order's facts do not change with its state (state is not a fact; the
    transition is added separately), so they are safe to reuse within a batch.
    """

    stats: dict[int, tuple[int, int]] = field(default_factory=dict)
    facts: dict[int, dict[str, Any]] = field(default_factory=dict)
    counted: set[int] = field(default_factory=set)  # orders whose cached facts carry real statistics


class Context:
    """The :class:`~oms_engine.contracts.PluginContext` bound to one transaction."""

    def __init__(self, oms: OMS, session: Session) -> None:
        self.oms, self.session = oms, session

    def now(self) -> datetime:
        return self.oms.clock.now()

    def state_get(self, namespace: str, key: str) -> Any:
        row = self.session.get(PluginState, (namespace, key))
        return None if row is None else row.value.get("v")

    def state_put(self, namespace: str, key: str, value: Any) -> None:
        row = self.session.get(PluginState, (namespace, key))
        if row is None:
            self.session.add(PluginState(namespace=namespace, key=key, value={"v": value}))
        else:
            row.value = {"v": value}

    def schedule(self, connector: str, at: datetime, payload: Any, key: str | None = None) -> None:
        append(self.session, ScheduledTask, connector=connector, key=key, due_at=at, payload=payload)

    def receive_callback(self, source: str, payload: Any) -> None:
        self.oms.receive_callback(self.session, source, payload, flush=False)


# Guards: a reason the event may not happen now, or None.
def _guard(order: Order, event: Event) -> str | None:
    paid = order.paid_amount >= order.payable and order.payment_txn is not None
    if event is Event.PAY and order.paid_amount < order.payable:
        return f"paid {order.paid_amount} is less than payable {order.payable}"
    if event is Event.RELEASE and not (paid or order.parent_id):
        return "the order is not paid yet (use release_unpaid)"
    if event is Event.RELEASE_UNPAID and paid:
        return "the order is paid (use release)"
    if event is Event.SPLIT and order.parent_id is not None:
        return "a child order cannot be split again"
    if event is Event.ROUTE and not order.warehouse:
        return "no warehouse chosen"
    return None


class OMS:
    def __init__(self, config: Config, *, clock: Clock | None = None, extra_plugins: Sequence[str] = ()) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.db = Database(config.resolved_database_url())
        self.pm = build_plugin_manager([*config.plugins, *extra_plugins])
        self.ext = Extensions(self.pm, config)
        rules_dir = config.path(config.rules_dir)
        self.rulebook = Rulebook(rules_dir, self.ext)
        self.status_map = load_status_map(rules_dir / "maps" / "status.yaml")
        self.numbers = NumberGenerator(self.db.engine, config.number_secret, config.shard_count)
        self.wms: Connector = self.ext.connectors.get(config.wms_connector)
        self.carrier: Connector = self.ext.connectors.get(config.carrier_connector)
        self._warehouses: tuple[float, tuple[WarehouseView, ...]] | None = None
        for _, template in self.ext.templates.items():
            check_template(template.body, name=template.name)
            check_template(template.subject, name=template.name)
        self._check_schema()

    def _check_schema(self) -> None:
        from .migrate import current, head
        try:
            found = current(self.db.engine)
        except Exception as exc:  # an unreachable database is reported the same way
            raise DatabaseNotReady(f"cannot open the database {self.db.engine.url.render_as_string()}: {exc}") \
                from None
        if found != head():
            raise DatabaseNotReady(
                f"the database {self.db.engine.url.render_as_string()} is at schema revision {found or 'none'}, "
                f"expected {head()}: run 'oms init' first")

    def close(self) -> None:
        self.db.dispose()

    # -- lookups ---------------------------------------------------------
    def load_orders(self, s: Session, ids: Sequence[int]) -> list[Order]:
        if not ids:
            return []
        return list(s.scalars(
            select(Order).where(Order.id.in_(ids)).order_by(Order.id)
            .options(selectinload(Order.lines), selectinload(Order.customer))
        ))

    def load_orders_by_number(self, s: Session, numbers: Sequence[str]) -> list[Order]:
        if not numbers:
            return []
        ids = list(s.scalars(select(Order.id).where(Order.number.in_(numbers))))
        return self.load_orders(s, ids)

    def warehouses(self, s: Session) -> tuple[WarehouseView, ...]:
        """Warehouse master data, re-read at most every 60 seconds (it changes rarely)."""
        now = time.monotonic()
        if self._warehouses is None or now - self._warehouses[0] > 60:
            self._warehouses = (now, inventory.warehouse_views(s))
        return self._warehouses[1]

    def get_order(self, s: Session, number: str, *, lock: bool = False) -> Order:
        stmt = select(Order).where(Order.number == number).options(
            selectinload(Order.lines), selectinload(Order.customer), selectinload(Order.children))
        if lock:
            stmt = stmt.with_for_update()
        order = s.scalars(stmt).first()
        if order is None:
            raise OrderNotFound(f"no order numbered '{number}'")
        return order

    def facts(self, s: Session, orders: Sequence[Order], batch: Batch, *, point: str | None = None
              ) -> dict[int, dict[str, Any]]:
        """Rule facts for a batch: core facts, then every fact provider once for the whole batch.

        Customer statistics cost a query; they are computed only when the
        decision point's rules read them (``point=None``: always).
        """
        stats = point is None or self.rulebook.reads(point, *STATISTICS)
        todo = [o for o in orders if o.id not in batch.facts or (stats and o.id not in batch.counted)]
        if stats:
            missing = [o for o in todo if o.customer_id not in batch.stats]
            if missing:
                batch.stats.update(customer_stats(s, missing, self.clock.now()))
            batch.counted.update(o.id for o in todo)
        core = {o.id: order_facts(o, batch.stats if stats else {}) for o in todo}
        orders = todo
        providers = self.ext.fact_providers.items()
        if providers and orders:
            views = [order_view(o) for o in orders]
            by_number = {o.number: core[o.id] for o in orders}
            for _, provider in providers:
                extra = provider.provide(views, by_number)
                for o in orders:
                    for key, value in extra.get(o.number, {}).items():
                        core[o.id].setdefault(key, {}).update(value) if isinstance(value, dict) \
                            else core[o.id].__setitem__(key, value)
        batch.facts.update(core)
        return batch.facts

    # -- the state machine -------------------------------------------------
    def check(self, order: Order, event: Event | str) -> State:
        """The state ``event`` would lead to; raises and changes nothing when illegal."""
        target = next_state(order.number, order.status, str(event))
        why = _guard(order, Event(event))
        if why:
            raise GuardFailed(order.number, order.status, str(event), why)
        return target

    def fire(self, s: Session, order: Order, event: Event, *, actor: str, cause: str = "",
             batch: Batch | None = None) -> State:
        target = self.check(order, event)
        now = self.clock.now()
        before = order.status
        order.status = target.value
        order.updated_at = now
        order.due_at = self._due(order, target, now)
        if target not in (State.ON_HOLD, State.CANCELLED):
            # Leaving the review queue clears the reason; a rejected order keeps it on record.
            order.hold_reason = order.hold_stage = None
        append(s, History, order_id=order.id, from_state=before, to_state=target.value, event=event.value,
               actor=actor, cause=cause, at=now)
        self._effects(s, order, before, event, target, cause)
        if order.parent_id is not None and target in (State.COMPLETED, State.CLOSED, State.CANCELLED):
            # Flag the parent for the parents stage, in this same transaction.
            s.execute(update(Order).where(Order.id == order.parent_id).values(stage="check"),
                      execution_options={"synchronize_session": False})
        self._notify(s, order, before, event, target, actor, batch)
        self.ext.after_transition(order_number=order.number, from_state=before, to_state=target.value,
                                  event=event.value, actor=actor, cause=cause)
        return target

    def _due(self, order: Order, target: State, now: datetime) -> datetime | None:
        t = self.config.timeouts
        if target is State.PENDING_PAYMENT:
            return order.placed_at + timedelta(minutes=t.payment_minutes)
        if target is State.DELIVERED:
            return now + timedelta(days=t.confirm_days)
        if target is State.COMPLETED:
            return now + timedelta(days=t.after_sales_days)
        return None

    def _effects(self, s: Session, order: Order, before: str, event: Event, target: State, cause: str) -> None:
        now = self.clock.now()
        doc = f"order:{order.number}"
        if target is State.CANCELLED:
            if State(before) in AT_WAREHOUSE:
                self.enqueue(s, order, "connector", self.wms.name, "wms.cancel",
                             {"order_number": order.number, "reason": cause})
            inventory.release_order(s, order.id, doc, now)
            # The money goes back with the order that is cancelled; a parent whose
            # children were all cancelled has nothing left to refund.
            if (order.paid_amount or order.parent_id) and event is not Event.CHILDREN_CANCELLED:
                order.refund_amount = order.payable
        elif event is Event.SHIP:
            inventory.ship_order(s, order.id, doc, now)
            self.enqueue(s, order, "connector", self.carrier.name, "carrier.register", {
                "order_number": order.number, "tracking_no": order.tracking_no, "carrier": order.carrier,
                "ship_to": order.ship_to, "warehouse": order.warehouse})
        elif event is Event.INTERCEPT:
            self.enqueue(s, order, "connector", self.wms.name, "wms.intercept",
                         {"order_number": order.number, "reason": cause})
        elif event is Event.RETURNED:
            if order.warehouse:
                for ln in order.lines:
                    inventory.receive(s, order.warehouse, ln.sku, ln.quantity, "return", doc, now, order.id)
            # A refused parcel is back: the customer gets the money for it back.
            if order.paid_amount or order.parent_id:
                order.refund_amount = order.payable

    def _notify(self, s: Session, order: Order, before: str, event: Event, target: State, actor: str,
                batch: Batch | None) -> None:
        if "notifications" not in self.rulebook.rulesets:
            return
        facts = dict(self.facts(s, [order], batch if batch is not None else Batch(),
                                point="notifications")[order.id])
        facts["transition"] = {"event": event.value, "from_state": before, "to_state": target.value,
                               "actor": actor}
        decision = self.rulebook.decide("notifications", facts)
        if decision is None or not decision.fired:
            return
        sent = []
        for action in decision.actions:
            if action.name != "notify":
                continue
            template = self.ext.templates.get(action.params["template"])
            medium = action.params.get("medium", template.medium)
            customer = order.customer
            recipient = customer.email if medium == "email" else customer.phone if medium == "sms" else customer.ref
            context = {"order": {"number": order.number, "status": target.value, "payable": order.payable,
                                 "currency": order.currency, "tracking_no": order.tracking_no or "",
                                 "carrier": order.carrier or "", "warehouse": order.warehouse or "",
                                 "refund": order.refund_amount, "hold_reason": order.hold_reason or ""},
                       "customer": {"name": customer.name, "level": customer.level},
                       "transition": facts["transition"]}
            try:
                body = render(template.body, context, name=template.name)
                subject = render(template.subject, context, name=template.name) if template.subject else ""
            except TemplateProblem as exc:
                # Templates are checked at start; should one still fail on real data, the
                # order's transition stands and the failure is on record, not the order lost.
                log.error("order %s: %s", order.number, exc)
                sent.append({"template": template.name, "medium": medium, "error": str(exc)})
                continue
            self.enqueue(s, order, "notification", medium, f"notify.{template.name}",
                         {"recipient": recipient, "template": template.name, "subject": subject, "body": body})
            sent.append({"template": template.name, "medium": medium, "recipient": recipient})
        self.record(s, order, "notifications", decision, {"event": event.value, "sent": sent})

    # -- decisions, outbox, inbox -----------------------------------------------
    def record(self, s: Session, order: Order, point: str, decision: Any, outcome: Mapping[str, Any]) -> None:
        fired = [{"rule": f.name, "priority": f.priority,
                  "actions": [{a.name: dict(a.params)} for a in f.actions]} for f in decision.fired] \
            if decision is not None else []
        append(s, Decision, order_id=order.id, point=point,
               ruleset=decision.ruleset if decision is not None else point,
               version=decision.version if decision is not None else "(no ruleset)",
               fired=fired, outcome=dict(outcome), at=self.clock.now())

    def enqueue(self, s: Session, order: Order | None, kind: str, target: str, topic: str,
                payload: Mapping[str, Any]) -> None:
        now = self.clock.now()
        append(s, Outbox, order_id=order.id if order else None, order_number=order.number if order else "",
               kind=kind, target=target, topic=topic, payload=dict(payload), created_at=now, available_at=now,
               status="pending", attempts=0, last_error="")

    def receive_callback(self, s: Session, source: str, payload: Any, *, flush: bool = True) -> int | None:
        """Store a WMS or carrier callback; it is applied by the next pipeline pass.

        Returns the inbox id (which costs a flush; plugins calling back in bulk skip it).
        """
        if source not in self.ext.connectors:
            raise LookupError(f"unknown callback source '{source}'")
        body = payload if isinstance(payload, dict) else {"body": payload}
        if not flush:
            append(s, Inbox, source=source, payload=body, received_at=self.clock.now(), status="pending", outcome="")
            return None
        row = Inbox(source=source, payload=body, received_at=self.clock.now())
        s.add(row)
        s.flush()
        return row.id

    def status_entry(self, connector: Connector, status: str) -> StatusEntry:
        try:
            return self.status_map[connector.kind][status]
        except KeyError:
            raise LookupError(f"status '{status}' from {connector.kind} '{connector.name}' "
                              "is not in the status map") from None

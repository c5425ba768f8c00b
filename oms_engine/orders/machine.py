"""The order state machine: its table (edges, guards, the effects of each edge), deadlines and firing.

The table is data on the generic machine (statemachine.py): :data:`TRANSITIONS`,
:data:`GUARDS` and :data:`EFFECTS` make :data:`ORDER`. Parent and child orders
share it. Every change of an order's state goes through
:meth:`OrderMachine.fire`, which checks the table and the guard of the edge
before touching anything, then writes the history row, sets the next
deadline, runs the effects of the edge (stock, outbox), asks the notification
rules what to tell the customer and calls the observers, all in the caller's
transaction. An illegal event raises :class:`IllegalTransition` naming the
order, the state and the event, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..config import Timeouts
from ..fulfilment import parcels
from ..invoices.issuing import freight_paid
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..payments import ledger
from ..payments.methods import REPLACEMENT
from ..payments.refunds import Refunds
from ..payments.status import cleared, is_cod
from ..plugin.faults import PluginFault
from ..statemachine import Effect, GuardFailed, IllegalTransition, Table, Transition, effect
from ..stock import lots
from ..stock.ledger import post
from ..stock.movements import Movement
from ..stock.reservations import release_order, ship_order
from ..storage.db import append
from ..storage.models import History, Order
from .flow import PARENT_CHECK
from .incidents import record_incident
from .kits import requirements
from .states import Event, State
from .waits import clear_waits

if TYPE_CHECKING:
    from ..channels.reports import ChannelReports
    from ..decisions.fact_builder import FactCache
    from ..events.sink import EventSink
    from ..messaging.notifications import Notifier
    from .late_steps import LateLimits


S, E = State, Event

# Cancelling is possible until picking starts; after that only interception.
_CANCELLABLE = (S.PENDING_PAYMENT, S.PAID, S.ON_HOLD, S.BINNED, S.ROUTED, S.DISPATCHED, S.ACCEPTED)

TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.PENDING_PAYMENT, E.PAY): S.PAID,
    (S.PENDING_PAYMENT, E.PAYMENT_TIMEOUT): S.CANCELLED,
    (S.PENDING_PAYMENT, E.HOLD): S.ON_HOLD,
    (S.PAID, E.HOLD): S.ON_HOLD,
    (S.ON_HOLD, E.RELEASE): S.PAID,
    (S.ON_HOLD, E.RELEASE_UNPAID): S.PENDING_PAYMENT,
    (S.ON_HOLD, E.REJECT): S.CANCELLED,
    (S.ON_HOLD, E.PAY): S.ON_HOLD,
    # The recycle bin (a blocking rule's bin, or a person's): out of the flow with its stock freed, until it is
    # restored to the review queue or its period ends (cancelled then, and only then refunded and told).
    (S.PENDING_PAYMENT, E.BIN): S.BINNED,
    (S.PAID, E.BIN): S.BINNED,
    (S.ON_HOLD, E.BIN): S.BINNED,
    (S.BINNED, E.RESTORE): S.ON_HOLD,
    (S.PAID, E.SPLIT): S.SPLIT,
    (S.PAID, E.ROUTE): S.ROUTED,
    # Merging or courier choice found no way on (its document has not been written yet).
    (S.ROUTED, E.HOLD): S.ON_HOLD,
    (S.ROUTED, E.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, E.WMS_ACCEPT): S.ACCEPTED,
    (S.ACCEPTED, E.PICK): S.PICKING,
    (S.DISPATCHED, E.PICK): S.PICKING,
    (S.PICKING, E.PACK): S.PACKED,
    (S.ACCEPTED, E.SHIP): S.SHIPPED,
    (S.PICKING, E.SHIP): S.SHIPPED,
    (S.PACKED, E.SHIP): S.SHIPPED,
    (S.PICKING, E.INTERCEPT): S.INTERCEPT_REQUESTED,
    (S.PACKED, E.INTERCEPT): S.INTERCEPT_REQUESTED,
    (S.INTERCEPT_REQUESTED, E.INTERCEPT_CONFIRMED): S.CANCELLED,
    (S.INTERCEPT_REQUESTED, E.INTERCEPT_REFUSED): S.PACKED,
    # The warehouse may ship before it reads the interception request.
    (S.INTERCEPT_REQUESTED, E.SHIP): S.SHIPPED,
    (S.SHIPPED, E.IN_TRANSIT): S.IN_TRANSIT,
    (S.SHIPPED, E.DELIVER): S.DELIVERED,
    (S.SHIPPED, E.REFUSE): S.REFUSED,
    (S.IN_TRANSIT, E.IN_TRANSIT): S.IN_TRANSIT,
    (S.IN_TRANSIT, E.OUT_FOR_DELIVERY): S.OUT_FOR_DELIVERY,
    (S.IN_TRANSIT, E.DELIVER): S.DELIVERED,
    (S.IN_TRANSIT, E.REFUSE): S.REFUSED,
    (S.OUT_FOR_DELIVERY, E.DELIVER): S.DELIVERED,
    (S.OUT_FOR_DELIVERY, E.REFUSE): S.REFUSED,
    (S.DELIVERED, E.CONFIRM): S.COMPLETED,
    (S.COMPLETED, E.CLOSE): S.CLOSED,
    (S.REFUSED, E.RETURNED): S.CLOSED,
    # Moving to another warehouse: the first one has stopped (or never started) picking it.
    (S.DISPATCHED, E.MOVE): S.ROUTED,
    (S.ACCEPTED, E.MOVE): S.ROUTED,
    (S.INTERCEPT_REQUESTED, E.MOVE): S.ROUTED,
    # The warehouse cannot fill it: its units there are given back and routing looks again.
    (S.DISPATCHED, E.SHORTAGE): S.PAID,
    (S.ACCEPTED, E.SHORTAGE): S.PAID,
    (S.PICKING, E.SHORTAGE): S.PAID,
    (S.SPLIT, E.CHILDREN_DONE): S.COMPLETED,
    (S.SPLIT, E.CHILDREN_CANCELLED): S.CANCELLED,
    **{(s, E.CANCEL): S.CANCELLED for s in _CANCELLABLE},
}

TERMINAL: frozenset[State] = frozenset({S.CANCELLED, S.CLOSED})
# States in which the warehouse holds the document: a cancel must reach the WMS too.
AT_WAREHOUSE: frozenset[State] = frozenset({S.DISPATCHED, S.ACCEPTED})
# Fulfilment is under way: stock has left or is leaving the shelf.
SHIPPED_OR_LATER: frozenset[State] = frozenset(
    {S.SHIPPED, S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.COMPLETED, S.REFUSED}
)



# Stopping an order: cancel until picking starts, then only an interception request.
INTERCEPTABLE: frozenset[State] = frozenset({S.PICKING, S.PACKED})
# How an order that reached its deadline moves on (the timers stage asks this table).
TIMEOUTS: dict[State, tuple[Event, str]] = {
    S.PENDING_PAYMENT: (E.PAYMENT_TIMEOUT, "unpaid when the payment window closed"),
    S.DELIVERED: (E.CONFIRM, "confirmation window ended"),
    S.COMPLETED: (E.CLOSE, "after-sales window ended"),
    S.BINNED: (E.CANCEL, "its time in the recycle bin ended"),
}


def parcel(order: Order) -> dict[str, Any]:
    """What a carrier is told of a shipped parcel (topic ``carrier.register``)."""
    return {"order_number": order.number, "orders": [order.number], "tracking_no": order.tracking_no,
            "carrier": order.carrier, "service": order.service, "ship_to": order.ship_to,
            "warehouse": order.warehouse, "weight_g": sum(ln.weight_g * ln.quantity for ln in order.lines),
            "value": order.payable, "currency": order.currency,
            "cod_amount": max(order.payable - order.paid_amount, 0) if order.payment_method == "cod" else 0,
            "deliver_from": _iso(order.delivery_from), "deliver_by": _iso(order.delivery_by)}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() + "Z" if at is not None else None


__all__ = ["EFFECTS", "GUARDS", "ORDER", "TRANSITIONS", "Event", "GuardFailed", "IllegalTransition", "OrderMachine",
           "State", "Transition", "check", "next_state", "stop_event"]


def next_state(order: str, state: str, event: str) -> State:
    return ORDER.next(order, state, event)


def stop_event(state: str) -> Event:
    """The event that stops an order in ``state``: cancel, or after picking an interception request."""
    return E.INTERCEPT if State(state) in INTERCEPTABLE else E.CANCEL


# -- guards: a reason the event may not happen now, or None -------------------------
def _guard_pay(order: Order) -> str | None:
    if order.paid_amount < order.payable and not is_cod(order):   # cash on delivery: paid at the door
        return f"paid {order.paid_amount} is less than payable {order.payable}"
    return None


def _guard_release(order: Order) -> str | None:
    return None if cleared(order) or order.parent_id else "the order is not paid yet (use release_unpaid)"


def _guard_release_unpaid(order: Order) -> str | None:
    return "the order is paid (use release)" if cleared(order) else None


def _guard_split(order: Order) -> str | None:
    return "a child order cannot be split again" if order.parent_id is not None else None


def _guard_bin(order: Order) -> str | None:
    # A part of a split order goes with its parent: binning one part would leave the parent half in the bin.
    return "a part of a split order is cancelled, not binned" if order.parent_id is not None else None


def _guard_route(order: Order) -> str | None:
    return None if order.warehouse else "no warehouse chosen"


GUARDS: dict[Event, Callable[[Order], str | None]] = {
    E.PAY: _guard_pay,
    E.RELEASE: _guard_release,
    E.RELEASE_UNPAID: _guard_release_unpaid,
    E.SPLIT: _guard_split,
    E.ROUTE: _guard_route,
    E.BIN: _guard_bin,
}


def check(order: Order, event: Event | str) -> State:
    """The state ``event`` would lead to; raises and changes nothing when illegal."""
    return ORDER.check(order, event)


# -- deadlines: when the timer of the state entered fires ---------------------------
def deadline(placed_at: datetime, target: State, now: datetime, timeouts: Timeouts) -> datetime | None:
    if target is S.PENDING_PAYMENT:
        return placed_at + timedelta(minutes=timeouts.payment_minutes)
    if target is S.DELIVERED:
        return now + timedelta(days=timeouts.confirm_days)
    if target is S.COMPLETED:
        return now + timedelta(days=timeouts.after_sales_days)
    if target is S.BINNED:
        return now + timedelta(hours=timeouts.recycle_bin_hours)
    return None


class OrderMachine:
    """Fires events on orders; its collaborators are the outbox, the notifier and the observers."""

    def __init__(self, *, clock: Clock, timeouts: Timeouts, outbox: OutboxWriter, notifier: Notifier,
                 observe: Callable[..., None], wms_for: Callable[[Session, str], str],
                 carrier_for: Callable[[Session, str | None], str], late: LateLimits | None = None,
                 refunds: Refunds | None = None, events: EventSink | None = None,
                 reports: ChannelReports | None = None) -> None:
        """``wms_for(session, warehouse)``: the WMS connector a warehouse's documents go to;
        ``carrier_for(session, carrier)``: the connector a carrier's parcels are registered with;
        ``late``: the limits per step of fulfilment (config ``late_steps``); ``refunds``: where the refunds a
        cancellation or a returned parcel owes go (payments/refunds.py; none: they are recorded and stay owed);
        ``events``: where every transition is told to downstream systems (events/sink.py; none: it is not);
        ``reports``: what the shops are told of their orders (channels/reports.py; none: no account reports)."""
        self.clock, self.timeouts, self.outbox, self.notifier = clock, timeouts, outbox, notifier
        self.observe, self.wms_for, self.carrier_for = observe, wms_for, carrier_for
        self.late = late
        self.refunds = refunds
        self.events = events
        self.reports = reports
        # Told when a replacement order an exchange sent is delivered or cancelled (aftersales/service.py).
        self.on_replacement: Callable[[Session, Order, Transition[State, Event]], None] | None = None

    check = staticmethod(check)

    def deadline(self, order: Order) -> datetime | None:
        """When the timer of the order's current state fires (None: it has none)."""
        return deadline(order.placed_at, State(order.status), self.clock.now(), self.timeouts)

    def first_deadline(self, status: State, placed_at: datetime) -> datetime | None:
        """The deadline of an order about to be created in ``status`` (so it is inserted with it)."""
        return deadline(placed_at, status, self.clock.now(), self.timeouts)

    def prepare(self, s: Session, orders: list[Any], cache: FactCache) -> None:
        """Ready a batch of orders for transitions: what the notifications will ask, built once for all."""
        self.notifier.prepare(s, orders, cache)

    def create(self, s: Session, order: Order, *, actor: str, cause: str) -> None:
        """A new order (or child order) enters the machine in ``order.status``: its first history row."""
        now = self.clock.now()
        due = self.deadline(order)
        if order.due_at != due:  # set before the insert, it costs no second write
            order.due_at = due
        append(s, History, order_id=order.id, from_state=None, to_state=order.status, event="create",
               actor=actor, cause=cause, at=now)
        if self.events is not None:
            self.events.transition(s, order, None, "create", order.status, actor=actor, cause=cause, at=now)

    def fire(self, s: Session, order: Order, event: Event, *, actor: str, cause: str = "",
             cache: FactCache | None = None, seen: tuple[bool, str] = (False, "")) -> State:
        """``seen``: for a transition a callback caused, whether the customer may see it and its label (the
        status map's), for the notification rules (``transition.customer_visible``, ``transition.label``)."""
        now = self.clock.now()
        t = ORDER.begin(order, event, actor=actor, cause=cause, at=now)
        target = t.target
        order.updated_at = now
        due = deadline(order.placed_at, target, now, self.timeouts)
        # A state with no timer of its own may carry a late step's deadline (orders/late_steps.py).
        order.due_at = due if self.late is None else self.late.on_transition(s, order, t.before, target, now, due)
        if target not in (S.ON_HOLD, S.BINNED, S.CANCELLED):
            # Leaving the review queue clears the reason; a rejected or binned order keeps it on record.
            order.hold_reason = order.hold_stage = None
        append(s, History, order_id=order.id, from_state=t.before.value, to_state=target.value, event=event.value,
               actor=actor, cause=cause, at=now)
        if self.events is not None:
            # Before the effects: the stock and money events an edge causes follow its transition in the order's queue.
            self.events.transition(s, order, t.before.value, event.value, target.value, actor=actor, cause=cause,
                                   at=now)
        if self.reports is not None:
            # Before the effects too: the shop hears of a cancellation before the refund it causes.
            self.reports.transition(s, order, event.value, target.value, actor, cause, seen)
        if t.before is S.ON_HOLD and target is not S.ON_HOLD:
            clear_waits(s, order.id)   # out of the review queue: it waits for nothing any more
        ORDER.run_effects(self, s, t)
        if order.parent_id is not None and target in (S.COMPLETED, S.CLOSED, S.CANCELLED):
            # Flag the parent for the parents stage, in this same transaction.
            s.execute(update(Order).where(Order.id == order.parent_id).values(stage=PARENT_CHECK.value),
                      execution_options={"synchronize_session": False})
        self.notifier.on_transition(s, order, t.before, event, target, actor, cache, seen)
        try:
            self.observe(order_number=order.number, from_state=t.before.value, to_state=target.value,
                         event=event.value, actor=actor, cause=cause)
        except PluginFault as fault:
            record_incident(s, order_id=order.id, stage="transition", error=fault,
                            action=f"observer failed; the transition to {target.value} stands", at=now)
        return target

    def _withdraw(self, s: Session, t: Transition) -> None:
        """The order's document is withdrawn from its warehouse: a merged parcel goes on without it, an
        order of its own is cancelled there if the warehouse has it."""
        order = t.order
        if getattr(order, "merge_group_id", None):
            self._leave_parcel(s, order, t)
        elif t.before in AT_WAREHOUSE and order.warehouse:
            self._to_connector(s, order, self.wms_for(s, order.warehouse), Topic.WMS_CANCEL, {
                "order_number": order.number, "orders": [order.number], "warehouse": order.warehouse,
                "reason": t.cause})

    def _leave_parcel(self, s: Session, order: Order, t: Transition) -> None:
        self.leave_parcel(s, order, t.cause, held_by_warehouse=t.before in AT_WAREHOUSE or t.before is S.PICKING,
                          queued=t.before is S.ROUTED)

    def leave_parcel(self, s: Session, order: Order, reason: str, *, held_by_warehouse: bool = False,
                     queued: bool = True) -> None:
        """The order leaves its merged parcel: the warehouse gets the parcel's cancel and a new document for the
        rest (fulfilment/parcels.py)."""
        resend = parcels.leave(s, order, held_by_warehouse=held_by_warehouse, queued=queued, reason=reason)
        if resend is None or not order.warehouse:
            return
        wms = self.wms_for(s, order.warehouse)
        if resend.cancel is not None:
            self.outbox.enqueue(s, order, Kind.CONNECTOR, wms, Topic.WMS_CANCEL, resend.cancel,
                                number=resend.cancel["order_number"])
        if resend.document is not None and resend.lead is not None:
            self.outbox.enqueue(s, resend.lead, Kind.CONNECTOR, wms, Topic.WMS_CREATE, resend.document,
                                number=resend.number)

    def _to_connector(self, s: Session, order: Order, connector: str, topic: Topic, payload: dict[str, Any]) -> None:
        self.outbox.enqueue(s, order, Kind.CONNECTOR, connector, topic, payload)


# -- effects of the edges: what each does, then on which edges (EFFECTS) ------------
def _withdraw(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    m._withdraw(s, t)


def _release_stock(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    release_order(s, t.order.id, f"order:{t.order.number}", t.at)


def _refund(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    # The money goes back with an order that is cancelled, or whose refused parcel is back: what was paid for
    # it (a child of a split: its share of its parent's payments), owed back to the payments it came from. A
    # refused parcel's freight may stay with the shop, as the refund rules say (keep_freight).
    order = t.order
    amount = ledger.paid_total(order)
    if not amount:
        return
    reason = f"{t.event.value}: {t.cause}" if t.cause else t.event.value
    plan = None
    rules = m.refunds.rules if m.refunds is not None else None
    if t.event is E.RETURNED and rules is not None:
        plan = rules.decide(s, order, cause=t.event.value, amount=amount, whole=True,
                            paid_with=sorted(ledger.open_payments(s, order)))
        if plan.keep_freight:
            kept = min(freight_paid(order), amount)
            amount -= kept
            reason += f"; freight {kept} kept: {plan.keep_freight}"
    if amount:
        order.refund_amount = amount
        ledger.refund_order(s, order, amount, reason, t.at, actor=t.actor, cause=t.event.value, refunds=m.refunds,
                            plan=plan)


def _collect(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    # Cash on delivery: the parcel is delivered, so the carrier collected what was owed; recorded as the order's
    # payment (which invoices it), by the carrier's parcel.
    order = t.order
    owed = order.payable - order.paid_amount
    if is_cod(order) and order.parent_id is None and owed > 0:
        ledger.record_payment(s, order, owed, f"cod:{order.carrier or 'carrier'}:{order.tracking_no or order.number}",
                              "cod", t.at, actor=t.actor, keep=True, refunds=m.refunds)


def _replacement_moved(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    # A replacement an after-sales exchange sent, delivered or cancelled: its case moves on.
    if t.order.payment_method == REPLACEMENT and m.on_replacement is not None:
        m.on_replacement(s, t.order, t)


def _ship(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    order = t.order
    ship_order(s, order.id, f"order:{order.number}", t.at)
    register = parcels.parcel_to_register(s, order, parcel)
    if register is not None:
        m.outbox.enqueue(s, order, Kind.CONNECTOR, m.carrier_for(s, order.carrier), Topic.CARRIER_REGISTER,
                         register, number=register["order_number"])


def _ask_to_intercept(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    order = t.order
    if not order.warehouse:
        return
    group = parcels.group_of(s, order)
    m._to_connector(s, order, m.wms_for(s, order.warehouse), Topic.WMS_INTERCEPT, {
        "order_number": order.number, "document": group.number if group is not None else order.number,
        "warehouse": order.warehouse, "reason": t.cause,
        "lines": [{"order_line": n, "sku": sku, "quantity": q} for n, sku, q in requirements(order.lines)]})


def _take_back(m: OrderMachine, s: Session, t: Transition[State, Event]) -> None:
    order = t.order
    if not order.warehouse:
        return
    # A kit comes back as its components, into the lots it left.
    for _, sku, q in requirements(order.lines):
        for lot, n in lots.back_into(s, order.id, order.warehouse, sku, q):
            post(s, Movement.CUSTOMER_RETURN, order.warehouse, sku, n, document=f"order:{order.number}", at=t.at,
                 order_id=order.id, lot=lot)


# In the order they run on an edge.
EFFECTS: tuple[Effect, ...] = (
    # Cancelled: the warehouse lets go of its document, the stock is given back, and so is the money (a
    # parent whose children were all cancelled has nothing left to refund).
    effect(_withdraw, to=[S.CANCELLED]),
    effect(_release_stock, to=[S.CANCELLED]),
    effect(_refund, to=[S.CANCELLED], unless=[E.CHILDREN_CANCELLED]),
    effect(_ship, on=[E.SHIP]),
    # Moved, or short at its warehouse: the first one lets go of it (unless it stopped it already, on an
    # interception); short, its units there are given back too.
    effect(_withdraw, on=[E.MOVE, E.SHORTAGE]),
    effect(_release_stock, on=[E.SHORTAGE, E.BIN]),
    effect(_ask_to_intercept, on=[E.INTERCEPT]),
    # A refused parcel is back: the goods go back on the shelf, the money to the customer.
    effect(_take_back, on=[E.RETURNED]),
    effect(_refund, on=[E.RETURNED]),
    effect(_replacement_moved, to=[S.DELIVERED, S.CANCELLED]),
    effect(_collect, to=[S.DELIVERED]),
)

ORDER: Table[State, Event] = Table("order", State, Event, TRANSITIONS, GUARDS, EFFECTS)

"""What a person (or a payment system) does to an order: pay, release, reject, bin, restore, cancel, intercept,
move.

Each is one transaction. A refused request raises before anything is
written (:class:`~oms_engine.orders.machine.IllegalTransition`, or
:class:`~oms_engine.errors.CommandError`), so the database is unchanged.
A transaction that loses a race with another one (a deadlock with a worker
moving the same stock) is run again from the start (storage/retry.py): the
person asking never sees it. Each locks the order first, then the stock
rows it moves, in the global order (see stock/ledger.py).
"""

from __future__ import annotations

from ..clock import Clock
from ..errors import CommandError
from ..payments import ledger
from ..payments.status import cleared, is_paid
from ..plugin.registry import PluginRegistry
from ..stock.reservations import lock_held
from ..stock.warehouses import WarehouseCache
from ..storage.claims import lock_orders
from ..storage.db import Database
from ..storage.models import Order
from ..storage.retry import retrying
from .backorders import recheck_intake
from .flow import FIRST, HoldStage, resume
from .machine import Event, IllegalTransition, OrderMachine, State, check, stop_event
from .moves import Mover
from .queries import get_order


class Commands:
    def __init__(self, *, db: Database, clock: Clock, machine: OrderMachine, plugins: PluginRegistry,
                 warehouses: WarehouseCache, mover: Mover | None = None) -> None:
        self.db, self.clock, self.machine, self.plugins, self.warehouses = db, clock, machine, plugins, warehouses
        self.mover = mover

    @retrying
    def move(self, number: str, warehouse: str, *, actor: str, reason: str = "") -> str:
        """Send a routed order to another warehouse (orders/moves.py); the outcome as a sentence."""
        if self.mover is None:
            raise CommandError("moving orders is not set up")
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            lock_held(s, [order])
            return self.mover.move(s, order, warehouse, actor=actor, reason=reason)

    @retrying
    def pay(self, number: str, amount: int, transaction_id: str, *, method: str = "", actor: str = "payment"
            ) -> str:
        """Record a payment of the order (payments/ledger.py); once it is paid in full it goes on. Money it may
        not keep (paid after it was cancelled or expired, paid twice, paid over) is recorded and owed back."""
        if amount <= 0:
            raise CommandError(f"a payment is more than 0, got {amount}")
        if not transaction_id:
            raise CommandError("a payment needs its transaction serial number")
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            if order.parent_id is not None:
                parent = s.get(Order, order.parent_id)
                raise CommandError(f"order {number} is part of {parent.number if parent else 'another order'}: "
                                   f"payments go to that order")
            # A binned order keeps its money until its bin period ends: it may be restored.
            keep = State(order.status) in (State.PENDING_PAYMENT, State.ON_HOLD, State.BINNED)
            done = ledger.record_payment(s, order, amount, transaction_id, method, self.clock.now(), actor=actor,
                                         keep=keep, refunds=self.machine.refunds)
            if not done.new:
                return order.status  # the same payment notice twice changes nothing
            if keep and is_paid(order) and order.status != State.BINNED.value:
                self.machine.fire(s, order, Event.PAY, actor=actor, cause=f"transaction {transaction_id}")
            return order.status

    @retrying
    def retry_refund(self, serial: str, *, actor: str) -> str:
        """Send a refund the payment provider refused once more (payments/refunds.py); its status."""
        if self.machine.refunds is None:
            raise CommandError("this OMS keeps no refunds")
        with self.db.session() as s:
            return self.machine.refunds.retry(s, serial, self.clock.now(), actor)

    @retrying
    def release(self, number: str, *, actor: str, note: str = "") -> str:
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            if order.status != State.ON_HOLD.value:
                raise IllegalTransition(number, order.status, Event.RELEASE.value)
            event = Event.RELEASE if cleared(order) or order.parent_id else Event.RELEASE_UNPAID
            check(order, event)
            if order.hold_stage in (HoldStage.INTAKE.value, HoldStage.RESTORED.value):
                # Held at intake (or restored from the bin, its stock given up): released only once what held
                # it is fixed (SKUs mapped, stock reserved).
                problems = recheck_intake(s, order, self.plugins, self.warehouses.get(s), self.clock.now())
                if problems:
                    reasons = "; ".join(dict.fromkeys(text for _, _, text in problems))
                    raise CommandError(f"order {number} cannot be released yet: {reasons}")
            order.stage = resume(order.hold_stage).value
            if event is Event.RELEASE_UNPAID:
                order.stage = FIRST.value  # screened once it is paid
            self.machine.fire(s, order, event, actor=actor, cause=note or f"released (was: {order.hold_reason})")
            return order.status

    @retrying
    def reject(self, number: str, *, actor: str, note: str = "") -> str:
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            self.machine.fire(s, order, Event.REJECT, actor=actor, cause=note or "rejected in review")
            return order.status

    @retrying
    def bin(self, number: str, *, actor: str, note: str = "") -> str:
        """Put an order in the recycle bin (unpaid, paid and not yet routed, or on hold): its stock is freed at
        once; restored within ``timeouts.recycle_bin_hours`` it goes back to the review queue, otherwise it is
        cancelled then (refunded, its channel told)."""
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            check(order, Event.BIN)
            lock_held(s, [order])
            why = note or "put in the recycle bin"
            order.hold_reason, order.hold_stage, order.stage = why[:2000], None, None
            self.machine.fire(s, order, Event.BIN, actor=actor, cause=why)
            return order.status

    @retrying
    def restore(self, number: str, *, actor: str, note: str = "") -> str:
        """Take an order out of the recycle bin, back to the review queue: its stock is reserved again as far as
        it goes (what is short is said in its hold reason, and reserved on release)."""
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            check(order, Event.RESTORE)
            binned = order.hold_reason or "no reason given"
            order.hold_reason, order.hold_stage = f"restored from the recycle bin (binned: {binned})"[:2000], \
                HoldStage.RESTORED.value
            self.machine.fire(s, order, Event.RESTORE, actor=actor, cause=note or "restored from the recycle bin")
            problems = recheck_intake(s, order, self.plugins, self.warehouses.get(s), self.clock.now())
            if problems:
                short = "; ".join(dict.fromkeys(text for _, _, text in problems))
                order.hold_reason = f"{order.hold_reason}; {short}"[:2000]
            return order.status

    @retrying
    def cancel(self, number: str, *, actor: str, reason: str = "") -> str:
        """Cancel before picking; once picking has started, ask the warehouse to intercept.

        A split parent is cancelled through its children: each child that can
        still be stopped is, and the parent follows them.
        """
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            if order.status == State.SPLIT.value:
                # Each child may release stock: all of them, then all of their stock rows, locked first.
                lock_orders(s, [child.id for child in order.children])
                for child in order.children:
                    s.expire(child)  # read again as they are now that they are locked
                lock_held(s, order.children)
                for child in order.children:
                    event = stop_event(child.status)
                    try:
                        check(child, event)
                    except IllegalTransition:
                        continue  # shipped or finished: after-sales, not a cancel
                    self.machine.fire(s, child, event, actor=actor, cause=reason or f"parent {number} cancelled")
                return order.status
            event = stop_event(order.status)
            default = "cancel requested after picking" if event is Event.INTERCEPT else "cancelled"
            self.machine.fire(s, order, event, actor=actor, cause=reason or default)
            return order.status

    @retrying
    def intercept(self, number: str, *, actor: str, reason: str = "") -> str:
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            self.machine.fire(s, order, Event.INTERCEPT, actor=actor, cause=reason or "interception requested")
            return order.status

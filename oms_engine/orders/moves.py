"""Moving an order to another warehouse: by a person (``oms order move``, the API), or because the warehouse
it was sent to reports a shortage.

Algorithm.

* A person moves a routed order (``routed`` to ``packed``) to an active
  warehouse equipped for its lines:

  - not yet picked (routed, dispatched, accepted): the order's units are
    reserved at the new warehouse and given back at the first, or nothing
    changes and the move is refused with the reason (:func:`take`); then
    the first warehouse's document is withdrawn (a cancel, if it has it), a
    merged parcel goes on without the order, and the order goes through
    merging, courier choice and its document again, at the new warehouse;
  - being picked or packed: the first warehouse is asked to stop it, through
    the interception request; its answer decides: stopped, the order moves
    as above (and, if the new warehouse cannot take it any more, it is held
    for routing, waiting for stock); not stopped in time, it ships from the
    first warehouse and the move is recorded as failed.

* A warehouse reports a shortage (status map event ``shortage``, with the
  lines it is short of): the order's units there are given back, the
  missing ones written off there (an adjustment, so available stock tells
  the truth), and the order is routed again by the routing rules, which may
  send it to another warehouse or hold it for stock.

Every move is a decision of its own (point ``move``): from where, to where,
why, by whom and how it ended, shown by ``oms order show``. Where the order
finally shipped from is its ``warehouse`` when it ships.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..errors import CommandError
from ..stock import lots
from ..stock.reservations import Held, move_to_warehouse, reservations_of
from ..storage.db import savepoint
from . import flow
from .backorders import stock_waits
from .kits import LOT_TRACKED, needs
from .machine import AT_WAREHOUSE, INTERCEPTABLE, Event, OrderMachine, State
from .waits import record_waits

POINT = "move"
MOVABLE = frozenset({State.ROUTED, *AT_WAREHOUSE, *INTERCEPTABLE})


class MoveRefused(CommandError):
    """The order cannot be moved there now; nothing changed."""


class _NoLots(Exception):
    pass


def take(s: Session, order: Any, warehouse: str, need: Mapping[tuple[int, str], int], held: Sequence[Held],
         now: datetime, shelf_life: Mapping[str, int]) -> bool | str:
    """Move the order's reservation to ``warehouse``: True, False (not enough stock), or why not. An order
    with lot-tracked goods takes its lots there too, or nothing moves (stock/lots.py)."""
    document = f"order:{order.number}"
    if not any(ln.attributes and ln.attributes.get(LOT_TRACKED) for ln in order.lines):
        return move_to_warehouse(s, order.id, document, warehouse, need, held, now)
    days = lots.min_shelf_days(shelf_life, order.channel)
    try:
        with savepoint(s):
            if not move_to_warehouse(s, order.id, document, warehouse, need, held, now):
                return False
            why = lots.allocate(s, order.id, warehouse, lots.earliest_expiry(now, days))
            if why is not None:
                raise _NoLots(f"{why} ({days} days of shelf life for {order.channel})")
    except _NoLots as exc:
        return str(exc)
    return True


class Mover:
    """Moves orders between warehouses (see the module docstring)."""

    def __init__(self, *, machine: OrderMachine, decisions: Any, active: Any, shelf_life: Mapping[str, int]) -> None:
        """``active(s) -> warehouse views``: the active warehouses; ``decisions``: the decision recorder."""
        self.machine, self.decisions, self.active = machine, decisions, active
        self.shelf_life = dict(shelf_life)

    def _record(self, s: Session, order: Any, outcome: dict[str, Any]) -> None:
        self.decisions.record(s, order, POINT, None, outcome, version="(a person's or a warehouse's word)")

    def move(self, s: Session, order: Any, target: str, *, actor: str, reason: str) -> str:
        """Move ``order`` (locked) to ``target``; the outcome as a sentence. MoveRefused changes nothing."""
        state = State(order.status)
        if state not in MOVABLE:
            raise MoveRefused(f"order {order.number} is {order.status}: only an order routed and not shipped yet "
                              f"moves ({', '.join(sorted(s.value for s in MOVABLE))})")
        if order.move_to:
            raise MoveRefused(f"order {order.number} is already being moved to {order.move_to}")
        if target == order.warehouse:
            raise MoveRefused(f"order {order.number} is at {target} already")
        views = {w.code: w for w in self.active(s)}
        wh = views.get(target)
        if wh is None:
            raise MoveRefused(f"no active warehouse '{target}'")
        needed = {flag for ln in order.lines for flag in ("cold_chain", "oversize") if (ln.attributes or {}).get(flag)}
        if not needed <= wh.capabilities:
            raise MoveRefused(f"{target} is not equipped for {', '.join(sorted(needed - wh.capabilities))} goods")
        why = f"moved by {actor}" + (f": {reason}" if reason else "")
        if state in INTERCEPTABLE:
            # Picking started: the first warehouse must stop it first; its answer completes the move.
            order.move_to = target
            self.machine.fire(s, order, Event.INTERCEPT, actor=actor, cause=f"to move it to {target}: {why}")
            self._record(s, order, {"from": order.warehouse, "to": target, "by": actor, "reason": reason,
                                    "result": "asked", "why": f"{order.warehouse} is asked to stop picking it; it "
                                                               f"moves to {target} once stopped"})
            return f"{order.number}: {order.warehouse} asked to stop picking it; it moves to {target} once stopped"
        held = reservations_of(s, [order.id]).get(order.id, [])
        taken = take(s, order, target, needs(order.lines), held, self.machine.clock.now(), self.shelf_life)
        if taken is not True:
            raise MoveRefused(f"{target} cannot take order {order.number}: "
                              f"{taken if isinstance(taken, str) else 'not enough stock for all of it'}")
        source = order.warehouse
        self._arrive(s, order, target, actor=actor, cause=f"from {source} to {target}: {why}", state=state)
        self._record(s, order, {"from": source, "to": target, "by": actor, "reason": reason, "result": "moved",
                                "why": f"moved from {source} to {target} by {actor}"
                                       + (f": {reason}" if reason else "")})
        return f"{order.number}: moved from {source} to {target}"

    def _arrive(self, s: Session, order: Any, target: str, *, actor: str, cause: str, state: State) -> None:
        """The order leaves its warehouse for ``target`` (its units already there): routed there again."""
        if state is State.ROUTED:
            if getattr(order, "merge_group_id", None):
                self.machine.leave_parcel(s, order, cause)
        else:
            self.machine.fire(s, order, Event.MOVE, actor=actor, cause=cause)
        order.warehouse, order.carrier, order.service, order.move_to = target, None, None, None
        # As if just routed there: it may merge there, and its courier is chosen for it.
        order.stage = flow.after(flow.Step.ROUTE).value   # type: ignore[union-attr]

    # -- the first warehouse's answer --------------------------------------------------------------
    def stopped(self, s: Session, order: Any, *, actor: str, cause: str) -> str:
        """The first warehouse stopped picking an order being moved: it moves now, or waits for stock."""
        target, source = order.move_to, order.warehouse
        held = reservations_of(s, [order.id]).get(order.id, [])
        taken = take(s, order, target, needs(order.lines), held, self.machine.clock.now(), self.shelf_life)
        if taken is True:
            self._arrive(s, order, target, actor=actor, cause=f"stopped at {source} ({cause}); moved to {target}",
                         state=State.INTERCEPT_REQUESTED)
            self._record(s, order, {"from": source, "to": target, "result": "moved",
                                    "why": f"{source} stopped it; moved to {target}"})
            return f"{order.number} stopped at {source} -> routed at {target}"
        # The new warehouse cannot take it any more: held for routing, waiting for stock.
        self.machine.fire(s, order, Event.MOVE, actor=actor, cause=f"stopped at {source} ({cause})")
        order.move_to = None
        reason = f"moving to {target} failed: " + (taken if isinstance(taken, str) else
                                                    "not enough stock there any more")
        order.hold_stage, order.hold_reason, order.stage = flow.HoldStage.ROUTING.value, reason, None
        self.machine.fire(s, order, Event.HOLD, actor="oms", cause=reason)
        # Stock coming in may let a warehouse take it whole: released by itself then (backorders).
        record_waits(s, order.id, stock_waits(order), self.machine.clock.now())
        self._record(s, order, {"from": source, "to": target, "result": "held",
                                "why": f"{source} stopped it, but {target} cannot take it any more: held for routing"})
        return f"{order.number} stopped at {source}; {target} cannot take it: held"

    def not_stopped(self, s: Session, order: Any, why: str) -> None:
        """The first warehouse could not stop it: it ships from there; the move failed."""
        target, order.move_to = order.move_to, None
        self._record(s, order, {"from": order.warehouse, "to": target, "result": "failed",
                                "why": f"{order.warehouse} could not stop it ({why}): it ships from there"})

    def shortage(self, s: Session, order: Any, lines: Sequence[Mapping[str, Any]], *, actor: str, note: str
                 ) -> list[str]:
        """A warehouse cannot fill ``order`` (already given back by the ``shortage`` event): what it is short of
        is written off there, and the order is routed again. Returns what was written off."""
        from ..stock.batch import StockError
        from ..stock.ledger import post
        from ..stock.movements import Movement
        source = order.warehouse
        written: list[str] = []
        for item in lines:
            sku, qty = item.get("sku"), item.get("quantity")
            if not isinstance(sku, str) or not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                continue
            try:
                with savepoint(s):
                    post(s, Movement.ADJUSTMENT, source, sku, -qty, document=f"shortage:{order.number}",
                         at=self.machine.clock.now(), actor=actor, note=f"reported short picking {order.number}")
                written.append(f"{qty} {sku}")
            except StockError as exc:    # a lot-tracked product, or fewer left than reported: counted later
                written.append(f"{qty} {sku} not written off ({exc})")
        order.stage = flow.Step.ROUTE.value
        order.carrier = order.service = None
        order.avoid_warehouse = source
        self._record(s, order, {"from": source, "to": None, "by": actor, "result": "routed again",
                                "short": list(lines),
                                "why": f"{source} is short ({note or ', '.join(written) or 'no lines given'}): "
                                       "routed again"})
        return written

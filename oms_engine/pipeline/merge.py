"""Merging: routed orders of one customer to one address join a group that ships as one parcel
(orders/merging.py has the algorithm; this stage reads and writes what it needs).

Each pass it first closes the open groups that are done waiting (their wait
is over, or nothing of their customer to their address is on its way any
more), then takes the orders newly at the merge step. An order waiting in an
open group has no step (``stage`` is NULL): it is not claimed again; the
group's closing moves its orders on together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..orders import flow
from ..orders.machine import OrderMachine, State
from ..orders.merging import Apart, Group, GroupStatus, address_key, family, group_number, separation, terms_of
from ..orders.records import OrderRec, load_records
from ..orders.shipments import order_skus, shipment, shipment_facts, volumes
from ..plugin.faults import PluginFault
from ..rules import FactError, RuleEngineError
from ..storage.claims import lock_orders
from ..storage.db import drain
from ..storage.models import MergeGroup, Order, OrderLine
from .holding import hold_on_fault
from .stage import Follower, RulesInForce, StageName, Unit, UnitKind, carry_on, claim_step, rules_as_loaded

_FAULTS = (PluginFault, FactError, RuleEngineError)
Key = tuple[int, str]   # (customer id, address key)


class MergeStage:
    name = StageName.MERGE
    step = flow.Step.MERGE
    point = DecisionPoint.MERGING.value

    def __init__(self, *, batch_size: int, clock: Clock, facts: FactBuilder, rulebook: Rulebook,
                 decisions: DecisionRecorder, machine: OrderMachine, rules_in_force: RulesInForce = rules_as_loaded
                 ) -> None:
        self.batch_size, self.clock, self.facts, self.rulebook = batch_size, clock, facts, rulebook
        self.decisions, self.machine, self.rules_in_force = decisions, machine, rules_in_force
        self.current: Unit | None = None
        # Courier matching, working the orders this stage moves on in its transaction (stage.carry_on).
        self.then: Follower | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        done = self._close_waiting(s)
        ids = claim_step(s, self.step, self.batch_size)
        if ids:
            done += self._merge(s, ids, cache)
        return done

    # -- what the batch reads ---------------------------------------------------------
    def _open_groups(self, s: Session, where: Any) -> list[MergeGroup]:
        stmt = select(MergeGroup).where(MergeGroup.status == GroupStatus.OPEN.value, where).order_by(MergeGroup.id)
        if s.get_bind().dialect.name == "postgresql":
            # Another worker closing or filling a group: leave it to them this pass.
            stmt = stmt.with_for_update(skip_locked=True)
        return list(s.scalars(stmt.limit(self.batch_size)))

    @staticmethod
    def _on_their_way(s: Session, customers: Sequence[int], besides: Sequence[int] = ()) -> dict[Key, set[int]]:
        """(customer, address) -> the families (orders/merging.py ``family``) of paid orders not yet past
        routing: they may still join a group."""
        out: dict[Key, set[int]] = defaultdict(set)
        wanted = sorted(set(customers))
        skip = set(besides)
        for i in range(0, len(wanted), 500):
            for oid, parent, cid, ship_to in s.execute(
                    select(Order.id, Order.parent_id, Order.customer_id, Order.ship_to)
                    .where(Order.customer_id.in_(wanted[i:i + 500]), Order.status == State.PAID.value)):
                if oid not in skip:
                    out[(cid, address_key(ship_to or {}))].add(parent if parent is not None else oid)
        return out

    @staticmethod
    def _groups(s: Session, rows: Sequence[MergeGroup]) -> dict[int, Group]:
        """The open groups as the stage weighs them: key, terms, and their waiting orders' totals."""
        out = {g.id: Group(g.id, g.number, g.customer_id, g.address_key, g.warehouse, g.opened_at, g.closes_at,
                           dict(g.limits or {}), dict((g.limits or {}).get("separation") or {})) for g in rows}
        if not out:
            return out
        members = s.execute(select(Order.id, Order.merge_group_id, Order.number, Order.payable, Order.parent_id)
                            .where(Order.merge_group_id.in_(list(out)), Order.status == State.ROUTED.value)
                            .order_by(Order.id)).all()
        weights = dict(s.execute(select(OrderLine.order_id, func.sum(OrderLine.weight_g * OrderLine.quantity))
                                 .where(OrderLine.order_id.in_([m[0] for m in members]))
                                 .group_by(OrderLine.order_id)).all()) if members else {}
        for oid, gid, number, payable, parent in members:
            g = out[gid]
            g.orders.append(number)
            g.families.add(parent if parent is not None else oid)
            g.value += payable
            g.weight_g += int(weights.get(oid) or 0)
        return out

    # -- new orders at the step -------------------------------------------------------
    def _merge(self, s: Session, ids: Sequence[int], cache: FactCache) -> int:
        now = self.clock.now()
        # Who could ship with whom is known from a few columns; most orders have no partner and go on at once,
        # without being read whole.
        light = sorted(s.execute(select(Order.id, Order.parent_id, Order.customer_id, Order.ship_to)
                                 .where(Order.id.in_(list(ids)))).all())
        keys = {o.id: (o.customer_id, address_key(o.ship_to or {})) for o in light}
        customers = sorted({k[0] for k in keys.values()})
        rows = {g.id: g for g in self._open_groups(s, MergeGroup.customer_id.in_(customers))}
        groups = self._groups(s, list(rows.values()))
        on_their_way = self._on_their_way(s, customers, list(ids))
        batch: dict[Key, list[int]] = defaultdict(list)    # the families of the batch's orders, in order
        for o in light:
            batch[keys[o.id]].append(family(o))

        def partners(o: Any) -> bool:
            """Could anything ship with ``o``: an order of another family in a group, on its way, or in the
            batch?"""
            key, own = keys[o.id], family(o)
            return (any(f != own for f in batch[key]) or bool(on_their_way.get(key, set()) - {own})
                    or any((g.customer_id, g.address) == key and g.families - {own} for g in groups.values()))

        lonely = [o.id for o in light if not partners(o)]
        if lonely:
            # No partner anywhere: on at once, nothing to decide.
            nxt = flow.next_step(self.step)
            for i in range(0, len(lonely), 500):
                s.execute(update(Order).where(Order.id.in_(lonely[i:i + 500])).values(stage=nxt),
                          execution_options={"synchronize_session": False})
        alone = set(lonely)
        rest = load_records(s, [o.id for o in light if o.id not in alone])
        if rest:
            self._decide(s, rest, keys, customers, rows, groups, on_their_way, batch, cache, now)
        carry_on(self, self.then, s, cache, ids=lonely, records=rest)
        return len(light)

    def _decide(self, s: Session, rest: list[OrderRec], keys: dict[int, Key],
                customers: list[int], rows: dict[int, MergeGroup], groups: dict[int, Group],
                on_their_way: dict[Key, set[int]], batch: dict[Key, list[int]], cache: FactCache, now: Any
                ) -> None:
        """Merge or not, each order that could ship with another."""
        self.rules_in_force(s)
        facts = self.facts.facts(s, rest, cache, point=self.point)
        vols = volumes(s, {sku for o in rest for sku in order_skus(o)})
        touched: set[int] = set()
        for order in rest:
            self.current = Unit(UnitKind.ORDER, order.id)
            batch[keys[order.id]].remove(family(order))   # what is left in it is still to be decided
            try:
                fault = cache.faults.get(order.id)
                if fault is not None:
                    raise fault
                sh = shipment(order.number, [order], None, vols, now)
                decision = self.rulebook.decide(self.point, {**facts[order.id], "shipment": shipment_facts(sh, now)})
            except _FAULTS as exc:
                hold_on_fault(s, self.machine, order, self.step, exc, cache)
                continue
            terms = terms_of(decision)
            if terms is None or isinstance(terms, Apart):
                why = terms.reason if isinstance(terms, Apart) else "no merging rule applies"
                self.decisions.record(s, order, self.point, decision, {"merged": False, "why": why})
                flow.advance(order, self.step)
                continue
            key = keys[order.id]
            sep = separation(order.lines, terms.separate)
            weight = sum(ln.weight_g * ln.quantity for ln in order.lines)
            refused: list[str] = []
            chosen = None
            for g in groups.values():
                if (g.customer_id, g.address, g.warehouse) != (*key, order.warehouse):
                    continue
                why_not = g.why_not(value=order.payable, weight_g=weight, sep=sep, now=now, family=family(order),
                                     currency=order.currency)
                if why_not is None:
                    chosen = g
                    break
                refused.append(why_not)
            if chosen is None and (on_their_way.get(key, set()) - {family(order)}
                                   or any(f != family(order) for f in batch[key])):
                row = MergeGroup(number=group_number(order.number, 1), warehouse=order.warehouse or "",
                                 customer_id=order.customer_id, address_key=key[1], status=GroupStatus.OPEN.value,
                                 version=1, opened_at=now, closes_at=now, registered=False,
                                 limits={**terms.limits(), "separation": sep, "currency": order.currency})
                s.add(row)
                s.flush()
                rows[row.id] = row
                chosen = groups[row.id] = Group(row.id, row.number, row.customer_id, row.address_key, row.warehouse,
                                                now, now, dict(row.limits), sep)
            if chosen is None:
                why = "; ".join(refused) or "no other order of the customer to this address to ship with"
                self.decisions.record(s, order, self.point, decision, {"merged": False, "why": why})
                flow.advance(order, self.step)
                continue
            others = list(chosen.orders)
            chosen.take(order.number, value=order.payable, weight_g=weight, wait=terms.wait, now=now,
                        family=family(order))
            rows[chosen.id].closes_at = chosen.closes_at
            order.merge_group_id, order.stage = chosen.id, None    # waits in the group for its closing
            touched.add(chosen.id)
            self.decisions.record(s, order, self.point, decision, {
                "merged": True, "group": chosen.number, "with": others, "rule": terms.rule,
                "why": (f"joins {chosen.number} with {', '.join(others)}" if others else
                        f"opens {chosen.number}: another order of the customer to this address is on its way")
                       + f"; it waits until {chosen.closes_at:%Y-%m-%d %H:%M} at most"})
        self.current = None
        # Groups whose every partner arrived in this batch need not wait for the next pass.
        if touched:
            self._close(s, [rows[i] for i in sorted(touched)], self._on_their_way(s, customers), now)

    # -- closing -----------------------------------------------------------------------
    def _close_waiting(self, s: Session) -> int:
        now = self.clock.now()
        rows = self._open_groups(s, MergeGroup.id.isnot(None))
        if not rows:
            return 0
        return self._close(s, rows, self._on_their_way(s, [g.customer_id for g in rows]), now)

    @staticmethod
    def _expects(s: Session, g: MergeGroup, on_their_way: dict[Key, set[int]]) -> bool:
        """Is an order of another family than the group's on its way to it?"""
        coming = on_their_way.get((g.customer_id, g.address_key), set())
        if not coming:
            return False
        mine = {parent if parent is not None else oid for oid, parent in s.execute(
            select(Order.id, Order.parent_id).where(Order.merge_group_id == g.id))}
        return bool(coming - mine)

    def _close(self, s: Session, rows: Sequence[MergeGroup], on_their_way: dict[Key, set[int]], now: Any) -> int:
        """Close the groups that are done waiting; their orders go on (together, or one alone)."""
        drain(s)   # the orders that joined in this batch are read back by their group
        due = [g for g in rows if g.closes_at <= now or not self._expects(s, g, on_their_way)]
        if not due:
            return 0
        members: dict[int, list[int]] = defaultdict(list)
        for oid, gid in s.execute(select(Order.id, Order.merge_group_id).where(
                Order.merge_group_id.in_([g.id for g in due]), Order.status == State.ROUTED.value,
                Order.stage.is_(None))):
            members[gid].append(oid)
        lock_orders(s, [i for ids in members.values() for i in ids])
        records = {o.id: o for o in load_records(s, [i for ids in members.values() for i in ids])}
        moved = 0
        for g in due:
            orders = [records[i] for i in sorted(members.get(g.id, [])) if i in records
                      and records[i].status == State.ROUTED.value and records[i].merge_group_id == g.id]
            numbers = [o.number for o in orders]
            for o in orders:
                self.current = Unit(UnitKind.ORDER, o.id)
                flow.advance(o, self.step)
                if len(orders) > 1:
                    self._follows(s, o, self.point, {
                        "merged": True, "group": g.number, "orders": numbers,
                        "why": f"ships as one parcel {g.number} with "
                               f"{', '.join(n for n in numbers if n != o.number)}"})
                else:
                    o.merge_group_id = None
                    self._follows(s, o, self.point, {
                        "merged": False, "group": g.number,
                        "why": f"no other order joined {g.number} within its wait: ships alone"})
                moved += 1
            g.status = (GroupStatus.CLOSED if len(orders) > 1 else GroupStatus.DISSOLVED).value
        self.current = None
        return moved

    def _follows(self, s: Session, order: OrderRec, point: str, outcome: dict[str, Any]) -> None:
        """Record what follows from an earlier decision of ``point`` (no rules asked now)."""
        self.decisions.record(s, order, point, None, outcome, version=self.rulebook.version(point))

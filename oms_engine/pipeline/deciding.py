"""What every decision stage shares: the orders waiting for its step, the rules in force, their facts, the
decision, and the review queue for an order a plugin failed on.

A decision stage (screen, split, route) works one step of the flow
(orders/flow.py) for a batch of orders, in the pass's transaction:

1. claim up to ``batch_size`` orders in the step's state and at the step,
   oldest first (on PostgreSQL locked, skipping those another worker holds);
2. make the latest committed rules the rules in force (decisions/versions.py);
3. read the orders as records and build their facts for the stage's ruleset;
4. :meth:`DecisionStage.prepare` reads what the whole batch needs at once
   (stock, reservations);
5. for each order: a fact provider's fault, or the rules' decision, handed to
   :meth:`DecisionStage.decide`, which applies it through the stage's pure
   coordinator (orders/splitting.py, orders/routing.py) and moves the order
   on (:func:`~oms_engine.orders.flow.advance`) or holds it;
6. :meth:`DecisionStage.finish` writes what is written for the batch at once.

An order on which a plugin, a fact or the rules engine failed (any of
``faults``) waits in the review queue with the error as its reason; releasing
it runs the step again. ``decide`` therefore calls plugins before it writes
anything for the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..orders import flow
from ..orders.machine import OrderMachine
from ..orders.records import OrderRec, load_records
from ..plugin.faults import PluginFault
from ..rules import Decision, FactError, RuleEngineError
from .holding import hold_on_fault
from .stage import Follower, RulesInForce, StageName, Unit, UnitKind, carry_on, claim_step, rules_as_loaded


class DecisionStage:
    name: ClassVar[StageName]
    step: ClassVar[flow.Step]
    point: ClassVar[str]                    # the decision point whose ruleset decides
    faults: ClassVar[tuple[type[BaseException], ...]] = (PluginFault, FactError, RuleEngineError)

    def __init__(self, *, batch_size: int, facts: FactBuilder, rulebook: Rulebook, decisions: DecisionRecorder,
                 machine: OrderMachine, rules_in_force: RulesInForce = rules_as_loaded) -> None:
        self.batch_size, self.facts, self.rulebook = batch_size, facts, rulebook
        self.decisions, self.machine, self.rules_in_force = decisions, machine, rules_in_force
        self.current: Unit | None = None
        # The stage of the next step, when it works in this stage's transaction (stage.carry_on).
        self.then: Follower | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        ids = claim_step(s, self.step, self.batch_size)
        return self.take(s, ids, cache) if ids else 0

    def take(self, s: Session, ids: Sequence[int], cache: FactCache, records: Sequence[OrderRec] = ()) -> int:
        """Decide the step for these orders, claimed in this transaction: ``ids`` still to be read, ``records``
        read already (by the stage before, see stage.carry_on)."""
        self.rules_in_force(s)
        orders = sorted([*records, *load_records(s, ids)], key=lambda o: o.id)
        facts = self.facts.facts(s, orders, cache)
        batch = self.prepare(s, orders)
        for order in orders:
            self.current = Unit(UnitKind.ORDER, order.id)
            try:
                fault = cache.faults.get(order.id)
                if fault is not None:
                    raise fault
                decision = self.rulebook.decide(self.point, self.facts_for(order, facts[order.id], batch))
                self.decide(s, order, decision, batch, cache)
            except self.faults as exc:
                hold_on_fault(s, self.machine, order, self.step, exc, cache)
        self.current = None
        self.finish(s, batch, cache)
        self.current = None
        carry_on(self, self.then, s, cache, records=orders)
        return len(orders)

    # -- what a stage supplies ----------------------------------------------------------
    def prepare(self, s: Session, orders: list[OrderRec]) -> Any:
        """What the batch's decisions need, read at once; handed to decide and finish."""
        return None

    def facts_for(self, order: OrderRec, facts: dict[str, Any], batch: Any) -> dict[str, Any]:
        """The facts the point's rules decide this order on (the order's own; a stage may add its own)."""
        return facts

    def decide(self, s: Session, order: OrderRec, decision: Decision | None, batch: Any, cache: FactCache) -> None:
        raise NotImplementedError

    def finish(self, s: Session, batch: Any, cache: FactCache) -> None:
        """Writes made for the whole batch after every order was decided."""

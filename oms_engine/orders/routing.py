"""Choosing the warehouse an order ships from.

Algorithm. The routing rules decide which strategies are asked and in what
order; stock decides who can take the order:

1. each ``route`` action the rules fired, in priority order, names a
   strategy; a strategy is asked only when the ones before it have not placed
   the order (so a slow or failing strategy late in the list costs nothing
   when an earlier one answers);
2. a strategy answers a warehouse with its reason, or None ("this rule cannot
   decide");
3. the first warehouse answered that can take the order's whole reservation
   wins: ``take(warehouse)`` moves every unit there or changes nothing and
   answers False (the stock moved away since the strategy looked) or why not
   (no lot with the shelf life the channel asks for), and the next answer is
   tried;
4. the core fallback: when every unit is already reserved in one warehouse,
   that warehouse;
5. no warehouse: the caller holds the order for routing.

Every answer, taken or not, is kept in ``tried`` and stored with the
decision, so "why was this order sent there?" has its whole answer. Nothing
here reads or writes the database: the stage (pipeline/route.py) supplies
``ask`` (a strategy's plugin call) and ``take`` (the stock move, under its
locks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..plugin.views import OrderView, RoutePlan
from ..rules import Decision
from ..stock.reservations import Held

Ask = Callable[[str, Mapping[str, Any]], RoutePlan | None]
# Moves the order's reservation to the warehouse: True, or why not (False: the stock moved away).
Take = Callable[[str], bool | str]
FALLBACK = "core-fallback"


@dataclass(frozen=True)
class Route:
    warehouse: str
    strategy: str
    reason: str


@dataclass
class RouteOutcome:
    chosen: Route | None
    tried: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The decision's outcome as it is stored."""
        if self.chosen is None:
            return {"warehouse": None, "tried": self.tried}
        return {"warehouse": self.chosen.warehouse, "strategy": self.chosen.strategy, "reason": self.chosen.reason,
                "tried": self.tried}


def _answers(order: OrderView, held: Sequence[Held], decision: Decision | None, ask: Ask,
             tried: list[dict[str, Any]]) -> Iterator[Route]:
    for action in (decision.actions if decision else []):
        if action.name != "route":
            continue
        name = action.params["strategy"]
        plan = ask(name, action.params)
        tried.append({"strategy": name, "warehouse": plan.warehouse if plan else None,
                      "reason": plan.reason if plan else "no answer"})
        if plan is not None:
            yield Route(plan.warehouse, name, plan.reason)
    reserved_at = {r.warehouse for r in held}
    if len(reserved_at) == 1 and sum(r.quantity for r in held) == sum(ln.quantity for ln in order.lines):
        yield Route(next(iter(reserved_at)), FALLBACK, "all units already reserved there")


def route_order(order: OrderView, held: Sequence[Held], decision: Decision | None, ask: Ask, take: Take
                ) -> RouteOutcome:
    """The warehouse the order ships from (see the module docstring); a fault of ``ask`` propagates, and
    it can only come before anything was taken."""
    outcome = RouteOutcome(None)
    for route in _answers(order, held, decision, ask, outcome.tried):
        taken = take(route.warehouse)
        if taken is True:
            outcome.chosen = route
            return outcome
        outcome.tried.append({"strategy": route.strategy, "warehouse": route.warehouse,
                              "reason": f"{taken}; tried next" if isinstance(taken, str) else
                              "stock moved away; tried next"})
    return outcome

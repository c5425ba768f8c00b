"""Courier matching: the carrier and service each routed parcel goes with, chosen by orders/couriers.py.

A merged group (orders/merging.py) is one parcel: the first of its orders
this stage meets decides for the group, on that order's facts and the whole
parcel's ``shipment.*``; the others take the group's choice. A group no
carrier takes is dissolved, and its orders are matched one by one.

With no carriers in master data at all, every parcel goes with the
connector config.yaml names (``carrier_connector``), as before couriers were
matched: nothing is decided and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..decisions.points import DecisionPoint
from ..fulfilment.carriers import CarrierCache
from ..orders import flow
from ..orders.couriers import choose_courier
from ..orders.flow import HoldStage
from ..orders.records import OrderRec, load_records
from ..orders.shipments import order_skus, shipment, shipment_facts, volumes
from ..plugin.registry import PluginRegistry
from ..plugin.views import Shipment, WarehouseView
from ..rules import Decision
from ..stock.warehouses import WarehouseCache
from ..storage.db import drain
from ..storage.models import MergeGroup, Order
from .deciding import DecisionStage
from .holding import hold
from .stage import StageName, carry_on


@dataclass
class _Batch:
    known: bool                                   # are there carriers in master data?
    warehouses: dict[str, WarehouseView]
    volumes: dict[str, int]
    groups: dict[int, MergeGroup]
    members: dict[int, list[OrderRec]]            # group id -> its orders, by id
    shipments: dict[int, Shipment]                # order id -> its parcel (its group's, when merged)


class CarrierStage(DecisionStage):
    name = StageName.CARRIER
    step = flow.Step.CARRIER
    point = DecisionPoint.CARRIERS.value

    def __init__(self, *, clock: Clock, plugins: PluginRegistry, warehouses: WarehouseCache, carriers: CarrierCache,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.clock, self.plugins, self.warehouses, self.carriers = clock, plugins, warehouses, carriers

    def take(self, s: Session, ids: Sequence[int], cache: FactCache, records: Sequence[OrderRec] = ()) -> int:
        if self.carriers.known(s):
            return super().take(s, ids, cache, records)
        # No carriers to choose among: the configured connector carries every parcel.
        orders = [*records, *load_records(s, ids, customers=False)]
        for order in orders:
            order.carrier, order.service = self.carriers.default_connector, None
            flow.advance(order, self.step)
        carry_on(self, self.then, s, cache, records=orders)
        return len(orders)

    def prepare(self, s: Session, orders: list[OrderRec]) -> _Batch:
        now = self.clock.now()
        group_ids = sorted({o.merge_group_id for o in orders if o.merge_group_id})
        groups = {g.id: g for g in s.scalars(select(MergeGroup).where(MergeGroup.id.in_(group_ids)))} \
            if group_ids else {}
        members: dict[int, list[OrderRec]] = {gid: [] for gid in groups}
        if groups:
            drain(s)
            in_batch = {o.id: o for o in orders}
            ids = list(s.scalars(select(Order.id).where(Order.merge_group_id.in_(list(groups)))))
            others = load_records(s, [i for i in ids if i not in in_batch], track=False, customers=False)
            for o in [*(in_batch[i] for i in ids if i in in_batch), *others]:
                members[o.merge_group_id].append(o)
            for group in members.values():
                group.sort(key=lambda o: o.id)
        whs = {w.code: w for w in self.warehouses.get(s)}
        skus = {sku for o in orders for sku in order_skus(o)}
        skus |= {sku for group in members.values() for o in group for sku in order_skus(o)}
        vols = volumes(s, skus)
        shipments: dict[int, Shipment] = {}
        for o in orders:
            group = groups.get(o.merge_group_id) if o.merge_group_id else None
            parcel = members[group.id] if group is not None else [o]
            shipments[o.id] = shipment(group.number if group is not None else o.number, parcel,
                                       whs.get(o.warehouse or ""), vols, now)
        return _Batch(True, whs, vols, groups, members, shipments)

    def facts_for(self, order: OrderRec, facts: dict[str, Any], batch: _Batch) -> dict[str, Any]:
        return {**facts, "shipment": shipment_facts(batch.shipments[order.id], self.clock.now())}

    def decide(self, s: Session, order: OrderRec, decision: Decision | None, batch: _Batch, cache: FactCache
               ) -> None:
        group = batch.groups.get(order.merge_group_id) if order.merge_group_id else None
        if group is not None and group.carrier:
            # Its merged parcel's carrier was chosen with an earlier order of the group.
            order.carrier, order.service = group.carrier, group.service
            self._follows(s, order, self.point, {
                "parcel": group.number, "carrier": group.carrier, "service": group.service,
                "why": f"goes with its merged parcel {group.number}"})
            flow.advance(order, self.step)
            return
        sh = batch.shipments[order.id]
        outcome = choose_courier(sh, self.carriers.services(s, order.warehouse or ""), decision,
                                 ask=lambda sv: self.plugins.quote(sv.connector, sh, sv,
                                                                   self.carriers.settings(s, sv.carrier)))
        self.decisions.record(s, order, self.point, decision, outcome.record(sh))
        if outcome.chosen is None and group is not None:
            self._dissolve(s, group, batch, f"no carrier takes the merged parcel {group.number}")
            alone = {**self.facts.facts(s, [order], cache)[order.id]}
            self.decide(s, order, self.rulebook.decide(self.point, self.facts_for(order, alone, batch)), batch,
                        cache)
            return
        if outcome.chosen is None:
            order.stage = None
            refusals = "; ".join(f"{t['carrier']}/{t['service']}: {t['result']}" for t in outcome.tried
                                 if t.get("carrier")) or "no rule named a carrier"
            hold(s, self.machine, order, HoldStage.COURIER, f"no carrier takes the parcel ({refusals})"[:2000],
                 actor="rules:carriers", cache=cache)
            return
        chosen = outcome.chosen.service
        order.carrier, order.service = chosen.carrier, chosen.code
        if group is not None:
            group.carrier, group.service = chosen.carrier, chosen.code
        flow.advance(order, self.step)

    def _dissolve(self, s: Session, group: MergeGroup, batch: _Batch, why: str) -> None:
        """The group's orders go on alone (each matched on its own parcel)."""
        group.status = "dissolved"
        s.execute(update(Order).where(Order.merge_group_id == group.id).values(merge_group_id=None),
                  execution_options={"synchronize_session": False})
        now = self.clock.now()
        for o in batch.members.get(group.id, []):
            self._follows(s, o, DecisionPoint.MERGING.value, {
                "group": group.number, "merged": False, "why": f"taken out of {group.number}: {why}"})
            o.merge_group_id = None
            batch.shipments[o.id] = shipment(o.number, [o], batch.warehouses.get(o.warehouse or ""),
                                             batch.volumes, now)
        batch.groups.pop(group.id, None)

    def _follows(self, s: Session, order: OrderRec, point: str, outcome: dict[str, Any]) -> None:
        """Record what follows from an earlier decision of ``point`` (no rules asked now)."""
        self.decisions.record(s, order, point, None, outcome, version=self.rulebook.version(point))

"""The freight of an order at intake: the channel's figure, checked, or the OMS's own, from a template.

rules/freight.yaml decides on the ``freight.*`` facts (where the parcel goes, what it weighs, what the
goods are worth, the channel and customer) and names a template (``template: {code: STANDARD}``) or
none to charge (``free``). Then:

* the channel sent no freight: the template's price is the order's freight and the decision is recorded;
  a template that cannot price it (no zone for the destination, not in master data, another currency)
  holds the order for a person, with the reason;
* the channel sent a figure: it stands (it is what the customer was shown and paid), and when it differs
  from the template's by more than ``tolerance`` (minor units) the difference is recorded as a decision
  of the order, and with ``on_mismatch: hold`` the order is held for a person to look at;
* no rule matches: the channel's figure, or none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..decisions.order_facts import FREIGHT_FIELDS
from ..decisions.points import DecisionPoint
from ..decisions.rulebook import Rulebook
from ..money import format_minor
from ..rules import Decision
from ..storage.models import FreightTemplate
from .templates import Charge, Template

POINT = DecisionPoint.FREIGHT.value
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shipment:
    """What the freight of one order is decided on."""

    channel: str
    currency: str
    country: str
    region: str
    city: str
    customer_level: str
    payment_method: str
    weight_g: int
    goods: int             # after promotions
    sent: int | None       # the channel's figure; None: it sent none

    @property
    def was_sent(self) -> bool:
        return self.sent is not None

    def facts(self) -> dict[str, Any]:
        return {"freight": {"channel": self.channel, "currency": self.currency, "country": self.country,
                            "region": self.region, "city": self.city, "customer_level": self.customer_level,
                            "payment_method": self.payment_method, "weight_g": self.weight_g,
                            "goods": self.goods, "sent": self.sent is not None}}


# The Shipment attribute behind each fact ("freight.sent" is whether ``sent`` is set).
_ATTRIBUTE = {f: f.partition(".")[2] for f in FREIGHT_FIELDS} | {"freight.sent": "was_sent"}


@dataclass(frozen=True)
class Outcome:
    amount: int                            # the order's freight
    hold: str | None = None                # why a person must look at it
    decision: Decision | None = None
    record: Mapping[str, Any] | None = None   # what to record as the order's freight decision, if anything


class FreightCharger:
    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self._warned: set[str] = set()
        # Decisions by the facts the ruleset in force reads: most orders repeat a few combinations (channel,
        # region, customer level), and asking the engine costs more than the arithmetic.
        self._version: str | None = None
        self._reads: tuple[str, ...] = ()      # attributes of Shipment the rules read
        self._decided: dict[tuple[Any, ...], Decision | None] = {}

    def needed(self) -> bool:
        """Do the freight rules decide anything? (No rules: nothing to read, nothing to ask.)"""
        rs = self.rulebook.rulesets.get(POINT)
        return rs is not None and bool(rs.rules)

    @staticmethod
    def templates(s: Session) -> dict[str, Template]:
        """The active templates, read once per payload."""
        return {t.code: Template.of(t.code, t.name, t.currency, t.zones, t.free_above)
                for t in s.scalars(select(FreightTemplate).where(FreightTemplate.active.is_(True)))}

    def _decide(self, shipment: Shipment) -> Decision | None:
        version = self.rulebook.version(POINT)
        if version != self._version:
            self._version, self._decided = version, {}
            self._reads = tuple(_ATTRIBUTE[f] for f in FREIGHT_FIELDS if self.rulebook.reads(POINT, f))
        key = tuple(getattr(shipment, a) for a in self._reads)
        try:
            return self._decided[key]
        except KeyError:
            if len(self._decided) >= 4096:
                self._decided.clear()
            decision = self._decided[key] = self.rulebook.decide(POINT, shipment.facts())
            return decision

    def charge(self, shipment: Shipment, templates: Mapping[str, Template]) -> Outcome:
        decision = self._decide(shipment)
        action = next((a for a in decision.actions if a.name in ("template", "free")), None) \
            if decision is not None else None
        sent, cur = shipment.sent, shipment.currency
        if action is None:
            if sent is not None:
                return Outcome(sent)
            return Outcome(0, decision=decision, record={"freight": 0, "source": "none",
                                                         "why": "no freight rule matched: nothing charged"})
        params = action.params
        rule = decision.fired[0].name if decision is not None and decision.fired else None
        expected = self._expected(action.name, params, shipment, templates)
        if sent is None:
            if expected.amount is None:
                return Outcome(0, hold=f"freight: {expected.reason}; the channel sent none", decision=decision,
                               record={"freight": None, "source": "template", "template": expected.template,
                                       "rule": rule, "why": expected.reason})
            return Outcome(expected.amount, decision=decision,
                           record={"freight": expected.amount, "source": "template", "template": expected.template,
                                   "rule": rule, "why": expected.reason})
        if expected.amount is None:
            if expected.template and expected.template not in self._warned:
                self._warned.add(expected.template)
                log.warning("the channel's freight is not checked: %s", expected.reason)
            return Outcome(sent)
        tolerance = int(params.get("tolerance", 0))
        if abs(sent - expected.amount) <= tolerance:
            return Outcome(sent)
        said = f"template {expected.template} says {expected.reason}" if expected.template else \
            f"the rules say none ({expected.reason})"
        why = f"the channel charged {format_minor(sent, cur)}, {said}"
        hold = f"freight disagrees: {why}" if params.get("on_mismatch", "record") == "hold" else None
        return Outcome(sent, hold=hold, decision=decision,
                       record={"freight": sent, "source": "channel", "template": expected.template, "rule": rule,
                               "expected": expected.amount, "why": why, "held": hold is not None})

    @staticmethod
    def _expected(name: str, params: Mapping[str, Any], sh: Shipment, templates: Mapping[str, Template]) -> Charge:
        if name == "free":
            return Charge("", 0, str(params.get("reason") or "free by rule"))
        code = str(params["code"])
        template = templates.get(code)
        if template is None:
            return Charge(code, None, f"no active freight template '{code}' in master data")
        if template.currency != sh.currency:
            return Charge(code, None, f"freight template {code} is in {template.currency}, the order in "
                                      f"{sh.currency}")
        return template.price(sh.country, sh.region, sh.weight_g, sh.goods)

"""Choosing the carrier and service a parcel goes with (courier matching).

Algorithm. The courier rules say which services are tried and in what
order; the services' own limits and the carriers' answers decide who takes
the parcel:

1. each action the rules fired, in priority order, adds candidates:
   ``carrier`` a carrier (one service of it, or each of its services),
   ``cheapest`` / ``fastest`` every service the warehouse's carriers offer
   (or those of ``among``), ranked by their quotes (price, then delivery;
   delivery, then price); a service already a candidate is not added again;
2. only the services of the carriers that collect from the warehouse count;
   a service whose attributes rule the parcel out (``regions``,
   ``max_weight_g``, ``max_volume_cm3``, ``max_value``, ``cold_chain``,
   ``oversize``, ``cod``) is passed over, saying why, without asking (a
   cold-chain service carries cold-chain parcels only);
3. each candidate's carrier is asked for a quote (once per service, however
   many actions name it); a refusal (out of area, over weight, no capacity,
   a failing carrier) passes to the next;
4. with a delivery booked or promised, a quote that arrives after it is kept
   back: it is taken only if no candidate meets the date (``meet_promise:
   false`` on an action takes its candidates in its own order regardless);
5. no candidate accepts: the caller holds the order for its courier.

Every candidate, asked or not, is kept in ``tried`` and stored with the
decision. Nothing here reads or writes the database: the stage
(pipeline/carrier.py) supplies the services and ``quote`` (the carrier's
plugin call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..money import format_minor
from ..plugin.views import Quote, ServiceView, Shipment
from ..rules import Decision

# A carrier's quote for the shipment on a service; raises when the carrier cannot be asked.
Ask = Callable[[ServiceView], Quote]


@dataclass(frozen=True)
class Choice:
    service: ServiceView
    quote: Quote
    rule: str
    late: bool            # delivers after the date booked or promised

    def why(self, currency: str) -> str:
        price = f" at {format_minor(self.quote.price, currency)}" if self.quote.price else ""
        eta = f", delivering by {self.quote.eta:%Y-%m-%d %H:%M}" if self.quote.eta else ""
        late = " (later than promised: no carrier could meet the date)" if self.late else ""
        return f"{self.service.carrier}/{self.service.code} by rule {self.rule}{price}{eta}{late}"


@dataclass
class CourierOutcome:
    chosen: Choice | None
    tried: list[dict[str, Any]] = field(default_factory=list)

    def record(self, sh: Shipment) -> dict[str, Any]:
        out: dict[str, Any] = {"parcel": sh.reference, "orders": list(sh.orders), "weight_g": sh.weight_g,
                               "volume_cm3": sh.volume_cm3, "value": sh.value, "tried": self.tried}
        if sh.promised_by is not None:
            out["promised_by"] = sh.promised_by.isoformat() + "Z"
        if self.chosen is None:
            out.update(carrier=None, why="no carrier takes the parcel")
            return out
        q = self.chosen.quote
        out.update(carrier=self.chosen.service.carrier, service=self.chosen.service.code,
                   price=q.price if q.price else None, currency=q.currency or None,
                   eta=q.eta.isoformat() + "Z" if q.eta else None, why=self.chosen.why(sh.currency))
        return out


def unsuitable(service: ServiceView, sh: Shipment) -> str | None:
    """Why the service's own limits rule the parcel out (None: they do not)."""
    a = service.attributes
    regions = a.get("regions")
    if isinstance(regions, list) and regions and sh.destination.region not in regions:
        return f"does not serve {sh.destination.region or 'an unknown region'}"
    for key, value, unit in (("max_weight_g", sh.weight_g, "g"), ("max_volume_cm3", sh.volume_cm3, "cm3"),
                             ("max_value", sh.value, "")):
        limit = a.get(key)
        if isinstance(limit, int | float) and not isinstance(limit, bool) and value > limit:
            return f"{key.removeprefix('max_').removesuffix('_g').removesuffix('_cm3')} {value:,}{unit} over " \
                   f"its limit of {int(limit):,}{unit}"
    if sh.cold_chain and not a.get("cold_chain"):
        return "no cold chain"
    if a.get("cold_chain") and not sh.cold_chain:
        return "a cold-chain service, kept for cold-chain goods"
    if sh.oversize and not a.get("oversize"):
        return "takes no oversize goods"
    if sh.cod_amount and not a.get("cod"):
        return "does not collect cash on delivery"
    return None


def _candidates(decision: Decision | None, services: Sequence[ServiceView]) -> list[tuple[str, str, list[ServiceView],
                                                                                           bool]]:
    """(rule, action, services in the order to try, whether the promise counts) per fired action."""
    out = []
    for rule in (decision.fired if decision else ()):
        for action in rule.actions:
            p = action.params
            if action.name == "carrier":
                named = [sv for sv in services if sv.carrier == p["carrier"]
                         and ("service" not in p or sv.code == p["service"])]
                out.append((rule.name, action.name, named, True))
            elif action.name in ("cheapest", "fastest"):
                among = p.get("among")
                named = [sv for sv in services if among is None or sv.carrier in among]
                out.append((rule.name, action.name, named, bool(p.get("meet_promise", True))))
    return out


def choose_courier(sh: Shipment, services: Sequence[ServiceView], decision: Decision | None, ask: Ask,
                   ) -> CourierOutcome:
    """The carrier and service the parcel goes with (see the module docstring)."""
    outcome = CourierOutcome(None)
    quotes: dict[tuple[str, str], Quote] = {}
    seen: set[tuple[str, str]] = set()
    kept_back: list[Choice] = []

    def quoted(sv: ServiceView) -> Quote:
        key = (sv.carrier, sv.code)
        if key not in quotes:
            try:
                quotes[key] = ask(sv)
            except Exception as exc:  # a carrier that cannot be asked refuses; the next is tried
                error = getattr(exc, "error", exc)   # a plugin's fault: the error itself, not who is blamed
                quotes[key] = Quote(False, reason=f"could not be asked: {type(error).__name__}: {error}"[:300])
        return quotes[key]

    def note(sv: ServiceView, rule: str, result: str, q: Quote | None = None) -> None:
        entry: dict[str, Any] = {"rule": rule, "carrier": sv.carrier, "service": sv.code, "result": result}
        if q is not None and q.accepted:
            entry.update(price=q.price, eta=q.eta.isoformat() + "Z" if q.eta else None)
        outcome.tried.append(entry)

    for rule, action, named, promise_counts in _candidates(decision, services):
        if not named:
            outcome.tried.append({"rule": rule, "carrier": None, "service": None,
                                  "result": f"{action}: no service of the warehouse's carriers matches"})
            continue
        ranked: list[tuple[ServiceView, Quote | None, str | None]] = []
        for sv in named:
            if (sv.carrier, sv.code) in seen:
                continue
            seen.add((sv.carrier, sv.code))
            why = unsuitable(sv, sh)
            ranked.append((sv, None if why else quoted(sv), why))
        if action == "cheapest":
            ranked.sort(key=lambda r: _rank(r[1], price_first=True))
        elif action == "fastest":
            ranked.sort(key=lambda r: _rank(r[1], price_first=False))
        for i, (sv, q, why) in enumerate(ranked):
            if why is not None:
                note(sv, rule, f"passed over: {why}")
                continue
            assert q is not None
            if not q.accepted:
                note(sv, rule, f"refused: {q.reason or 'no reason given'}", q)
                continue
            late = bool(sh.promised_by and q.eta and q.eta > sh.promised_by)
            choice = Choice(sv, q, rule, late)
            if late and promise_counts:
                note(sv, rule, "kept back: delivers after the date promised", q)
                kept_back.append(choice)
                continue
            note(sv, rule, "chosen", q)
            outcome.chosen = choice
            # What it was ranked against stays on record too.
            for other, oq, owhy in ranked[i + 1:]:
                note(other, rule, f"passed over: {owhy}" if owhy else
                     f"refused: {oq.reason or 'no reason given'}" if oq is not None and not oq.accepted else
                     "quoted, ranked after the one chosen", oq)
            return outcome
    if kept_back:
        # Nobody meets the date: the earliest delivery of those that take the parcel.
        best = min(kept_back, key=lambda c: (c.quote.eta, c.quote.price))
        outcome.chosen = best
        outcome.tried.append({"rule": best.rule, "carrier": best.service.carrier, "service": best.service.code,
                              "result": "chosen: the earliest delivery, none meets the date"})
    return outcome


def _rank(q: Quote | None, *, price_first: bool) -> tuple[Any, ...]:
    """Sort key: accepted quotes first, by price then delivery (or delivery then price); then the rest."""
    if q is None or not q.accepted:
        return (1, 0, 0)
    far = q.eta.timestamp() if q.eta else float("inf")
    return (0, q.price, far) if price_first else (0, far, q.price)


def services_by_code(services: Sequence[ServiceView]) -> Mapping[tuple[str, str], ServiceView]:
    return {(sv.carrier, sv.code): sv for sv in services}

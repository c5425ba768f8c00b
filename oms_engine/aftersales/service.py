"""Opening and running after-sales cases (the states and edges are in cases.py).

Algorithm.

* A case is opened on an order that shipped (a child of a split, or an order
  that was not split): ``refund_only`` from the moment it shipped (a parcel
  lost, goods damaged or short), ``return_refund`` once it was delivered. Its
  lines default to every unit not claimed yet; each line may be in several
  cases, up to its quantity (a cancelled case gives its units back, a denied
  one keeps them: a denial is appealed, not opened again). After the window
  (the order closed, config ``after_sales_days`` after completion) a case is
  refused, saying when the window closed.
* Its worth is what the customer paid for those units (amounts.py).
* The rules of the ``aftersales`` point decide it at once (approve, leave it
  to a person, deny, each with the reason); the decision is recorded on the
  order with the facts and the rules that fired. A denied case may be
  appealed once: the rules are asked again, knowing it is an appeal.
* Approved, a refund-only case owes its worth back at once; a return and
  refund case first sends the warehouse the order shipped from a
  customer-return document (RMA) for its units, and owes the money when the
  warehouse reports them all received (units received damaged count as
  received: they go to the damaged stock, not back on sale; whether that
  changes what is owed is the rules' business).
* An exchange asks the goods back the same way and at once creates the
  replacement: an order of the same channel, customer and address for the
  same units (or other products at the same catalogue price), numbered like
  any other, priced at nothing and paid by the exchange, its stock reserved
  and held until the goods are back (a person may release it earlier).
  The goods back release it into the order flow (routing, the warehouse,
  the carrier); delivered, the case is ``done`` and the invoice is issued
  again naming the products the customer has now. A replacement cancelled
  (no stock ever came, say) turns the case into a refund of the units.
* The refunds go to the payments the money came from (payments/ledger.py)
  and the provider pays them (payments/refunds.py); when every refund of
  the case is paid back, the case is ``refunded``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactBuilder, FactCache
from ..decisions.points import DecisionPoint
from ..decisions.records import DecisionRecorder
from ..decisions.rulebook import Rulebook
from ..errors import CaseNotFound, CommandError
from ..fulfilment.stock_documents import DocKind, LineIn, StockDocuments, apply_report
from ..fulfilment.stock_documents import Status as DocStatus
from ..money import format_minor
from ..orders.creation import OrderCreator
from ..orders.machine import OrderMachine
from ..orders.queries import get_order, iso
from ..orders.states import State
from ..payments import ledger
from ..payments.refunds import Refunds
from ..statemachine import Transition
from ..storage.db import Database, append, drain
from ..storage.models import AftersalesCase, AftersalesHistory, History, Order, Payment, StockDocument
from ..storage.retry import retrying
from .amounts import case_amount
from .cases import CASE, CLAIMING, CaseEvent, CaseKind, CaseState
from .receipt import ReceiptError, checked, damaged_text, report_lines
from .replacements import ARRIVED, Replacements

POINT = DecisionPoint.AFTERSALES.value
# What a person does to a case (act).
ACTIONS = ("approve", "deny", "appeal", "cancel", "receive", "refund")
# The order's states in which a case of each kind may be opened.
SHIPPED = (State.SHIPPED, State.IN_TRANSIT, State.OUT_FOR_DELIVERY, State.DELIVERED, State.COMPLETED)
OPEN_IN: dict[CaseKind, tuple[State, ...]] = {
    CaseKind.REFUND_ONLY: SHIPPED,
    CaseKind.RETURN_REFUND: (State.DELIVERED, State.COMPLETED),
    CaseKind.EXCHANGE: (State.DELIVERED, State.COMPLETED),
}


class Aftersales:
    def __init__(self, *, db: Database, clock: Clock, rulebook: Rulebook, facts: FactBuilder,
                 decisions: DecisionRecorder, refunds: Refunds, documents: StockDocuments, creator: OrderCreator,
                 machine: OrderMachine, rules_in_force: Callable[[Session], object] = lambda _s: None) -> None:
        self.db, self.clock, self.rulebook, self.facts = db, clock, rulebook, facts
        self.decisions, self.refunds, self.documents = decisions, refunds, documents
        self.replacements = Replacements(creator=creator, machine=machine)
        self.rules_in_force = rules_in_force

    # -- opening -----------------------------------------------------------------------------------
    @retrying
    def open(self, number: str, kind: str, lines: Mapping[int, int] | None = None, reason: str = "", *,
             actor: str, exchange_to: Mapping[int, str] | None = None) -> dict[str, Any]:
        """Open a case on order ``number`` (``lines``: line_no -> units; none: every unit not claimed yet) and
        have the rules decide it; the case as :meth:`get` shows it. ``exchange_to`` (an exchange): line_no ->
        the SKU its units are exchanged for (none: the same SKU)."""
        try:
            what = CaseKind(kind)
        except ValueError:
            raise CommandError(f"unknown kind of case '{kind}' (known: {', '.join(k.value for k in CaseKind)})"
                               ) from None
        if exchange_to and what is not CaseKind.EXCHANGE:
            raise CommandError("only an exchange names products to exchange the units for")
        # An exchange approved at once creates its replacement: its number is taken before the transaction.
        self.replacements.prefetch_number()
        with self.db.session() as s:
            order = get_order(s, number, lock=True)
            self._may_open(s, order, what)
            claimed = self._claimed(s, order.id)
            wanted = self._wanted(order, lines, claimed)
            swaps = self.replacements.swaps(s, order, wanted, exchange_to or {}) if what is CaseKind.EXCHANGE else {}
            amount = case_amount(order.lines, wanted, claimed)
            now = self.clock.now()
            place = (s.scalar(select(func.count()).where(AftersalesCase.order_id == order.id)) or 0) + 1
            case = AftersalesCase(number=f"{order.number}-C{place:02d}", order_id=order.id, kind=what.value,
                                  status=CaseState.REQUESTED.value, reason=reason[:2000],
                                  lines=[{"line_no": n, "quantity": q, **({"sku": swaps[n]} if swaps else {})}
                                         for n, q in sorted(wanted.items())],
                                  amount=amount, currency=order.currency, decision="", return_document=None,
                                  appeals=0, opened_by=actor[:100], created_at=now, updated_at=now)
            s.add(case)
            s.flush()
            append(s, AftersalesHistory, case_id=case.id, from_state=None, to_state=case.status, event="open",
                   actor=actor[:100], cause=reason[:2000], at=now)
            self._decide(s, order, case)
            return self._dict(s, case)

    def _may_open(self, s: Session, order: Order, kind: CaseKind) -> None:
        if order.children:
            raise CommandError(f"order {order.number} was split: open the case on the order that shipped the "
                               f"goods ({', '.join(c.number for c in order.children)})")
        state = State(order.status)
        if state is State.CLOSED or (state is State.COMPLETED and order.due_at is not None
                                      and self.clock.now() >= order.due_at):
            closed = order.due_at if order.due_at is not None else order.updated_at
            raise CommandError(f"the after-sales window of order {order.number} closed on {closed:%Y-%m-%d %H:%M}")
        if state in (State.CANCELLED, State.REFUSED):
            raise CommandError(f"order {order.number} is {state.value}: what was paid for it is refunded with it")
        if state not in OPEN_IN[kind]:
            if kind in (CaseKind.RETURN_REFUND, CaseKind.EXCHANGE) and state in SHIPPED:
                raise CommandError(f"order {order.number} is {state.value}: goods are returned once delivered "
                                   f"(a parcel that never arrives is a refund_only case)")
            raise CommandError(f"order {order.number} is {state.value}: it has not shipped; cancel it instead")

    @staticmethod
    def _claimed(s: Session, order_id: int) -> dict[int, int]:
        """line_no -> units claimed by the order's cases that still claim them."""
        out: dict[int, int] = {}
        for (lines,) in s.execute(select(AftersalesCase.lines).where(AftersalesCase.order_id == order_id,
                                                                     AftersalesCase.status.in_(sorted(CLAIMING)))):
            for ln in lines:
                out[int(ln["line_no"])] = out.get(int(ln["line_no"]), 0) + int(ln["quantity"])
        return out

    @staticmethod
    def _wanted(order: Order, lines: Mapping[int, int] | None, claimed: Mapping[int, int]) -> dict[int, int]:
        left = {ln.line_no: ln.quantity - claimed.get(ln.line_no, 0) for ln in order.lines}
        if not lines:
            wanted = {n: q for n, q in left.items() if q > 0}
            if not wanted:
                raise CommandError(f"every unit of order {order.number} is in a case already")
            return wanted
        for n, q in lines.items():
            if n not in left:
                raise CommandError(f"order {order.number} has no line {n} (lines: "
                                   f"{', '.join(str(k) for k in sorted(left))})")
            if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
                raise CommandError(f"line {n}: the quantity must be a whole number above 0, got {q!r}")
            if q > left[n]:
                raise CommandError(f"line {n}: {q} units asked, {left[n]} not in a case yet")
        return dict(lines)

    def _facts(self, s: Session, order: Order, case: AftersalesCase) -> dict[str, Any]:
        facts = dict(self.facts.facts(s, [order], FactCache(), point=POINT)[order.id])
        delivered = s.scalar(select(func.max(History.at)).where(History.order_id == order.id,
                                                                 History.event == "deliver"))
        earlier = s.scalar(select(func.count()).select_from(AftersalesCase).join(Order, Order.id ==
                                                                                 AftersalesCase.order_id)
                           .where(Order.customer_id == order.customer_id, AftersalesCase.id != case.id)) or 0
        facts["case"] = {
            "kind": case.kind, "amount": case.amount, "units": sum(int(ln["quantity"]) for ln in case.lines),
            "line_count": len(case.lines), "appeal": case.appeals > 0, "order_state": order.status,
            "days_since_delivery": (self.clock.now() - delivered).days if delivered is not None else -1,
            "earlier_cases": int(earlier)}
        return facts

    def _decide(self, s: Session, order: Order, case: AftersalesCase) -> None:
        self.rules_in_force(s)
        decision = self.rulebook.decide(POINT, self._facts(s, order, case))
        action = next((a for a in decision.actions if a.name in ("approve", "review", "deny")), None) \
            if decision is not None else None
        name = action.name if action is not None else "review"
        why = str(action.params.get("reason") or "") if action is not None else "no rule decides it: a person does"
        rule = decision.fired[0].name if decision is not None and decision.fired else None
        self.decisions.record(s, order, POINT, decision, {
            "case": case.number, "decision": name, "why": f"{case.number}: {name}" + (f", {why}" if why else "")
            + (f" (rule {rule})" if rule else "")})
        actor = f"rules:{POINT}"
        case.decision = why[:2000]
        if name == "approve":
            self._approve(s, case, actor, why)
        elif name == "deny":
            self._fire(s, case, CaseEvent.DENY, actor, why)
        elif case.status != CaseState.UNDER_REVIEW:
            self._fire(s, case, CaseEvent.REVIEW, actor, why)

    def _approve(self, s: Session, case: AftersalesCase, actor: str, why: str) -> None:
        self._fire(s, case, CaseEvent.APPROVE, actor, why)
        nxt = CaseEvent.REFUND if case.kind == CaseKind.REFUND_ONLY else CaseEvent.AWAIT_RETURN
        self._fire(s, case, nxt, actor, "")

    def _fire(self, s: Session, case: AftersalesCase, event: CaseEvent, actor: str, cause: str) -> None:
        now = self.clock.now()
        t = CASE.begin(case, event, actor=actor, cause=cause, at=now)
        case.updated_at = now
        append(s, AftersalesHistory, case_id=case.id, from_state=t.before.value, to_state=t.target.value,
               event=event.value, actor=actor[:100], cause=cause[:2000], at=now)
        CASE.run_effects(self, s, t)

    # -- a person's decisions ------------------------------------------------------------------------
    @retrying
    def act(self, number: str, event: str, *, actor: str, note: str = "",
            damaged: Mapping[str, int] | None = None) -> dict[str, Any]:
        """``approve``, ``deny``, ``appeal``, ``cancel``, ``receive`` (the goods came back and the warehouse did
        not say: the rest of the return document is recorded received; ``damaged``: SKU -> units of it that
        came back damaged) or ``refund`` (pay the case back now: an exchange whose replacement went astray,
        say) a case; IllegalTransition says when it cannot, ReceiptError when the damaged units do not fit."""
        if event not in ACTIONS:
            raise CommandError(f"unknown action '{event}' (known: {', '.join(ACTIONS)})")
        if damaged and event != "receive":
            raise ReceiptError(f"only 'receive' records damaged units, not '{event}'")
        broken = checked(damaged)
        self.replacements.prefetch_number()     # an exchange approved creates its replacement
        with self.db.session() as s:
            case = self._case(s, number, lock=True)
            if event == "receive":
                self._receive(s, case, actor, note, broken)
            elif event == "approve":
                CASE.check(case, CaseEvent.APPROVE)
                self._approve(s, case, actor, note)
                case.decision = note[:2000] or case.decision
            elif event == "appeal":
                self._fire(s, case, CaseEvent.APPEAL, actor, note)
                self._decide(s, self._order(s, case), case)
            else:
                if event == "refund" and case.kind == CaseKind.EXCHANGE and case.replacement:
                    # Paid back instead: a replacement that has not left stays home (one that has, goes on).
                    CASE.check(case, CaseEvent.REFUND)
                    with suppress(CommandError):
                        self.replacements.cancel(s, case, actor)
                if case.status != CaseState.REFUND_PENDING:    # the replacement cancelled may have moved it
                    self._fire(s, case, CaseEvent(event), actor, note)
                if event == "deny":
                    case.decision = note[:2000] or case.decision
            return self._dict(s, case)

    def _receive(self, s: Session, case: AftersalesCase, actor: str, note: str, damaged: Mapping[str, int]) -> None:
        CASE.check(case, CaseEvent.RECEIVE)
        doc = s.scalars(select(StockDocument).where(StockDocument.number == case.return_document)).first()
        if doc is None:
            raise CommandError(f"case {case.number} has no return document")
        rest = report_lines(doc.number, doc.lines, damaged)
        if rest:
            now = self.clock.now()
            apply_report(s, warehouse=None, document=doc.number, lines=rest, at=now,
                         order_id_of=lambda n: s.scalar(select(Order.id).where(Order.number == n)))
            broken = damaged_text(damaged)
            cause = note or f"{doc.number} received, as {actor} says"
            self.returned(s, doc.number, now, actor=actor, cause=f"{cause} ({broken})" if broken else cause)

    def list(self, *, status: str | None = None, kind: str | None = None, order: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        """Cases, newest first, without their history: by state, kind or order."""
        return self.page(status=status, kind=kind, order=order, limit=limit)[0]

    def page(self, *, status: str | None = None, kind: str | None = None, order: str | None = None,
             limit: int = 100, before_id: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """A page of :meth:`list` (cases older than ``before_id``), and the ``before_id`` of the next page (None:
        this is the last)."""
        stmt = select(AftersalesCase, Order.number).join(Order, Order.id == AftersalesCase.order_id)
        if status:
            stmt = stmt.where(AftersalesCase.status == status)
        if kind:
            stmt = stmt.where(AftersalesCase.kind == kind)
        if order:
            stmt = stmt.where(Order.number == order)
        if before_id is not None:
            stmt = stmt.where(AftersalesCase.id < before_id)
        with self.db.read() as s:
            # One more than asked: a page is full only when there is more, so no empty last page is sent.
            rows = s.execute(stmt.order_by(AftersalesCase.id.desc()).limit(limit + 1)).all()
            cases = [{"number": c.number, "order": number, "kind": c.kind, "status": c.status, "amount": c.amount,
                      "amount_text": format_minor(c.amount, c.currency), "replacement": c.replacement,
                      "return_document": c.return_document, "opened_at": iso(c.created_at),
                      "updated_at": iso(c.updated_at)}
                     for c, number in rows[:limit]]
        return cases, rows[limit - 1][0].id if len(rows) > limit else None

    # -- effects of the edges (cases.py) ---------------------------------------------------------------
    def send_return_document(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        order = self._order(s, case)
        if not order.warehouse:
            raise CommandError(f"order {order.number} names no warehouse to return its goods to")
        by_no = {ln.line_no: ln for ln in order.lines}
        lines = [LineIn(by_no[int(ln["line_no"])].sku, int(ln["quantity"])) for ln in case.lines]
        doc = self.documents.make(s, DocKind.CUSTOMER_RETURN, order.warehouse, lines, actor=t.actor,
                                  order_number=order.number, note=f"after-sales case {case.number}")
        self.documents.queue(s, doc)
        case.return_document = doc.number

    def withdraw_return_document(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        if not case.return_document:
            return
        doc = s.scalars(select(StockDocument).where(StockDocument.number == case.return_document)).first()
        if doc is not None and doc.status in (DocStatus.OPEN.value, DocStatus.REFUSED.value):
            doc.status, doc.updated_at = DocStatus.CANCELLED.value, t.at
            doc.note = (doc.note + f"\ncancelled with case {case.number}").strip()

    def owe_refund(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        order = self._order(s, case)
        plan, amount = None, case.amount
        if self.refunds.rules is not None:
            left = ledger.open_payments(s, order)
            kept_goods, kept_discount = self._kept(s, order)
            plan = self.refunds.rules.decide(s, order, cause="case", case_kind=case.kind, amount=case.amount,
                                             whole=case.amount >= sum(left.values()), paid_with=sorted(left),
                                             kept_goods=kept_goods, kept_discount=kept_discount)
            if plan.claw_back:
                case.clawed_back = min(kept_discount, case.amount)
                amount -= case.clawed_back
        reason = f"case {case.number}: {case.kind.replace('_', ' ')}" + (
            f", less {format_minor(case.clawed_back, case.currency)} of promotions on the goods kept"
            if case.clawed_back else "")
        owed = ledger.refund_order(s, order, amount, reason, t.at, actor=t.actor, cause="case",
                                   refunds=self.refunds, case_number=case.number, case_kind=case.kind, plan=plan)
        order.refund_amount += sum(r.amount for r in owed)
        if not owed:
            # Nothing was paid that is not paid back already: nothing to wait for.
            self._fire(s, case, CaseEvent.REFUNDED, t.actor, "nothing left to pay back")
        elif all(r.settled for r in owed):
            self._fire(s, case, CaseEvent.REFUNDED, t.actor, "credited back to the gift card and points")

    def _kept(self, s: Session, order: Order) -> tuple[int, int]:
        """(goods at their prices, promotions on them) of the units of ``order`` no case claims: what the customer
        keeps once the cases are settled."""
        claimed: dict[int, int] = {}
        live = sorted(CLAIMING - {CaseState.DENIED.value})     # a denied case's goods stay with the customer
        for kind, status, lines in s.execute(select(AftersalesCase.kind, AftersalesCase.status, AftersalesCase.lines)
                                             .where(AftersalesCase.order_id == order.id,
                                                    AftersalesCase.status.in_(live))):
            if kind == CaseKind.EXCHANGE and status not in (CaseState.REFUND_PENDING, CaseState.REFUNDED):
                continue    # exchanged goods are replaced: the customer keeps their worth
            for ln in lines:
                claimed[int(ln["line_no"])] = claimed.get(int(ln["line_no"]), 0) + int(ln["quantity"])
        goods = discount = 0
        for ln in order.lines:
            kept = ln.quantity - claimed.get(ln.line_no, 0)
            if kept > 0:
                goods += ln.unit_price * kept
                # The promotion on the kept units: the line's discount less what the claimed units took of it.
                discount += ln.discount - ln.discount * (ln.quantity - kept) // ln.quantity
        return goods, discount

    # The replacement an exchange sends (replacements.py); the case table's effects call these.
    def make_replacement(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        self.replacements.make(s, case, self._order(s, case), t.actor)

    def release_replacement(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        self.replacements.release(s, case, t.actor)

    def cancel_replacement(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        self.replacements.cancel(s, case, t.actor)

    def reissue_invoice(self, s: Session, case: AftersalesCase, t: Transition[Any, Any]) -> None:
        self.replacements.reissue_invoice(s, case, self._order(s, case), t.at)

    # -- what the warehouse, the payment provider and the replacement report -------------------------------
    def returned(self, s: Session, document: str, at: datetime, *, actor: str | None = None,
                 cause: str | None = None) -> str | None:
        """A customer-return document reported received: its case moves on once all of it came back."""
        case = s.scalars(select(AftersalesCase).where(AftersalesCase.return_document == document)).first()
        if case is None or case.status != CaseState.AWAITING_RETURN:
            return None
        doc = s.scalars(select(StockDocument).where(StockDocument.number == document)).first()
        if doc is None or doc.status != DocStatus.DONE.value:
            return None
        actor = actor or f"wms:{doc.warehouse}"
        self._fire(s, case, CaseEvent.RECEIVE, actor, cause or f"{document} received")
        if case.kind != CaseKind.EXCHANGE:
            self._fire(s, case, CaseEvent.REFUND, actor, "")
            return f"case {case.number} {case.status}"
        replacement = self.replacements.status(s, case)
        if replacement == State.CANCELLED.value:
            self._fire(s, case, CaseEvent.REFUND, actor, f"the replacement {case.replacement} was cancelled: the "
                                                         f"money goes back instead")
        else:
            self._fire(s, case, CaseEvent.SHIP_REPLACEMENT, actor, f"replacement {case.replacement}")
            if replacement in ARRIVED:   # a person let it go before the goods were back
                self._fire(s, case, CaseEvent.REPLACEMENT_DELIVERED, actor, f"{case.replacement} delivered")
        return f"case {case.number} {case.status}"

    def replacement_moved(self, s: Session, order: Any, t: Transition[Any, Any]) -> None:
        """A replacement delivered finishes its case; cancelled on its way, the case is refunded instead."""
        case = s.scalars(select(AftersalesCase).where(AftersalesCase.replacement == order.number)).first()
        if case is None or case.status != CaseState.EXCHANGE_SHIPPING:
            return
        if t.target is State.DELIVERED:
            self._fire(s, case, CaseEvent.REPLACEMENT_DELIVERED, t.actor, f"{order.number} delivered")
        else:
            self._fire(s, case, CaseEvent.REFUND, t.actor, f"the replacement {order.number} was cancelled: the money "
                                                           f"goes back instead")

    def refunds_settled(self, s: Session, case_number: str, at: datetime) -> None:
        """A refund of the case was paid back: the case is refunded when all of them are."""
        case = s.scalars(select(AftersalesCase).where(AftersalesCase.number == case_number)).first()
        if case is None or case.status != CaseState.REFUND_PENDING:
            return
        drain(s)
        open_ = s.scalar(select(func.count()).where(Payment.case_number == case_number, Payment.kind == "refund",
                                                     Payment.status != "refunded")) or 0
        if not open_:
            self._fire(s, case, CaseEvent.REFUNDED, "payment", "every refund of the case paid back")

    # -- reading ------------------------------------------------------------------------------------
    def get(self, number: str) -> dict[str, Any]:
        with self.db.read() as s:
            return self._dict(s, self._case(s, number))

    @staticmethod
    def _case(s: Session, number: str, *, lock: bool = False) -> AftersalesCase:
        stmt = select(AftersalesCase).where(AftersalesCase.number == number)
        case = s.scalars(stmt.with_for_update() if lock else stmt).first()
        if case is None:
            raise CaseNotFound(f"no after-sales case '{number}'")
        return case

    @staticmethod
    def _order(s: Session, case: AftersalesCase) -> Order:
        order = s.get(Order, case.order_id)
        assert order is not None
        return order

    def _dict(self, s: Session, case: AftersalesCase) -> dict[str, Any]:
        drain(s)
        return case_dict(s, case)


def case_dict(s: Session, case: AftersalesCase) -> dict[str, Any]:
    history = s.scalars(select(AftersalesHistory).where(AftersalesHistory.case_id == case.id)
                        .order_by(AftersalesHistory.id))
    refunds = s.execute(select(Payment.serial, Payment.amount, Payment.status).where(
        Payment.case_number == case.number).order_by(Payment.id)).all()
    return {"number": case.number, "kind": case.kind, "status": case.status, "reason": case.reason,
            "lines": case.lines, "amount": case.amount, "amount_text": format_minor(case.amount, case.currency),
            "decision": case.decision, "return_document": case.return_document, "replacement": case.replacement,
            "clawed_back": case.clawed_back,
            "appeals": case.appeals,
            "opened_by": case.opened_by, "opened_at": iso(case.created_at),
            "refunds": [{"serial": r.serial, "amount": r.amount, "status": r.status} for r in refunds],
            "history": [{"at": iso(h.at), "from": h.from_state, "to": h.to_state, "event": h.event,
                         "actor": h.actor, "cause": h.cause} for h in history]}


def cases_of(s: Session, order: Any) -> list[dict[str, Any]]:
    """The after-sales cases of an order, oldest first (``oms order show``)."""
    return [case_dict(s, c) for c in s.scalars(select(AftersalesCase).where(AftersalesCase.order_id == order.id)
                                                .order_by(AftersalesCase.id))]

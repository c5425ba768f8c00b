"""The replacement an exchange sends: an order of the same channel, customer and address for the case's units (the
same product, or another at the same catalogue price), priced at nothing and paid by the exchange, its stock
reserved and held until the goods come back; released then into the order flow, or cancelled with its case. When
it names other products than the order did, the invoice is issued again (invoices/issuing.py ``reissue``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import CommandError, OmsError
from ..invoices.issuing import reissue
from ..orders.canonical import CanonicalAddress, CanonicalCustomer, CanonicalLine, CanonicalOrder, CanonicalPayment
from ..orders.creation import OrderCreator, Seen
from ..orders.flow import HoldStage, resume
from ..orders.machine import OrderMachine
from ..orders.queries import get_order
from ..orders.states import Event, State
from ..payments import ledger
from ..payments.methods import REPLACEMENT
from ..statemachine import IllegalTransition
from ..storage.models import AftersalesCase, Order, Product

# A replacement's states in which it reached the customer.
ARRIVED = (State.DELIVERED, State.COMPLETED, State.CLOSED)


class Replacements:
    def __init__(self, *, creator: OrderCreator, machine: OrderMachine) -> None:
        self.creator, self.machine = creator, machine

    def prefetch_number(self) -> None:
        """Before a transaction that may create a replacement: its number is taken outside it (numbering.py)."""
        self.creator.numbers.prefetch(1)

    @staticmethod
    def swaps(s: Session, order: Order, wanted: Mapping[int, int], exchange_to: Mapping[int, str]) -> dict[int, str]:
        """line_no -> the SKU its units go out as: another product only at the same catalogue price."""
        by_no = {ln.line_no: ln for ln in order.lines}
        for n in exchange_to:
            if n not in wanted:
                raise CommandError(f"line {n} is not in the case: only its lines are exchanged")
        out = {n: exchange_to.get(n) or by_no[n].sku for n in wanted}
        products = {p.sku: p for p in s.scalars(select(Product).where(
            Product.sku.in_({*out.values(), *(by_no[n].sku for n in out)})))}
        for n, sku in out.items():
            if sku == by_no[n].sku:
                continue
            new, old = products.get(sku), products.get(by_no[n].sku)
            if new is None or not new.active:
                raise CommandError(f"line {n}: no active product '{sku}' to exchange it for")
            if old is None or (new.price, new.currency) != (old.price, old.currency):
                raise CommandError(f"line {n}: '{sku}' is not priced as '{by_no[n].sku}' in the catalogue; an "
                                   f"exchange for another price is a return and a new order")
        return out

    def make(self, s: Session, case: AftersalesCase, order: Order, actor: str) -> None:
        """Create the replacement of ``case`` (an exchange of ``order``), its stock reserved, held until the goods
        are back."""
        by_no = {ln.line_no: ln for ln in order.lines}
        contact = dict(order.contact or {})
        customer = order.customer
        canon = CanonicalOrder(
            channel=order.channel, external_id=case.number, currency=order.currency,
            customer=CanonicalCustomer(ref=customer.ref, name=contact.get("name") or customer.name or "",
                                       email=contact.get("email") or customer.email or "",
                                       phone=contact.get("phone") or customer.phone or ""),
            ship_to=CanonicalAddress.model_validate(order.ship_to or {}),
            lines=tuple(CanonicalLine(sku=str(ln["sku"]), quantity=int(ln["quantity"]), unit_price=0,
                                      name=by_no[int(ln["line_no"])].name if ln["sku"] == by_no[int(ln["line_no"])].sku
                                      else None) for ln in case.lines),
            payment=CanonicalPayment(transaction_id=f"{REPLACEMENT}:{case.number}", amount=0, method=REPLACEMENT),
            note=f"replacement for after-sales case {case.number} of order {order.number}")
        pre = self.creator.prefetch(s, order.channel, [canon], {ln.sku: ln.sku for ln in canon.lines})
        [made] = self.creator.create_many(s, [(canon, canon.content_hash(), None)], pre)
        if isinstance(made, OmsError):
            raise CommandError(f"the replacement of case {case.number} cannot be created: {made}")
        case.replacement = made.number
        if isinstance(made, Seen) or made.status != State.PAID.value:
            return      # made before (a retried transaction), or held at intake (no stock): it waits as it is
        made.hold_reason = f"exchange: waits for the goods of case {case.number} to come back"
        made.hold_stage = HoldStage.EXCHANGE.value
        self.machine.fire(s, made, Event.HOLD, actor=actor, cause=made.hold_reason)

    def release(self, s: Session, case: AftersalesCase, actor: str) -> None:
        """The goods are back: the replacement, still held for them, goes on."""
        replacement = get_order(s, case.replacement or "", lock=True)
        if replacement.status == State.ON_HOLD.value and replacement.hold_stage == HoldStage.EXCHANGE.value:
            replacement.stage = resume(replacement.hold_stage).value
            self.machine.fire(s, replacement, Event.RELEASE, actor=actor,
                              cause=f"the goods of case {case.number} are back")

    def cancel(self, s: Session, case: AftersalesCase, actor: str) -> None:
        """Cancel the replacement; CommandError when it has gone too far to be."""
        replacement = get_order(s, case.replacement or "", lock=True)
        if replacement.status == State.CANCELLED.value:
            return
        try:
            self.machine.fire(s, replacement, Event.CANCEL, actor=actor, cause=f"case {case.number} cancelled")
        except IllegalTransition:
            raise CommandError(f"the replacement {replacement.number} of case {case.number} is "
                               f"{replacement.status.replace('_', ' ')}: the case cannot be cancelled now") from None

    @staticmethod
    def status(s: Session, case: AftersalesCase) -> str | None:
        return s.scalar(select(Order.status).where(Order.number == case.replacement))

    @staticmethod
    def reissue_invoice(s: Session, case: AftersalesCase, order: Order, at: datetime) -> None:
        """The replacement delivered: when it named other products, the invoice names them now."""
        by_no = {ln.line_no: ln for ln in order.lines}
        changed = [ln for ln in case.lines if ln.get("sku") and ln["sku"] != by_no[int(ln["line_no"])].sku]
        if not changed:
            return
        names = {r.sku: r.name for r in s.execute(select(Product.sku, Product.name).where(
            Product.sku.in_({str(ln["sku"]) for ln in changed})))}
        swaps = [(by_no[int(ln["line_no"])].sku, str(ln["sku"]), names.get(str(ln["sku"]), str(ln["sku"])),
                  int(ln["quantity"])) for ln in changed]
        reissue(s, ledger.owner_id(order), swaps, f"exchange {case.number}", at)

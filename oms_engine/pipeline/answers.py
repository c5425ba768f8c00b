"""A tax platform's answers given while an e-invoice is sent, applied in the transaction that records it sent.

A platform that answers a submission at once (the HTTP platform's response, the simulated one) hands its answer
to ``ctx.receive_callback`` during ``send``. Stored in the inbox, it would cost an insert, a claim, a parse and
an update per invoice, and wait for the inbox's next turn; the e-invoice stage applies it there and then
instead, with the batch's invoices read in one query before the first is sent. The invoice keeps what the answer
said (its official number, or the refusal's reason); what went over the wire is on the exchange.

What is not such an answer goes to the inbox as before, where it is kept with its outcome: a callback of
another kind, one the connector cannot read, or one an event of which would be rejected (an invoice of
another order, an unknown status). Answers that come later, by the platform calling back, come through
the inbox too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..fulfilment.callbacks import Callbacks, Unreadable
from ..invoices.submission import read_states, rejection, settle
from ..messaging.outbox import Topic
from ..plugin.faults import PluginFault
from ..plugin.registry import RegistryError

EINVOICE = "einvoice"


class SentAnswers:
    def __init__(self, *, callbacks: Callbacks, clock: Clock) -> None:
        self.callbacks, self.clock = callbacks, clock

    def prepare(self, s: Session, messages: Iterable[Any]) -> None:
        """Read how the invoices of a batch about to be sent stand, in one query."""
        read_states(s, (str(m.payload.get("invoice") or "") for m in messages
                        if m.topic == Topic.TAX_EINVOICE and isinstance(m.payload, dict)))

    def take(self, s: Session, source: str, payload: Any) -> bool:
        """Apply ``payload``, a callback ``source`` gave while sending, when it is answers about e-invoices that
        all apply; False (nothing done) for anything else, which then goes to the inbox."""
        try:
            events = list(self.callbacks.parse(source, payload))
        except (Unreadable, RegistryError, PluginFault):
            return False
        if not events or any(ev.kind != EINVOICE for ev in events):
            return False
        now = self.clock.now()
        # A callback with an answer that would be rejected is left whole to the inbox, which applies the rest
        # and keeps why. One answer alone (the usual) is simply tried: settle writes nothing when it rejects.
        if len(events) > 1 and any(rejection(s, ev.order_number, ev.status, ev.data) is not None for ev in events):
            return False
        return not any(settle(s, ev.order_number, ev.status, ev.data, now).startswith("rejected")
                       for ev in events)


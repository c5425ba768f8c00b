"""Telling the shops what became of their orders: shipments and tracking, cancellations and refunds.

A channel account reports when it has a url (its API), ``report_status`` is not
turned off, and its adapter has a ``report`` method (plugin/contracts.py:
Reporter). For the orders of such an account, the order machine asks
:meth:`ChannelReports.transition` on every transition, and a report is queued
in the outbox (kind ``channel``, its target the account) in the transition's
transaction:

* shipped: ``channel.shipment``, with the carrier, the tracking number and the
  lines shipped in the channel's words (a split's child reports its own lines:
  the shop sees a partial fulfilment);
* a later step the status map marks as one the customer sees (in transit, out
  for delivery, delivered, refused at the door): ``channel.tracking``, with the
  status map's label;
* cancelled here (rejected in review, cancelled by a person, stopped in the
  warehouse): ``channel.cancel``; a split's child cancels its own lines. What the
  channel itself cancelled is not told back to it.

Refunds go the same way when the channel took the customer's money
(``refund_at_channel``, the default): payments/refunds.py queues
``channel.refund`` for the account instead of the payment connector, and the
refund is paid back, with the channel's reference, when the adapter answers; a
refusal for good fails it, for a person to see in ``oms order show``.

The reports leave in a stage of their own (``channels``), in order per order:
a marketplace that is down holds back no warehouse document, and a shop never
hears of a delivery before the shipment. A report can come twice (a worker
killed after sending it): adapters ask the channel before they change anything.
An account that does not report costs the machine one set look-up per
transition, and a deployment with none, nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..orders.states import State
from ..plugin.contracts import ChannelReport, MessageRefused
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry, RegistryError
from ..storage.models import ChannelFields, Order, OrderLine, OutboxMessage
from .accounts import AccountError, Accounts

if TYPE_CHECKING:
    from ..payments.refunds import Owed, Refunds

log = logging.getLogger("oms.channels")

# The steps after shipping a shop can show its customer, when the status map marks them customer-visible.
TRACKED = frozenset({State.IN_TRANSIT.value, State.OUT_FOR_DELIVERY.value, State.DELIVERED.value,
                     State.REFUSED.value})
CHANNEL_ACTOR = "channel:"     # orders/updates.py: what the channel itself said of an order


class ChannelReports:
    def __init__(self, *, accounts: Accounts, plugins: PluginRegistry, outbox: OutboxWriter,
                 reporting: Mapping[str, bool], transport: httpx.BaseTransport | None = None) -> None:
        """``reporting``: the accounts that report, each with whether refunds are made at the channel;
        ``transport``: an httpx transport for the reports' requests (None: the network)."""
        self.accounts, self.plugins, self.outbox = accounts, plugins, outbox
        self.reporting = frozenset(reporting)
        self.at_channel = frozenset(n for n, at_channel in reporting.items() if at_channel)
        self.transport = transport
        self.refunds: Refunds | None = None     # settles the refunds a channel made (set by the OMS)
        self._clients: dict[str, httpx.Client] = {}

    @classmethod
    def configured(cls, accounts: Accounts, plugins: PluginRegistry, outbox: OutboxWriter) -> ChannelReports | None:
        """The reports config ``channel_accounts`` asks for, or None when no account reports (its orders or its
        stock, channels/stock_push.py)."""
        reporting: dict[str, bool] = {}
        stock = False
        for name, acc in sorted(accounts.config.channel_accounts.items()):
            if not (acc.url and callable(getattr(accounts.adapter(name), "report", None))):
                continue
            if acc.report_status:
                reporting[name] = acc.refund_at_channel
            stock = stock or bool(acc.push_stock)
        if not (reporting or stock):
            return None
        return cls(accounts=accounts, plugins=plugins, outbox=outbox, reporting=reporting)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- what happened -----------------------------------------------------------------------------------------
    def transition(self, s: Session, order: Order, event: str, target: str, actor: str, cause: str,
                   seen: tuple[bool, str]) -> None:
        """An order of any channel moved to ``target``: queue what its shop should hear of it, if anything."""
        if order.channel not in self.reporting or actor.startswith(CHANNEL_ACTOR):
            return
        if target == State.SHIPPED.value:
            self._queue(s, order, Topic.CHANNEL_SHIPMENT, {
                "carrier": order.carrier or "", "tracking_no": order.tracking_no or "",
                "shipped_at": _iso(order.updated_at), "label": seen[1] or "Shipped",
                "lines": self._lines(s, order)})
        elif target in TRACKED and seen[0]:
            self._queue(s, order, Topic.CHANNEL_TRACKING, {
                "status": target, "label": seen[1], "tracking_no": order.tracking_no or "",
                "carrier": order.carrier or "", "at": _iso(order.updated_at)})
        elif target == State.CANCELLED.value and event != "children_cancelled":
            # A split's parent is cancelled when its last child is: each child told the shop of its own lines.
            whole = order.parent_id is None
            self._queue(s, order, Topic.CHANNEL_CANCEL, {
                "reason": cause[:300], "whole": whole, "lines": [] if whole else self._lines(s, order)})

    def refunding(self, s: Session, order: Any) -> ChannelReports | None:
        """Self when the refunds of ``order`` (the payments' order: its id and number) are made at its channel,
        else None."""
        channel = s.scalar(select(Order.channel).where(Order.id == order.id))
        return self if channel in self.at_channel else None

    def queue_refund(self, s: Session, order: Any, owed: Owed) -> None:
        """A refund owed of ``order`` (the payments' order: its id and number), to be made at its channel."""
        row = s.get(Order, order.id)
        assert row is not None
        self._queue(s, row, Topic.CHANNEL_REFUND, {
            "refund": owed.serial, "payment": owed.payment, "amount": owed.amount, "currency": owed.currency,
            "method": owed.method, "for_order": owed.for_order, "reason": owed.reason})

    def _queue(self, s: Session, order: Any, topic: Topic, data: dict[str, Any]) -> None:
        root = _root(s, order)
        payload = {"external_id": root.external_id, "order_number": order.number, "channel_order": root.number,
                   **data}
        self.outbox.enqueue(s, order, Kind.CHANNEL, order.channel, topic, payload)

    @staticmethod
    def _lines(s: Session, order: Order) -> list[dict[str, Any]]:
        """The order's lines as its channel knows them: its SKU and its own line id (by the channel's SKU for a
        split's child, whose lines are numbered anew)."""
        root_id = order.parent_id if order.parent_id is not None else order.id
        kept = s.get(ChannelFields, root_id)
        ids: dict[str, str] = {}
        if kept is not None and kept.lines:
            numbered = {str(n): sku for n, sku in s.execute(select(OrderLine.line_no, OrderLine.channel_sku)
                                                            .where(OrderLine.order_id == root_id))}
            for no, fields in kept.lines.items():
                if isinstance(fields, dict) and fields.get("id") and no in numbered:
                    ids.setdefault(numbered[no], str(fields["id"]))
        return [{"sku": ln.channel_sku or ln.sku, "quantity": ln.quantity, "line_id": ids.get(ln.channel_sku)}
                for ln in sorted(order.lines, key=lambda ln: ln.line_no)]

    # -- delivering --------------------------------------------------------------------------------------------
    def deliver(self, s: Session, msg: Any, now: datetime) -> None:
        """Send one report (an outbox row of kind ``channel``) through its account's adapter. Raises as the
        outbox stage expects: RegistryError or PluginFault to try again later, a PluginFault of MessageRefused
        when the channel refused it for good."""
        name = msg.target
        try:
            account = self.accounts.account(name)
            adapter = self.accounts.adapter(name)
        except AccountError as exc:
            raise RegistryError(str(exc)) from None
        report = getattr(adapter, "report", None)
        if not callable(report):
            raise RegistryError(f"channel account '{name}': its adapter '{adapter.name}' cannot report to it")
        p = msg.payload
        message = ChannelReport(msg.id, msg.order_number, str(p.get("external_id") or ""), msg.topic, p)
        try:
            with blame(self.plugins.channels.plugin_of(adapter.name), f"channel '{name}' report"):
                reference = report(account, message, self._client(name, account.timeout))
        except PluginFault as fault:
            if msg.topic == Topic.CHANNEL_REFUND and isinstance(fault.error, MessageRefused) and self.refunds:
                self.refunds.settle(s, str(p.get("channel_order") or ""), "refused",
                                    {"refund": p.get("refund"), "reason": str(fault.error)}, now, CHANNEL_ACTOR + name)
            raise
        if msg.topic == Topic.CHANNEL_REFUND and self.refunds is not None:
            self.refunds.settle(s, str(p.get("channel_order") or ""), "refunded",
                                {"refund": p.get("refund"), "provider_ref": reference}, now, CHANNEL_ACTOR + name)
        if reference:
            # What the channel made of it (a fulfillment's id, the SKUs a stock push skipped), kept on the message
            # for whoever looks at it later.
            s.execute(update(OutboxMessage).where(OutboxMessage.id == msg.id)
                      .values(payload={**p, "answer": str(reference)[:2000]}),
                      execution_options={"synchronize_session": False})

    def _client(self, name: str, timeout: float) -> httpx.Client:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                                        transport=self.transport,
                                                        headers={"User-Agent": "oms-engine"})
        return client


def _root(s: Session, order: Any) -> Any:
    """The order as its channel sent it: a split's parent for a child."""
    while getattr(order, "parent_id", None) is not None:
        parent = s.get(Order, order.parent_id)
        if parent is None:
            break
        order = parent
    return order


def _iso(t: datetime | None) -> str:
    return t.isoformat(timespec="seconds") + "Z" if t is not None else ""

"""Documents of goods in and out that a warehouse works: purchase orders, returns to vendors, customer returns.

Creating one stores it and queues it for the warehouse's WMS in the same
transaction (with the items and supplier that WMS lacks, master_sync.py).
What the warehouse then reports is what moves the stock: a receipt posts the
quantities actually received (``purchase_receipt`` at the purchase's unit
cost, ``customer_return`` for a customer return), a return to a vendor posts
``return_to_vendor`` when the goods have left. Each report is recorded on
the document's lines (``done``) and in the ledger with the document's number;
a second report of the same callback does nothing (the inbox sees to that).
Receiving more than expected, or a SKU the document does not list, is posted
as received and said in the outcome: the goods are there.

A customer return's report line may give its ``condition``: ``good`` (the
default) or ``damaged``. Damaged units count as received on the document's
line but go to the damaged status (``return_damaged``, stock/damaged.py), not
back into sellable stock; they need no lot (one reported is not kept: damaged
goods are kept without lots), and the outcome says how many there were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import OmsError
from ..messaging.outbox import Kind, OutboxWriter, Topic
from ..money import MoneyError, decimal_text, to_minor
from ..stock import damaged, lots
from ..stock.batch import StockError
from ..stock.ledger import post
from ..stock.movements import Movement
from ..stock.warehouses import WarehouseCache
from ..storage.db import Database
from ..storage.models import Order, Product, StockDocument, StockDocumentLine, Supplier, Warehouse
from . import documents, master_sync


class DocKind(StrEnum):
    PURCHASE_ORDER = "purchase_order"
    RETURN_TO_VENDOR = "return_to_vendor"
    CUSTOMER_RETURN = "customer_return"


PREFIX = {DocKind.PURCHASE_ORDER: "PO", DocKind.RETURN_TO_VENDOR: "RTV", DocKind.CUSTOMER_RETURN: "RMA"}
TOPIC = {DocKind.PURCHASE_ORDER: Topic.WMS_PURCHASE_ORDER, DocKind.RETURN_TO_VENDOR: Topic.WMS_RETURN_TO_VENDOR,
         DocKind.CUSTOMER_RETURN: Topic.WMS_CUSTOMER_RETURN}
# What a warehouse's report on each kind of document posts.
POSTS = {DocKind.PURCHASE_ORDER: Movement.PURCHASE_RECEIPT, DocKind.CUSTOMER_RETURN: Movement.CUSTOMER_RETURN,
         DocKind.RETURN_TO_VENDOR: Movement.RETURN_TO_VENDOR}
# The condition a report line may give its units (customer returns only may say damaged).
GOOD, DAMAGED = "good", "damaged"


class Status(StrEnum):
    OPEN = "open"          # queued for the warehouse
    PARTIAL = "partial"    # some of it received (or sent)
    DONE = "done"          # all of it
    CANCELLED = "cancelled"
    REFUSED = "refused"    # the warehouse would not take it


class DocumentError(OmsError, ValueError):
    pass


@dataclass(frozen=True)
class LineIn:
    sku: str
    quantity: int
    unit_cost: str | None = None    # a purchase's price, a decimal amount in the product's currency
    lot: str | None = None          # a lot-tracked product's lot (expected, or to send back)
    expires_on: date | None = None


def parse_line(text: str) -> LineIn:
    """``SKU:QUANTITY[:UNIT_COST][@LOT[/EXPIRES]]`` (the command line's form), e.g.
    ``ICE-1:100:12.00@L7/2027-03-01``."""
    text, _, lotted = text.partition("@")
    parts = text.rsplit(":", 2) if text.count(":") >= 2 else text.rsplit(":", 1)
    if len(parts) < 2 or not parts[0]:
        raise DocumentError(f"line '{text}': write SKU:QUANTITY or SKU:QUANTITY:UNIT_COST, and @LOT/EXPIRES for a lot")
    try:
        qty = int(parts[1])
    except ValueError:
        raise DocumentError(f"line '{text}': the quantity must be a whole number") from None
    lot, _, expires = lotted.partition("/")
    try:
        expiry = date.fromisoformat(expires) if expires else None
    except ValueError:
        raise DocumentError(f"line '{text}': the expiry '{expires}' is not a date (YYYY-MM-DD)") from None
    return LineIn(parts[0], qty, parts[2] if len(parts) == 3 else None, lot or None, expiry)


def document_dict(doc: StockDocument) -> dict[str, Any]:
    return {"number": doc.number, "kind": doc.kind, "warehouse": doc.warehouse, "supplier": doc.supplier,
            "order_number": doc.order_number, "status": doc.status,
            "expected_at": doc.expected_at.isoformat() if doc.expected_at else None, "note": doc.note,
            "actor": doc.actor, "created_at": doc.created_at.isoformat(), "updated_at": doc.updated_at.isoformat(),
            "lines": [{"line_no": ln.line_no, "sku": ln.sku, "quantity": ln.quantity, "done": ln.done,
                       "unit_cost": ln.unit_cost, "lot": ln.lot,
                       "expires_on": ln.expires_on.isoformat() if ln.expires_on else None} for ln in doc.lines]}


class StockDocuments:
    def __init__(self, *, db: Database, clock: Clock, outbox: OutboxWriter, warehouses: WarehouseCache,
                 wants_master_data: Any) -> None:
        """``wants_master_data(connector name) -> bool``: whether that WMS is sent items and suppliers."""
        self.db, self.clock, self.outbox, self.warehouses = db, clock, outbox, warehouses
        self.wants_master_data = wants_master_data

    # -- creating ----------------------------------------------------------------------------------
    def create(self, kind: DocKind, warehouse: str, lines: Sequence[LineIn], *, actor: str,
               supplier: str | None = None, order_number: str | None = None, expected_at: datetime | None = None,
               note: str = "") -> dict[str, Any]:
        if not lines:
            raise DocumentError("a document needs at least one line")

        def run() -> dict[str, Any]:
            with self.db.session() as s:
                doc = self._make(s, kind, warehouse, lines, actor=actor, supplier=supplier,
                                 order_number=order_number, expected_at=expected_at, note=note)
                self.queue(s, doc)
                return document_dict(doc)

        return self.db.run_retrying(run, what=f"{kind.value} for {warehouse}")

    def make(self, s: Session, kind: DocKind, warehouse: str, lines: Sequence[LineIn], *, actor: str,
             supplier: str | None = None, order_number: str | None = None, expected_at: datetime | None = None,
             note: str = "") -> StockDocument:
        """A document made in the caller's transaction (queue it with :meth:`queue`): an after-sales case's
        return."""
        if not lines:
            raise DocumentError("a document needs at least one line")
        return self._make(s, kind, warehouse, lines, actor=actor, supplier=supplier, order_number=order_number,
                          expected_at=expected_at, note=note)

    def _make(self, s: Session, kind: DocKind, warehouse: str, lines: Sequence[LineIn], *, actor: str,
              supplier: str | None, order_number: str | None, expected_at: datetime | None,
              note: str) -> StockDocument:
        if s.get(Warehouse, warehouse) is None:
            raise DocumentError(f"no warehouse '{warehouse}'")
        if kind in (DocKind.PURCHASE_ORDER, DocKind.RETURN_TO_VENDOR):
            if not supplier:
                raise DocumentError(f"a {kind.value.replace('_', ' ')} names its supplier")
            record = s.get(Supplier, supplier)
            if record is None or not record.active:
                raise DocumentError(f"no active supplier '{supplier}'")
        if kind is DocKind.CUSTOMER_RETURN and (
                not order_number or s.scalar(select(Order.id).where(Order.number == order_number)) is None):
            raise DocumentError(f"no order '{order_number}' to take goods back from")
        now = self.clock.now()
        doc = StockDocument(number=f"tmp-{now.timestamp()}", kind=kind.value, warehouse=warehouse, supplier=supplier,
                            order_number=order_number, status=Status.OPEN.value, expected_at=expected_at,
                            note=note, actor=actor, created_at=now, updated_at=now)
        for n, ln in enumerate(_without_kits(s, lines), start=1):
            product = s.get(Product, ln.sku)
            if product is None:
                raise DocumentError(f"line {n}: no product '{ln.sku}' in the catalogue")
            if ln.quantity <= 0:
                raise DocumentError(f"line {n}: the quantity must be positive, got {ln.quantity}")
            cost = None
            if ln.unit_cost is not None:
                if kind is not DocKind.PURCHASE_ORDER:
                    raise DocumentError(f"line {n}: only a purchase order states a unit cost")
                try:
                    cost = to_minor(ln.unit_cost, product.currency)
                except MoneyError as exc:
                    raise DocumentError(f"line {n}: unit cost: {exc}") from None
            doc.lines.append(StockDocumentLine(line_no=n, sku=ln.sku, quantity=ln.quantity, done=0, unit_cost=cost,
                                               lot=ln.lot, expires_on=ln.expires_on))
        s.add(doc)
        s.flush()
        doc.number = f"{PREFIX[kind]}-{doc.id:06d}"   # numbered by its row: unique across processes
        s.flush()
        return doc

    def queue(self, s: Session, doc: StockDocument) -> None:
        """The document, queued for its warehouse's WMS (with the master data that WMS lacks)."""
        kind = DocKind(doc.kind)
        route = self.warehouses.wms(s, doc.warehouse)
        names = dict(s.execute(select(Product.sku, Product.name).where(
            Product.sku.in_([ln.sku for ln in doc.lines]))).all())
        payload = documents.stock_document(doc, names)
        if self.wants_master_data(route.connector):
            carried = master_sync.missing(s, doc.warehouse, [ln.sku for ln in doc.lines], doc.supplier)
            if carried:
                payload["master"] = carried
        self.outbox.enqueue(s, None, Kind.CONNECTOR, route.connector, TOPIC[kind], payload)

    def cancel(self, number: str, *, actor: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with self.db.session() as s:
                doc = self._get(s, number, lock=True)
                if doc.status not in (Status.OPEN.value, Status.REFUSED.value):
                    raise DocumentError(f"{number} is {doc.status}: only a document nothing was done on yet is "
                                        "cancelled")
                doc.status, doc.updated_at = Status.CANCELLED.value, self.clock.now()
                doc.note = (doc.note + f"\ncancelled by {actor}").strip()
                return document_dict(doc)

        return self.db.run_retrying(run, what=f"cancel of {number}")

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _get(s: Session, number: str, *, lock: bool = False) -> StockDocument:
        stmt = select(StockDocument).where(StockDocument.number == number)
        doc = s.scalars(stmt.with_for_update() if lock else stmt).first()
        if doc is None:
            raise DocumentLookup(f"no document '{number}'")
        return doc

    def get(self, number: str) -> dict[str, Any]:
        with self.db.read() as s:
            return document_dict(self._get(s, number))

    def list(self, *, kind: str | None = None, status: str | None = None, warehouse: str | None = None,
             limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        return self.page(kind=kind, status=status, warehouse=warehouse, limit=limit, before_id=before_id)[0]

    def page(self, *, kind: str | None = None, status: str | None = None, warehouse: str | None = None,
             limit: int = 100, before_id: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Documents, newest first, and the id the next page starts before (None: no more). The answer has no
        ids, so the id is given apart; ids only grow, so a page never repeats or skips a document."""
        stmt = select(StockDocument).order_by(StockDocument.id.desc()).limit(limit + 1)
        for col, val in ((StockDocument.kind, kind), (StockDocument.status, status),
                         (StockDocument.warehouse, warehouse)):
            if val:
                stmt = stmt.where(col == val)
        if before_id:
            stmt = stmt.where(StockDocument.id < before_id)
        with self.db.read() as s:
            found = list(s.scalars(stmt))
            return [document_dict(d) for d in found[:limit]], (found[limit - 1].id if len(found) > limit else None)

    def open_quantities(self, s: Session, warehouse: str) -> dict[str, dict[str, int]]:
        """sku -> {document kind: quantity not yet done} of the warehouse's open documents (reconciliation
        reads it: goods a warehouse counted that the OMS has not been told of)."""
        out: dict[str, dict[str, int]] = {}
        rows = s.execute(select(StockDocument.kind, StockDocumentLine.sku,
                                func.sum(StockDocumentLine.quantity - StockDocumentLine.done))
                         .join(StockDocumentLine, StockDocumentLine.document_id == StockDocument.id)
                         .where(StockDocument.warehouse == warehouse,
                                StockDocument.status.in_([Status.OPEN.value, Status.PARTIAL.value]))
                         .group_by(StockDocument.kind, StockDocumentLine.sku))
        for kind, sku, left in rows:
            if left and left > 0:
                out.setdefault(sku, {})[kind] = int(left)
        return out


class DocumentLookup(DocumentError, LookupError):
    pass


def _without_kits(s: Session, lines: Sequence[LineIn]) -> list[LineIn]:
    """A kit on a document is its components: a warehouse keeps, counts and receives those."""
    out: list[LineIn] = []
    for ln in lines:
        product = s.get(Product, ln.sku)
        if product is not None and product.components and ln.quantity > 0:
            if ln.unit_cost is not None:
                raise DocumentError(f"'{ln.sku}' is a kit: state the unit costs of its components instead")
            out += [LineIn(c["sku"], c["quantity"] * ln.quantity) for c in product.components]
        else:
            out.append(ln)
    return out


def apply_report(s: Session, *, warehouse: str | None, document: str, lines: Any, at: datetime,
                 order_id_of: Any = None) -> str:
    """A warehouse's report on a goods-in or goods-out document (a receipt, or goods sent out): the
    quantities posted to the ledger, the document brought up to date. Returns the outcome; raises
    DocumentError (nothing written) when the report cannot be applied."""
    doc = s.scalars(select(StockDocument).where(StockDocument.number == document).with_for_update()).first()
    if doc is None:
        raise DocumentError(f"no document '{document}'")
    if warehouse is not None and doc.warehouse != warehouse:
        raise DocumentError(f"{document} is for {doc.warehouse}, not {warehouse}")
    if doc.status in (Status.CANCELLED.value, Status.REFUSED.value):
        raise DocumentError(f"{document} is {doc.status}")
    if not isinstance(lines, list) or not lines:
        raise DocumentError(f"{document}: the report lists no lines")
    kind = DocKind(doc.kind)
    if kind is DocKind.CUSTOMER_RETURN and doc.status == Status.DONE.value:
        # Every unit a customer sends back is received once: a person may have recorded them at the counter
        # before the warehouse's own report came.
        return f"ignored: {document} was received in full already"
    by_sku = {ln.sku: ln for ln in doc.lines}
    posted: list[str] = []
    notes: list[str] = []
    broken_units = 0
    order_id = order_id_of(doc.order_number) if doc.order_number and order_id_of else None
    for n, item in enumerate(lines, start=1):
        sku = item.get("sku") if isinstance(item, dict) else None
        qty = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(sku, str) or not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise DocumentError(f"{document}: a line needs a sku and a positive whole quantity, got {item!r}")
        broken = _damaged(document, n, item, kind)
        line = by_sku.get(sku)
        if line is None:
            if s.get(Product, sku) is None:
                raise DocumentError(f"{document}: no product '{sku}' in the catalogue")
            notes.append(f"{sku} is not on the document")
            cost = None
        else:
            cost = line.unit_cost
            if line.done + qty > line.quantity:
                notes.append(f"{sku}: {line.done + qty} against {line.quantity} expected")
            line.done += qty
        try:
            if broken:
                damaged.post(s, Movement.RETURN_DAMAGED, doc.warehouse, sku, qty, document=doc.number, at=at,
                             order_id=order_id, actor=f"wms:{doc.warehouse}", note="received damaged")
                broken_units += qty
            else:
                for lot, expires, q in _lots_of(s, item, line, kind, doc.warehouse, order_id, sku, qty):
                    post(s, POSTS[kind], doc.warehouse, sku, q, document=doc.number, at=at, order_id=order_id,
                         unit_cost=cost if kind is DocKind.PURCHASE_ORDER else None, actor=f"wms:{doc.warehouse}",
                         lot=lot, expires_on=expires)
        except StockError as exc:
            raise DocumentError(f"{document}: {exc}") from None
        posted.append(f"{qty} {sku}" + (" damaged" if broken else "")
                      + (f" at {decimal_text(cost, _currency(s, sku))}" if cost is not None else ""))
    if broken_units:
        notes.append(f"{broken_units} unit(s) damaged, kept apart from sellable stock")
    complete = all(ln.done >= ln.quantity for ln in doc.lines)
    doc.status = Status.DONE.value if complete else Status.PARTIAL.value
    doc.updated_at = at
    verb = "sent out" if kind is DocKind.RETURN_TO_VENDOR else "received"
    return f"{document} {verb} " + ", ".join(posted) + f" -> {doc.status}" + (f" ({'; '.join(notes)})" if notes else "")


def _damaged(document: str, n: int, item: dict[str, Any], kind: DocKind) -> bool:
    """Whether report line ``n`` says its units came back damaged; DocumentError for any other condition, or
    damaged goods on a document that is not a customer return (a purchase's goods carry their cost, which
    damaged stock has no place for)."""
    condition = item.get("condition", GOOD)
    if condition not in (GOOD, DAMAGED):
        raise DocumentError(f"{document}: line {n} ({item.get('sku')}): the condition must be '{GOOD}' or "
                            f"'{DAMAGED}', got {condition!r}")
    if condition == DAMAGED and kind is not DocKind.CUSTOMER_RETURN:
        raise DocumentError(f"{document}: line {n} ({item.get('sku')}): only a customer return takes goods back "
                            f"{DAMAGED}")
    return bool(condition == DAMAGED)


def _lots_of(s: Session, item: dict[str, Any], line: StockDocumentLine | None, kind: DocKind, warehouse: str,
             order_id: int | None, sku: str, qty: int) -> list[tuple[str | None, date | None, int]]:
    """(lot, expiry, units) a reported line posts: the lot the warehouse reports, else the one the document
    expects; goods back from a customer without one go back into the lots the order shipped."""
    lot = item.get("lot") or (line.lot if line is not None else None)
    expires = item.get("expires_on")
    try:
        expiry = date.fromisoformat(expires) if isinstance(expires, str) and expires else (
            line.expires_on if line is not None else None)
    except ValueError:
        raise StockError(f"{sku}: the expiry '{expires}' is not a date (YYYY-MM-DD)") from None
    if lot or not lots.tracked(s, [sku]):
        return [(str(lot) if lot else None, expiry, qty)]
    if kind is DocKind.CUSTOMER_RETURN and order_id is not None:
        return [(name, None, q) for name, q in lots.split_return(s, order_id, warehouse, sku, qty)]
    raise StockError(f"{sku} is kept in lots: the report names the lot of the {qty} unit(s)")


def _currency(s: Session, sku: str) -> str:
    return s.scalar(select(Product.currency).where(Product.sku == sku)) or "CNY"


def apply_ack(s: Session, *, document: str, accepted: bool, reason: str, at: datetime) -> str:
    doc = s.scalars(select(StockDocument).where(StockDocument.number == document).with_for_update()).first()
    if doc is None:
        return f"{document} acknowledged ({'accepted' if accepted else 'refused'})"
    if not accepted and doc.status == Status.OPEN.value:
        doc.status, doc.updated_at = Status.REFUSED.value, at
        doc.note = (doc.note + f"\nrefused by the warehouse: {reason}").strip()
        return f"{document} refused by the warehouse: {reason}"
    return f"{document} accepted by the warehouse"

"""Stock: balances, the ledger and its verification, the damaged goods kept apart (read); opening balances and
movements by hand, damaged goods scrapped or regraded among them.

Movements go through the stock service (stock/service.py), as the CLI's do:
one transaction each, recorded in the ledger with the caller's actor, the
source document and the note. A movement the stock refuses (not enough
available, an unknown warehouse or SKU) is a 409 with the reason and changes
nothing; a body that is not a movement at all (a field missing, unknown or of
the wrong type, a kind only orders post) is a 400 naming the field.

Stock values and unit costs are answered in minor units of the product's
currency, as the ledger holds them; a unit cost is given as a decimal string.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from flask import Blueprint, Response
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ...masterdata.schemas import Code32
from ...masterdata.service import ImportRefused
from ...orders.canonical import Id64, Note, SingleLine
from ...stock.batch import StockError
from ...stock.closing import totals
from ...stock.movements import COSTED, EFFECTS, Movement
from ...stock.service import MANUAL
from ..auth import ACT, ADMIN, READ, actor, requires, role
from ..errors import ApiError, json_response, problem
from ..openapi import body, operation, query
from ..requests import json_type, oms
from ..schemas import (
    MAX_LIMIT,
    Answer,
    Body,
    DecimalText,
    Limit,
    PageQuery,
    Query,
    QueryFlag,
    Text,
    cursor_id,
    decode_cursor,
    encode_cursor,
    one_of,
    query_int,
)
from .masterdata import SOURCE, body_rows, import_refused

bp = Blueprint("stock", __name__)
TAGS = ["stock"]

DEFAULT_LEDGER = 100
MAX_LEDGER = 1000
# Stock figures are 32-bit columns: a quantity near their limit is a typo, never a delivery.
MAX_QUANTITY = 10**9


def _stock_refused(exc: StockError) -> Response:
    return problem(409, str(exc))


bp.register_error_handler(StockError, _stock_refused)
bp.register_error_handler(ImportRefused, import_refused)


# -- reading a query --------------------------------------------------------------------------------
def _moment(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be an ISO 8601 date or time (UTC unless it says otherwise), such as 2026-11-02 "
                         f"or 2026-11-02T09:00:00Z; got '{value[:40]}'") from None
    try:
        # The ledger's times are naive UTC: an offset given is converted to it.
        return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when
    except OverflowError:
        raise ValueError(f"'{value[:40]}' is past the end of the calendar in UTC") from None


# A date or a time (pydantic's own would also take seconds since 1970, and name its union's members in errors).
Moment = Annotated[datetime, BeforeValidator(_moment)]


def _day(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be a date such as 2026-12-06, got '{value[:40]}'") from None
    if day == date.max:
        raise ValueError("must be a day before 9999-12-31: the last day of the calendar has no end to close it at")
    return day


Day = Annotated[date, BeforeValidator(_day), Field(description="a day (UTC), such as 2026-12-06")]
Warehouse = Annotated[Text | None, Field(description="only this warehouse")]
Sku = Annotated[Text | None, Field(description="only this SKU")]
MovementKind = one_of(*(m.value for m in Movement))


class StockQuery(PageQuery):
    limit: Limit = MAX_LIMIT
    warehouse: Warehouse = None
    sku: Sku = None


class StockRow(Answer):
    warehouse: str
    sku: str
    on_hand: int
    reserved: int
    available: int
    value: int = Field(description="minor units, at average cost")


class StockPage(Answer):
    stock: list[StockRow]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


def _after(cursor: str | None) -> tuple[str, str] | None:
    """A (sku, warehouse) cursor."""
    if cursor is None:
        return None
    sku, warehouse = decode_cursor(cursor, 2)
    return sku, warehouse


def _page(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """A page of (sku, warehouse) rows fetched one more than asked, and the cursor of the next (None: no more)."""
    page = rows[:limit]
    return page, encode_cursor(page[-1]["sku"], page[-1]["warehouse"]) if len(rows) > limit else None


class LedgerQuery(PageQuery):
    limit: query_int(1, MAX_LEDGER, "rows per page") = DEFAULT_LEDGER
    warehouse: Warehouse = None
    sku: Sku = None
    kind: MovementKind | None = None
    since: Moment | None = Field(None, description="from this time (a date: its start); UTC unless it says otherwise")
    until: Moment | None = Field(None, description="before this time (a date: its start)")


class LedgerRow(Answer):
    id: int
    at: str
    kind: str
    warehouse: str
    sku: str
    on_hand_delta: int
    reserved_delta: int
    damaged_delta: int
    value_delta: int = Field(description="minor units")
    unit_cost: int | None = Field(description="minor units")
    order_id: int | None
    document: str | None
    actor: str | None
    note: str | None


class LedgerPage(Answer):
    movements: list[LedgerRow]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


class DamagedQuery(PageQuery):
    limit: Limit = MAX_LIMIT
    warehouse: Warehouse = None
    sku: Sku = None


class DamagedRow(Answer):
    warehouse: str
    sku: str
    quantity: int


class DamagedPage(Answer):
    damaged: list[DamagedRow]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")


class StockDifference(Answer):
    warehouse: str
    sku: str
    figure: str = Field(description="on_hand, reserved, value, reservations or damaged")
    stored: int
    recomputed: int


class StockVerified(Answer):
    ok: bool
    stock_rows: int
    movements: int
    differences: list[StockDifference]


class ClosingQuery(Query):
    day: Day


class ClosingRow(Answer):
    warehouse: str
    sku: str
    on_hand: int
    reserved: int
    value: int
    taken_at: str


class ClosingTotal(Answer):
    skus: int
    on_hand: int
    value: int


class StockClosing(Answer):
    day: str
    totals: dict[str, ClosingTotal] = Field(description="per warehouse")
    stock: list[ClosingRow]


class MovementsCsvQuery(Query):
    day: Day
    all: QueryFlag = Field(False, description="reservations too, not only goods movements")


class OpeningsQuery(Query):
    skip_bad: QueryFlag = Field(False, description="post the good rows and report the bad ones, not post nothing")


class OpeningRowProblem(Answer):
    where: str
    field: str
    message: str


class OpeningsPosted(Answer):
    entity: str
    source: str
    applied: bool
    created: list[str]
    updated: list[str]
    deactivated: list[str]
    unchanged: int
    errors: list[OpeningRowProblem]


class ReconcileQuery(Query):
    partial: QueryFlag = Field(False, description="the snapshot lists some SKUs only")
    post: QueryFlag = Field(False, description="post the unexplained rest of each difference (admin)")


class ReconciledDifference(Answer):
    warehouse: str
    sku: str
    oms_on_hand: int
    wms_quantity: int
    difference: int
    cause: str
    detail: str
    unexplained: int
    posted: bool
    refused: str


class StockReconciliation(Answer):
    warehouses: list[str]
    compared: int
    ok: bool
    differences: list[ReconciledDifference]


# -- balances, the ledger, verification -------------------------------------------------------------
@bp.get("/api/stock")
@requires(READ)
@operation(query=StockQuery, answers={200: StockPage}, tags=TAGS)
def stock() -> Response:
    """On hand, reserved, available and value per SKU and warehouse, in that order, a page at a time."""
    q = query(StockQuery)
    # One more than asked tells whether there is more.
    rows = oms().stock.balances(warehouse=q.warehouse or None, sku=q.sku or None, limit=q.limit + 1,
                                after=_after(q.cursor))
    page, cursor = _page(rows, q.limit)
    return json_response({"stock": page, "next": cursor})


@bp.get("/api/stock/ledger")
@requires(READ)
@operation(query=LedgerQuery, answers={200: LedgerPage}, tags=TAGS)
def ledger() -> Response:
    """Ledger rows, newest first, a page at a time."""
    q = query(LedgerQuery)
    rows = oms().stock.ledger(warehouse=q.warehouse or None, sku=q.sku or None, kind=q.kind, since=q.since,
                              until=q.until, limit=q.limit + 1, before_id=cursor_id(q.cursor))
    more = len(rows) > q.limit
    return json_response({"movements": rows[:q.limit],
                          "next": encode_cursor(rows[q.limit - 1]["id"]) if more else None})


@bp.get("/api/stock/damaged")
@requires(READ)
@operation(query=DamagedQuery, answers={200: DamagedPage}, tags=TAGS)
def damaged() -> Response:
    """Goods back from customers damaged, kept apart from on hand, per SKU and warehouse (none left: not listed)."""
    q = query(DamagedQuery)
    rows = oms().stock.damaged(warehouse=q.warehouse or None, sku=q.sku or None, limit=q.limit + 1,
                               after=_after(q.cursor))
    page, cursor = _page(rows, q.limit)
    return json_response({"damaged": page, "next": cursor})


@bp.get("/api/stock/verify")
@requires(READ)
@operation(answers={200: StockVerified}, tags=TAGS)
def verify() -> Response:
    """Every balance recomputed from the ledger; a difference is a finding, not an error, so still 200."""
    result = oms().stock.verify()
    return json_response({"ok": result.ok, "stock_rows": result.rows, "movements": result.movements,
                          "differences": [d.to_dict() for d in result.differences]})


@bp.get("/api/stock/closing")
@requires(READ)
@operation(query=ClosingQuery, answers={200: StockClosing}, tags=TAGS, refusals=(409,))
def closing() -> Response:
    """A finished day's closing stock per warehouse and SKU, valued: the one taken, else taken now."""
    day = query(ClosingQuery).day
    closings = oms().closings
    rows = closings.stored(day)
    if not rows:
        try:
            closings.close(day)
        except ValueError as exc:
            raise ApiError(409, str(exc)) from None
        rows = closings.stored(day)
    return json_response({"day": day.isoformat(), "totals": totals(rows), "stock": rows})


@bp.get("/api/stock/movements.csv")
@requires(READ)
@operation(query=MovementsCsvQuery, answers={200: None}, tags=TAGS)
def movements_csv() -> Response:
    """The day's goods movements as CSV (text/csv), with their value deltas."""
    q = query(MovementsCsvQuery)
    return Response(oms().closings.movements_csv(q.day, goods_only=not q.all), mimetype="text/csv")


# -- changes -------------------------------------------------------------------------------------
# The rows bodies below are read as ``oms stock import`` reads a file's (masterdata.body_rows): a bad row is one
# problem of a 422 naming where it is, not a 400 for the whole body, so they are not declared as models.
@bp.post("/api/stock/openings")
@requires(ADMIN)
@operation(query=OpeningsQuery, answers={200: OpeningsPosted}, tags=TAGS, refusals=(409, 422))
def openings() -> Response:
    """Opening balances (a row or a list of rows of warehouse, sku, quantity, unit_cost), once per warehouse and
    SKU; 422 posts nothing."""
    skip_bad = query(OpeningsQuery).skip_bad
    rows = body_rows()
    return json_response(oms().openings.import_rows(rows, actor=actor(), source=SOURCE, skip_bad=skip_bad).to_dict())


@bp.post("/api/stock/reconcile")
@requires(ACT)
@operation(query=ReconcileQuery, answers={200: StockReconciliation}, tags=TAGS, refusals=(409, 422))
def reconcile() -> Response:
    """A WMS's stock snapshot (rows of warehouse, sku, quantity) against the OMS, each difference with its cause.

    ``partial=true``: the snapshot lists some SKUs only; ``post=true`` (admin): the unexplained rest of each
    difference is posted as an adjustment. 422 (nothing compared) for a bad row or an unknown warehouse."""
    q = query(ReconcileQuery)
    if q.post and role() not in ADMIN:
        raise ApiError(403, "posting reconciliation adjustments needs the admin role")
    result = oms().reconciler.run(body_rows(), source=SOURCE, partial=q.partial, post=q.post, actor=actor())
    return json_response(result.to_dict())


Document = Annotated[str, Field(strict=True, min_length=1, max_length=64), SingleLine]   # StockMovement.document
Quantity = Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
Lot = Annotated[str, Field(strict=True, min_length=1, max_length=64), SingleLine]       # StockLot.lot


class _MovementIn(Body):
    pass


class ManualMovement(_MovementIn):
    """Goods in or out by hand: a receipt, a customer's return, a return to a vendor, an adjustment."""

    # Fields are checked in this order, so the later ones can read ``kind``.
    kind: Literal[tuple(m.value for m in MANUAL)]  # type: ignore[valid-type]
    warehouse: Code32
    sku: Id64
    quantity: Quantity = Field(description="an adjustment's is signed (negative: fewer on hand)")
    document: Document
    # Whether it has too many decimals for the product's currency, the service says.
    unit_cost: DecimalText | None = None
    lot: Lot | None = None
    expires_on: date | None = None
    note: Annotated[Note, Field(validate_default=True, description="an adjustment's reason, required")] = ""

    @field_validator("quantity")
    @classmethod
    def _signed(cls, value: int, info: ValidationInfo) -> int:
        # movements.py says which kinds carry their own sign.
        kind = info.data.get("kind")
        if kind is not None and EFFECTS[Movement(kind)].signed:
            if value == 0:
                raise ValueError("must not be 0 (negative: fewer on hand)")
        elif value <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator("unit_cost")
    @classmethod
    def _costed(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if value is not None and (kind not in COSTED or info.data.get("quantity", 1) < 0):
            raise ValueError("only goods in at a cost take one: a purchase_receipt, or an adjustment up")
        return value

    @field_validator("note")
    @classmethod
    def _reason(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("kind") == Movement.ADJUSTMENT.value and not value.strip():
            raise ValueError("an adjustment needs its reason here")
        return value


class StockTransfer(_MovementIn):
    """Goods from one warehouse to another."""

    kind: Literal["transfer"]
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
    from_: Annotated[Code32, Field(alias="from")]
    to: Code32
    document: Document
    lot: Lot | None = None
    note: Note = ""


class Stocktake(_MovementIn):
    """A count: on hand becomes ``counted``, the difference posted."""

    kind: Literal["stocktake"]
    warehouse: Code32
    sku: Id64
    counted: Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
    document: Document
    lot: Lot | None = None
    expires_on: date | None = None
    note: Note = ""


class DamagedCleared(_MovementIn):
    """Damaged goods scrapped (written off, sent back) or regraded (back on hand, sellable): never more than are
    damaged (409); a note says why."""

    kind: Literal["scrap", "regrade"]
    warehouse: Code32
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
    document: Document
    note: Note
    lot: Lot | None = Field(None, description="a regrade's, for a product kept in lots")
    expires_on: date | None = None

    @field_validator("note")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why the goods are written off or sellable again")
        return value


_BY_KIND: dict[str, type[_MovementIn]] = {
    **{m.value: ManualMovement for m in MANUAL}, Movement.TRANSFER.value: StockTransfer,
    Movement.STOCKTAKE.value: Stocktake, Movement.SCRAP.value: DamagedCleared, Movement.REGRADE.value: DamagedCleared}
_KINDS = ", ".join(_BY_KIND)


class MovementBody(RootModel[Annotated[ManualMovement | StockTransfer | Stocktake | DamagedCleared,
                                       Field(discriminator="kind")]]):
    """One movement by hand, of the kind ``kind`` names."""

    model_config = ConfigDict(json_schema_extra={"required": ["kind"]})

    @model_validator(mode="wrap")
    @classmethod
    def _by_kind(cls, value: Any, handler: ModelWrapValidatorHandler[MovementBody]) -> MovementBody:
        """Read as the model of its kind, so that a refusal names the field itself (the union would put the kind
        before it) and what the kind is missing, has too many of, or may be."""
        if not isinstance(value, dict):
            return handler(value)   # "the request body must be a JSON object"
        kind = value.get("kind")
        model = _BY_KIND.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise _refused(cls, _kind_refused(kind), kind)
        try:
            model.model_validate(value)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(cls.__name__,
                                                      [_named(e, model, kind) for e in exc.errors()]) from None
        return handler(value)


def _kind_refused(kind: object) -> str:
    if kind is None:
        return f"is required: one of {_KINDS}"
    if isinstance(kind, str) and kind in {m.value for m in Movement}:
        by = "a customer return's receipt" if kind == Movement.RETURN_DAMAGED else "orders"
        return f"'{kind}' movements are posted by {by}, not by hand (by hand: {_KINDS})"
    return f"must be one of {_KINDS}, got {repr(kind)[:40] if isinstance(kind, str) else json_type(kind)}"


def _refused(model: type[MovementBody], message: str, kind: object) -> ValidationError:
    # The message goes in as context: a template would read braces the caller sent as its own.
    error = PydanticCustomError("movement_kind", "{message}", {"message": message})
    return ValidationError.from_exception_data(model.__name__, [InitErrorDetails(type=error, loc=("kind",),
                                                                                 input=kind)])


def _named(err: Any, model: type[_MovementIn], kind: str) -> InitErrorDetails:
    if err["type"] == "extra_forbidden":
        # The fields allowed are the kind's, not the union's.
        allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
        error = PydanticCustomError("unknown_field", "not a field of a {kind} movement; allowed: {allowed}",
                                    {"kind": kind, "allowed": allowed})
    else:
        error = PydanticCustomError(err["type"], "{message}", {"message": err["msg"]})
    return InitErrorDetails(type=error, loc=err["loc"], input=err.get("input"))


class StockPosted(Answer):
    kind: str
    warehouse: str = Field(description="a transfer's: the receiving warehouse")
    sku: str
    quantity: int
    value: int = Field(description="minor units")
    on_hand: int
    available: int
    damaged: int | None = Field(None, description="a scrap's or regrade's: the damaged units left")
    from_: str | None = Field(None, alias="from", description="a transfer's: where the goods came from")


@bp.post("/api/stock/movements")
@requires(ACT)
@operation(body=MovementBody, answers={200: StockPosted}, tags=TAGS, refusals=(409,))
def movement() -> Response:
    """Post one movement by hand; the answer has the figures of its warehouse and SKU after it."""
    given = body(MovementBody).root
    service = oms().stock
    if isinstance(given, StockTransfer):
        posted = service.transfer(given.sku, given.quantity, given.from_, given.to, document=given.document,
                                  actor=actor(), note=given.note, lot=given.lot)
        # The figures are the receiving warehouse's; say where the goods came from too.
        return json_response({**posted.to_dict(), "from": given.from_})
    if isinstance(given, DamagedCleared):
        cleared = service.clear_damaged(Movement(given.kind), given.warehouse, given.sku, given.quantity,
                                        document=given.document, actor=actor(), note=given.note, lot=given.lot,
                                        expires_on=given.expires_on)
        return json_response(cleared.to_dict())
    if isinstance(given, Stocktake):
        posted = service.count(given.warehouse, given.sku, given.counted, document=given.document, actor=actor(),
                               note=given.note, lot=given.lot, expires_on=given.expires_on)
        return json_response(posted.to_dict())
    assert isinstance(given, ManualMovement)
    posted = service.post(Movement(given.kind), given.warehouse, given.sku, given.quantity, document=given.document,
                          actor=actor(), note=given.note, unit_cost=given.unit_cost, lot=given.lot,
                          expires_on=given.expires_on)
    return json_response(posted.to_dict())

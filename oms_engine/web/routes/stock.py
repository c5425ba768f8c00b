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

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ...masterdata.schemas import Code32
from ...masterdata.service import ImportRefused
from ...orders.canonical import Id64, Note, SingleLine
from ...stock.batch import StockError
from ...stock.closing import totals
from ...stock.movements import COSTED, EFFECTS, Movement
from ...stock.service import MANUAL
from ..auth import ACT, ADMIN, READ, actor, requires, role
from ..errors import ApiError, json_response
from ..requests import MAX_LIMIT, body_json, int_param, json_type, oms
from .masterdata import MAX_PAGE, SOURCE, body_rows, flag_param, import_refused

bp = Blueprint("stock", __name__)

DEFAULT_LEDGER = 100
# Stock figures are 32-bit columns: a quantity near their limit is a typo, never a delivery.
MAX_QUANTITY = 10**9
_MOVEMENTS = ", ".join(m.value for m in Movement)


def _stock_refused(exc: StockError) -> Response:
    return json_response({"error": str(exc)}, 409)


bp.register_error_handler(StockError, _stock_refused)
bp.register_error_handler(ImportRefused, import_refused)


# -- balances, the ledger, verification -------------------------------------------------------------
@bp.get("/api/stock")
@requires(READ)
def stock() -> Response:
    """On hand, reserved, available and value per SKU and warehouse, in that order, a page at a time."""
    limit = int_param("limit", MAX_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    after = None
    raw = request.args.get("after") or ""
    if raw:
        sku, sep, warehouse = raw.rpartition("/")   # a warehouse is a code: it has no '/'
        if not sep or not sku or not warehouse:
            raise ApiError(400, f"parameter 'after' must be SKU/WAREHOUSE, the next_after of the page before; "
                                f"got '{raw[:100]}'")
        after = (sku, warehouse)
    # One more than asked tells whether there is more.
    rows = oms().stock.balances(warehouse=request.args.get("warehouse") or None,
                                sku=request.args.get("sku") or None, limit=limit + 1, after=after)
    page = rows[:limit]
    more = len(rows) > limit
    return json_response({"stock": page, "truncated": more,
                          "next_after": f"{page[-1]['sku']}/{page[-1]['warehouse']}" if more else None})


def _time_param(name: str) -> datetime | None:
    raw = request.args.get(name) or ""
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
        # The ledger's times are naive UTC: an offset given is converted to it.
        return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when
    except (ValueError, OverflowError):
        raise ApiError(400, f"parameter '{name}' must be an ISO 8601 date or time (UTC unless it says otherwise), "
                            f"such as 2026-11-02 or 2026-11-02T09:00:00Z; got '{raw[:40]}'") from None


@bp.get("/api/stock/ledger")
@requires(READ)
def ledger() -> Response:
    """Ledger rows, newest first; ``next_before_id`` is the ``before_id`` of the next page (null: no more)."""
    kind = request.args.get("kind") or None
    if kind is not None and kind not in {m.value for m in Movement}:
        raise ApiError(400, f"unknown kind '{kind[:40]}'; valid: {_MOVEMENTS}")
    limit = int_param("limit", DEFAULT_LEDGER, 1, MAX_PAGE)
    assert limit is not None
    rows = oms().stock.ledger(warehouse=request.args.get("warehouse") or None, sku=request.args.get("sku") or None,
                              kind=kind, since=_time_param("since"), until=_time_param("until"), limit=limit + 1,
                              before_id=int_param("before_id", None, 1))
    more = len(rows) > limit
    return json_response({"movements": rows[:limit], "next_before_id": rows[limit - 1]["id"] if more else None})


@bp.get("/api/stock/damaged")
@requires(READ)
def damaged() -> Response:
    """Goods back from customers damaged, kept apart from on hand, per SKU and warehouse (none left: not listed)."""
    limit = int_param("limit", MAX_LIMIT, 1, MAX_LIMIT)
    assert limit is not None
    return json_response({"damaged": oms().stock.damaged(warehouse=request.args.get("warehouse") or None,
                                                         sku=request.args.get("sku") or None, limit=limit)})


@bp.get("/api/stock/verify")
@requires(READ)
def verify() -> Response:
    """Every balance recomputed from the ledger; a difference is a finding, not an error, so still 200."""
    result = oms().stock.verify()
    return json_response({"ok": result.ok, "stock_rows": result.rows, "movements": result.movements,
                          "differences": [d.to_dict() for d in result.differences]})


def _day_param() -> date:
    raw = request.args.get("day") or ""
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"parameter 'day' must be a date such as 2026-12-06, got '{raw[:40]}'") from None


@bp.get("/api/stock/closing")
@requires(READ)
def closing() -> Response:
    """A finished day's closing stock per warehouse and SKU, valued: the one taken, else taken now."""
    day = _day_param()
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
def movements_csv() -> Response:
    """The day's goods movements (``all=true``: reservations too) as CSV, with their value deltas."""
    text = oms().closings.movements_csv(_day_param(), goods_only=not flag_param("all"))
    return Response(text, mimetype="text/csv")


# -- changes -------------------------------------------------------------------------------------
@bp.post("/api/stock/openings")
@requires(ADMIN)
def openings() -> Response:
    """Opening balances, as ``oms stock import`` posts them: once per warehouse and SKU; 422 posts nothing."""
    skip_bad = flag_param("skip_bad")
    rows = body_rows()
    return json_response(oms().openings.import_rows(rows, actor=actor(), source=SOURCE, skip_bad=skip_bad).to_dict())


@bp.post("/api/stock/reconcile")
@requires(ACT)
def reconcile() -> Response:
    """A WMS's stock snapshot (rows of warehouse, sku, quantity) against the OMS: each difference with its likely
    cause. ``partial=true``: the snapshot lists some SKUs only; ``post=true`` (admin): the unexplained rest of each
    difference is posted as an adjustment. 422 (nothing compared) for a bad row or an unknown warehouse."""
    post = flag_param("post")
    if post and role() not in ADMIN:
        raise ApiError(403, "posting reconciliation adjustments needs the admin role")
    result = oms().reconciler.run(body_rows(), source=SOURCE, partial=flag_param("partial"), post=post,
                                  actor=actor())
    return json_response(result.to_dict())


Document = Annotated[str, Field(strict=True, min_length=1, max_length=64), SingleLine]   # StockMovement.document
Quantity = Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
# A decimal amount in the product's currency; whether it has too many decimals for it, the service says.
UnitCost = Annotated[str, Field(strict=True, max_length=40, pattern=r"^[0-9]+(\.[0-9]+)?$")]
Lot = Annotated[str, Field(strict=True, min_length=1, max_length=64), SingleLine]       # StockLot.lot


class _MovementIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ManualIn(_MovementIn):
    """Goods in or out by hand. Fields are checked in this order, so the later ones can read ``kind``."""

    kind: Literal["purchase_receipt", "customer_return", "return_to_vendor", "adjustment"]
    warehouse: Code32
    sku: Id64
    quantity: Quantity
    document: Document
    unit_cost: UnitCost | None = None
    lot: Lot | None = None
    expires_on: date | None = None
    note: Annotated[Note, Field(validate_default=True)] = ""

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


class TransferIn(_MovementIn):
    kind: Literal["transfer"]
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
    from_: Annotated[Code32, Field(alias="from")]
    to: Code32
    document: Document
    lot: Lot | None = None
    note: Note = ""


class StocktakeIn(_MovementIn):
    kind: Literal["stocktake"]
    warehouse: Code32
    sku: Id64
    counted: Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
    document: Document
    lot: Lot | None = None
    expires_on: date | None = None
    note: Note = ""


class ClearDamagedIn(_MovementIn):
    """Damaged goods scrapped (written off, sent back) or regraded (back on hand, sellable): never more than are
    damaged (409); a note says why."""

    kind: Literal["scrap", "regrade"]
    warehouse: Code32
    sku: Id64
    quantity: Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
    document: Document
    note: Note
    lot: Lot | None = None            # a regrade's, for a product kept in lots
    expires_on: date | None = None

    @field_validator("note")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why the goods are written off or sellable again")
        return value


_MODELS: dict[str, type[_MovementIn]] = {**{m.value: ManualIn for m in MANUAL}, Movement.TRANSFER.value: TransferIn,
                                         Movement.STOCKTAKE.value: StocktakeIn, Movement.SCRAP.value: ClearDamagedIn,
                                         Movement.REGRADE.value: ClearDamagedIn}


def _movement_body() -> _MovementIn:
    data = body_json()
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {json_type(data)}")
    kind = data.get("kind")
    if kind is None:
        raise ApiError(400, f"field 'kind' is required: one of {', '.join(_MODELS)}")
    if kind not in _MODELS:
        if isinstance(kind, str) and kind in {m.value for m in Movement}:
            by = "a customer return's receipt" if kind == Movement.RETURN_DAMAGED else "orders"
            raise ApiError(400, f"field 'kind': '{kind}' movements are posted by {by}, not by hand "
                                f"(by hand: {', '.join(_MODELS)})")
        raise ApiError(400, f"field 'kind' must be one of {', '.join(_MODELS)}, got "
                            f"{repr(kind)[:40] if isinstance(kind, str) else json_type(kind)}")
    model = _MODELS[kind]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "; ".join(_problem(model, e) for e in exc.errors())) from None


def _problem(model: type[BaseModel], err: Any) -> str:
    name = ".".join(str(p) for p in err["loc"]) or "(body)"
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
        return f"unknown field '{name[:50]}'; allowed: {allowed}"
    if err["type"] == "missing":
        return f"field '{name}' is required"
    return f"field '{name}': {str(err['msg']).removeprefix('Value error, ')}"


@bp.post("/api/stock/movements")
@requires(ACT)
def movement() -> Response:
    """Post one movement by hand; the answer has the figures of its warehouse and SKU after it."""
    body = _movement_body()
    service = oms().stock
    if isinstance(body, TransferIn):
        posted = service.transfer(body.sku, body.quantity, body.from_, body.to, document=body.document,
                                  actor=actor(), note=body.note, lot=body.lot)
        # The figures are the receiving warehouse's; say where the goods came from too.
        return json_response({**posted.to_dict(), "from": body.from_})
    if isinstance(body, ClearDamagedIn):
        cleared = service.clear_damaged(Movement(body.kind), body.warehouse, body.sku, body.quantity,
                                        document=body.document, actor=actor(), note=body.note, lot=body.lot,
                                        expires_on=body.expires_on)
        return json_response(cleared.to_dict())
    if isinstance(body, StocktakeIn):
        posted = service.count(body.warehouse, body.sku, body.counted, document=body.document, actor=actor(),
                               note=body.note, lot=body.lot, expires_on=body.expires_on)
        return json_response(posted.to_dict())
    assert isinstance(body, ManualIn)
    posted = service.post(Movement(body.kind), body.warehouse, body.sku, body.quantity, document=body.document,
                          actor=actor(), note=body.note, unit_cost=body.unit_cost, lot=body.lot,
                          expires_on=body.expires_on)
    return json_response(posted.to_dict())

"""Master data and the customer blacklist over the API: the same service, checks and history as the CLI.

Every entity of :data:`~oms_engine.masterdata.entities.ENTITIES` gets the same
routes, under ``/api/<entity>`` (``products``, ``warehouses``, ``carriers``,
``services``, ``suppliers``, ``skus``), a record named by its key parts in the
path (``/api/services/SF/COLD``):

======  ==========================  ======  =================================================
GET     /api/E                      read    records in key order, a page at a time
GET     /api/E/<key>                read    one record and its history
POST    /api/E                      admin   create or change full records, as a file import
PATCH   /api/E/<key>                admin   change some fields of one record
POST    /api/E/<key>/deactivate     admin   (and ``/activate``)
======  ==========================  ======  =================================================

A body with a bad record writes nothing and answers 422 with every problem
(where, field, message), as importing a file does; ``?skip_bad=true`` writes
the good ones. Each change is recorded with the caller's actor, and the item
of the body it came from (``request:item 2``) as its source.

A product's ``price`` (and a freight template's amounts) is answered as the decimal string it is given in
(``"59.00"``), in its history too (a template's history: minor units): answered in minor units, a record read,
edited and sent back would come back a hundred times dearer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select

from ...masterdata.entities import ENTITIES, Entity
from ...masterdata.files import Row
from ...masterdata.schemas import freight_input
from ...masterdata.service import ImportRefused, MasterDataError, MasterDataLookup, key_parts
from ...money import decimal_text
from ...orders.customers import CustomerError
from ...storage.models import Customer
from ..auth import ACT, ADMIN, READ, actor, requires
from ..errors import ApiError, json_response
from ..requests import body_json, body_object, int_param, json_type, oms, string_field

bp = Blueprint("masterdata", __name__)

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_PREFIX = 200
MAX_REASON = 2000
# Customer.ref is String(128), and the blacklist refuses anything longer.
MAX_CUSTOMER_REF = 128
# Where a change came from, as its history shows it: the body, or the Nth item of a list body.
SOURCE = "request"
_STATUS: dict[str, bool | None] = {"active": True, "inactive": False, "all": None}
# A channel's SKU is the channel's own text and may hold '/' ("TEE/RED/XL"): the rest of the path is it.
# Every other key part is a code (no '/') or a channel name.
_SLASHED = frozenset({"channel_sku"})
_FLAGS = {"true": True, "1": True, "false": False, "0": False, "": False}


# -- errors ---------------------------------------------------------------------------------
def import_refused(exc: ImportRefused) -> Response:
    """A body (or file) with problems: nothing was written; every problem says where, which field, what."""
    return json_response({"error": exc.report.summary(),
                          "problems": [{"where": e.where, "field": e.field, "message": e.message}
                                       for e in exc.report.errors]}, 422)


def _lookup(exc: MasterDataLookup) -> Response:
    return json_response({"error": str(exc)}, 404)


def _refused(exc: MasterDataError | CustomerError) -> Response:
    # The app maps only order errors; anything else of ours would be a 500 there.
    return json_response({"error": str(exc)}, 400)


bp.register_error_handler(ImportRefused, import_refused)
bp.register_error_handler(MasterDataLookup, _lookup)
bp.register_error_handler(MasterDataError, _refused)
bp.register_error_handler(CustomerError, _refused)


# -- reading a request ------------------------------------------------------------------------
def flag_param(name: str) -> bool:
    raw = (request.args.get(name) or "").strip().lower()
    if raw not in _FLAGS:
        raise ApiError(400, f"parameter '{name}' must be true or false, got '{raw[:40]}'")
    return _FLAGS[raw]


def body_rows() -> list[Row]:
    """The body as records: one object, or a list of them (each a row of its own, numbered from 1).

    An item of a list that is not an object is a bad record like any other (422, or skipped with
    skip_bad), as a bad row of a file is; a body that is neither is not an import at all (400)."""
    data = body_json()
    if isinstance(data, dict):
        return [Row(SOURCE, data)]
    if not isinstance(data, list):
        raise ApiError(400, f"the request body must be a JSON object or a list of objects, got {json_type(data)}")
    return [Row(f"{SOURCE}:item {i}", item) if isinstance(item, dict)
            else Row(f"{SOURCE}:item {i}", {}, f"an object is needed, got {json_type(item)}")
            for i, item in enumerate(data, start=1)]


def _key(ent: Entity, parts: dict[str, str]) -> tuple[str, ...]:
    return tuple(parts[k] for k in ent.keys)


def _after(ent: Entity) -> tuple[str, ...] | None:
    """``after``: the ``next_after`` of the page before, all the key's parts joined by '/'."""
    raw = request.args.get("after") or ""
    if not raw:
        return None
    try:
        return key_parts(ent, raw)
    except MasterDataError as exc:
        raise ApiError(400, f"parameter 'after': {exc}") from None


# -- answers --------------------------------------------------------------------------------
def shown(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the API answers it: its price (if it has one) as the decimal string it is given in.

    The history is newest first, so the currency of each change is found by walking back from the
    record's own: a change of currency says what it was before."""
    if isinstance(record.get("zones"), list) and isinstance(record.get("currency"), str):
        # A freight template's amounts, likewise (history: in minor units, as stored).
        return {**record, **{k: v for k, v in freight_input(record).items() if k in ("zones", "free_above")}}
    if not isinstance(record.get("price"), int) or not isinstance(record.get("currency"), str):
        return record
    currency: str = record["currency"]
    record["price"] = decimal_text(record["price"], currency)
    for change in record.get("history", ()):
        fields = change["changes"]
        before = currency
        if isinstance(fields.get("currency"), list) and isinstance(fields["currency"][0], str):
            before = fields["currency"][0]
        price = fields.get("price")
        if isinstance(price, list) and len(price) == 2:
            fields["price"] = [decimal_text(price[0], before) if isinstance(price[0], int) else price[0],
                               decimal_text(price[1], currency) if isinstance(price[1], int) else price[1]]
        currency = before
    return record


# -- the routes of one entity ----------------------------------------------------------------------
def _routes(ent: Entity) -> None:
    base = f"/api/{ent.plural}"
    one = base + "".join(f"/<path:{k}>" if k in _SLASHED else f"/<{k}>" for k in ent.keys)

    def listing() -> Response:
        status = request.args.get("status") or "active"
        if status not in _STATUS:
            raise ApiError(400, f"unknown status '{status[:40]}'; valid: {', '.join(_STATUS)}")
        prefix = request.args.get("prefix") or None
        if prefix is not None and len(prefix) > MAX_PREFIX:
            raise ApiError(400, f"parameter 'prefix' is longer than {MAX_PREFIX} characters")
        limit = int_param("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        assert limit is not None
        # One more than asked: the page is full only when there is more, so no empty last page is sent.
        rows = oms().masterdata.list(ent.plural, active=_STATUS[status], prefix=prefix, limit=limit + 1,
                                     after=_after(ent))
        more = len(rows) > limit
        items = [shown(r) for r in rows[:limit]]
        last = tuple(items[-1][k] for k in ent.keys) if more else None
        return json_response({"items": items, "next_after": ent.key_text(last) if last else None})

    def show(**parts: str) -> Response:
        return json_response(shown(oms().masterdata.get(ent.plural, _key(ent, parts))))

    def create() -> Response:
        skip_bad = flag_param("skip_bad")
        rows = body_rows()
        report = oms().masterdata.apply(ent.plural, rows, actor=actor(), source=SOURCE, skip_bad=skip_bad)
        return json_response(report.to_dict())

    def change(**parts: str) -> Response:
        key = _key(ent, parts)
        data = body_json()
        if not isinstance(data, dict):
            raise ApiError(400, f"the request body must be a JSON object (the fields to change), got {json_type(data)}")
        _exists(ent, key)
        # The record the URL names is the one changed, whatever key the body repeats.
        row = Row(SOURCE, {**data, **dict(zip(ent.keys, key, strict=True))})
        return json_response(oms().masterdata.apply(ent.plural, [row], actor=actor(), source=SOURCE,
                                                    merge=True).to_dict())

    def toggler(active: bool) -> Callable[..., Response]:
        def toggle(**parts: str) -> Response:
            body_object((), optional=True)   # takes nothing: a stray field is an error, not ignored
            key = _key(ent, parts)
            _exists(ent, key)
            return json_response(oms().masterdata.set_active(ent.plural, key, active, actor=actor(),
                                                             source=SOURCE).to_dict())
        return toggle

    name = ent.plural
    bp.add_url_rule(base, f"{name}_list", requires(READ)(listing), methods=["GET"])
    bp.add_url_rule(base, f"{name}_create", requires(ADMIN)(create), methods=["POST"])
    bp.add_url_rule(one, f"{name}_show", requires(READ)(show), methods=["GET"])
    bp.add_url_rule(one, f"{name}_change", requires(ADMIN)(change), methods=["PATCH"])
    bp.add_url_rule(f"{one}/deactivate", f"{name}_deactivate", requires(ADMIN)(toggler(False)), methods=["POST"])
    bp.add_url_rule(f"{one}/activate", f"{name}_activate", requires(ADMIN)(toggler(True)), methods=["POST"])


def _exists(ent: Entity, key: Sequence[str]) -> None:
    """404 (MasterDataLookup) unless the record exists: a PATCH or a deactivation never creates one.

    Records are never deleted, so one that exists now still does when the change is made."""
    oms().masterdata.get(ent.plural, key, history=0)


for _entity in ENTITIES.values():
    _routes(_entity)


# -- the blacklist ------------------------------------------------------------------------------
@bp.get("/api/blacklist")
@requires(READ)
def blacklist() -> Response:
    rows = oms().blacklist.list(MAX_PAGE + 1)
    return json_response({"items": rows[:MAX_PAGE], "truncated": len(rows) > MAX_PAGE})


def _reason(data: dict[str, Any]) -> str:
    # Required here, not only by the customer history: a customer already so would otherwise be
    # answered "unchanged" without a word about the missing reason.
    return string_field(data, "reason", required=True, max_len=MAX_REASON)


@bp.post("/api/blacklist")
@requires(ACT)
def blacklist_add() -> Response:
    data = body_object(("customer", "reason"))
    ref = string_field(data, "customer", required=True, max_len=MAX_CUSTOMER_REF)
    changed = oms().blacklist.add(ref, reason=_reason(data), actor=actor())
    return json_response({"customer": ref, "blacklisted": True, "changed": changed})


@bp.post("/api/blacklist/<path:ref>/remove")
@requires(ACT)
def blacklist_remove(ref: str) -> Response:
    reason = _reason(body_object(("reason",)))
    ref = ref.strip()
    if not ref or len(ref) > MAX_CUSTOMER_REF:
        raise ApiError(400, f"the customer reference must be 1 to {MAX_CUSTOMER_REF} characters")
    # 404 for a customer the OMS has never seen (customers are never deleted, so this holds below);
    # the blacklist itself says that with the same error as a bad reason.
    with oms().db.read() as s:
        if s.scalar(select(Customer.id).where(Customer.ref == ref)) is None:
            raise ApiError(404, f"no customer '{ref}'")
    changed = oms().blacklist.remove(ref, reason=reason, actor=actor())
    return json_response({"customer": ref, "blacklisted": False, "changed": changed})

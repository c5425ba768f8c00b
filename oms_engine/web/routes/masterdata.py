"""Master data and the customer blacklist over the API: the same service, checks and history as the CLI.

Every entity of :data:`~oms_engine.masterdata.entities.ENTITIES` gets the same
routes, under ``/api/<entity>`` (``products``, ``warehouses``, ``carriers``,
``services``, ``suppliers``, ``skus``, ``freight-templates``), a record named by
its key parts in the path (``/api/services/SF/COLD``):

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
of the body it came from (``request:item 2``) as its source. So the records
are checked by the import, not by the API's models: a records body's model
takes any JSON and only describes the records in the OpenAPI document.

A product's ``price`` (and a freight template's amounts) is answered as the decimal string it is given in
(``"59.00"``), in its history too (a template's history: minor units): answered in minor units, a record read,
edited and sent back would come back a hundred times dearer.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar

from flask import Blueprint, Response, request
from pydantic import BeforeValidator, Field, GetJsonSchemaHandler, RootModel, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlalchemy import select

from ...masterdata.entities import ENTITIES, Entity
from ...masterdata.files import Row
from ...masterdata.schemas import freight_input
from ...masterdata.service import ImportRefused, MasterDataError, MasterDataLookup
from ...money import decimal_text
from ...orders.customers import CustomerError
from ...storage.models import Customer
from ..auth import ACT, ADMIN, READ, actor, requires
from ..errors import ApiError, json_response, problem
from ..openapi import body, operation, query
from ..requests import body_json, json_type, oms
from ..schemas import Answer, Body, Query, QueryFlag, one_of, query_int

bp = Blueprint("masterdata", __name__)

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_PREFIX = 200
MAX_REASON = 2000
# Customer.ref is String(128), and the blacklist refuses anything longer.
MAX_CUSTOMER_REF = 128
# A cursor holds a record's whole key (a channel's SKU may be 64 characters of any script).
MAX_CURSOR = 1000
# Where a change came from, as its history shows it: the body, or the Nth item of a list body.
SOURCE = "request"
_STATUS: dict[str, bool | None] = {"active": True, "inactive": False, "all": None}
# A channel's SKU is the channel's own text and may hold '/' ("TEE/RED/XL"): the rest of the path is it.
# Every other key part is a code (no '/') or a channel name.
_SLASHED = frozenset({"channel_sku"})
_FLAGS = {"true": True, "1": True, "false": False, "0": False, "": False}
TAGS = ["master data"]
# What the document's summaries call an entity's records, where its URL name would not do.
_LABELS = {"skus": "SKU mappings"}
BLACKLIST_TAGS = ["blacklist"]


# -- errors ---------------------------------------------------------------------------------
def import_refused(exc: ImportRefused) -> Response:
    """A body (or file) with problems: nothing was written; every problem says where, which field, what."""
    return problem(422, exc.report.summary(), kind="records-invalid",
                   problems=[{"where": e.where, "field": e.field, "message": e.message} for e in exc.report.errors])


def _lookup(exc: MasterDataLookup) -> Response:
    return problem(404, str(exc))


def _refused(exc: MasterDataError | CustomerError) -> Response:
    # The app maps only order errors; anything else of ours would be a 500 there.
    return problem(400, str(exc))


bp.register_error_handler(ImportRefused, import_refused)
bp.register_error_handler(MasterDataLookup, _lookup)
bp.register_error_handler(MasterDataError, _refused)
bp.register_error_handler(CustomerError, _refused)


# -- reading a request ------------------------------------------------------------------------
def flag_param(name: str) -> bool:
    """A true/false query parameter, for routes not declared with a query model (the routes here use QueryFlag)."""
    raw = (request.args.get(name) or "").strip().lower()
    if raw not in _FLAGS:
        raise ApiError(400, f"parameter '{name}' must be true or false, got '{raw[:40]}'", field=name)
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


def key_cursor(parts: Sequence[str]) -> str:
    """An opaque cursor holding a key of text parts (any text: schemas.encode_cursor's '|' may be in a SKU)."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def cursor_key(cursor: str, n: int) -> tuple[str, ...]:
    """The key of ``n`` parts a cursor of :func:`key_cursor` holds; anything else is a 400."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError):  # not base64, not UTF-8 or not JSON
        parts = None
    if (not isinstance(parts, list) or len(parts) != n
            or not all(isinstance(p, str) and p and _storable(p) for p in parts)):
        raise ApiError(400, "parameter 'cursor' is not a cursor this list gave", field="cursor")
    return tuple(parts)


def _storable(text: str) -> bool:
    # A key compared in SQL: PostgreSQL takes no NUL, and a lone surrogate is no text at all.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


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


# -- models ------------------------------------------------------------------------------------
PageSize = query_int(1, MAX_PAGE, "records per page")
Cursor = Annotated[str, Field(max_length=MAX_CURSOR, description="the `next` of the previous page")]


RecordStatus = one_of(*_STATUS)


class RecordsQuery(Query):
    status: RecordStatus = Field("active", description="the records listed: active (default), inactive or all")
    prefix: Annotated[str, Field(max_length=MAX_PREFIX, description="the start of the key's first part")] | None = None
    limit: PageSize = DEFAULT_PAGE
    cursor: Cursor | None = None


class ImportQuery(Query):
    skip_bad: QueryFlag = Field(False, description="write the good records of a body with bad ones (else: none)")


class RecordChange(Answer):
    at: str
    action: str
    version: int
    actor: str
    source: str = Field(description="where the change came from: request, request:item 2, a file ...")
    changes: dict[str, Any] = Field(description="field: [before, after]")


class RowProblem(Answer):
    where: str
    field: str
    message: str


class RecordsReport(Answer):
    """What a change did: the keys created, updated and deactivated, how many records were as given already, and
    the records skipped (``skip_bad``) with their problems."""

    entity: str
    source: str
    applied: bool
    created: list[str]
    updated: list[str]
    deactivated: list[str]
    unchanged: int
    errors: list[RowProblem]


class _Records(RootModel[Any]):
    """A records body: any JSON, the records' own checks being the import's (422 with every problem); its schema
    in the document is the entity's record, or a list of them."""

    # The entity's input model (masterdata/schemas.py) and its children's (Entity.children), set per entity.
    record: ClassVar[Any] = None
    children: ClassVar[tuple[str, Any, str] | None] = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        one = _record_schema(cls.record, cls.children, handler)
        return {"anyOf": [one, {"type": "array", "items": one}],
                "description": "one record, or a list of them (each checked as a row of a file is)"}


class _Changes(RootModel[dict[str, Any]]):
    """A PATCH body: the fields to change, any of the record's; checked as :class:`_Records` are."""

    record: ClassVar[Any] = None
    children: ClassVar[tuple[str, Any, str] | None] = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        one = _record_schema(cls.record, cls.children, handler)
        return {"type": "object", "properties": one.get("properties", {}), "additionalProperties": False,
                "description": "the fields to change; the others keep their values, the key in the path wins"}


def _record_schema(model: Any, children: tuple[str, Any, str] | None,
                   handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    schema = dict(handler.resolve_ref_schema(handler(model.__pydantic_core_schema__)))
    properties = schema["properties"] = dict(schema.get("properties", {}))
    price = properties.get("price")
    if price is not None:
        # Read exactly in the record's currency: the model's int is what it is stored as, not what is sent.
        properties["price"] = {"type": "string", "title": price.get("title", "Price"),
                               "description": 'a decimal string in the currency, such as "59.00"'}
    if children is not None:
        field, child, parent = children
        item = dict(handler.resolve_ref_schema(handler(child.__pydantic_core_schema__)))
        # Each is keyed to the record it comes in (masterdata/service.py): its own key to it may be left out.
        item["properties"] = {k: v for k, v in item.get("properties", {}).items() if k != parent}
        item["required"] = [k for k in item.get("required", ()) if k != parent]
        properties[field] = {"type": "array", "items": item, "description": f"its {field}, each a record of its own"}
    return schema


def _camel(text: str) -> str:
    return "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", text))


def _models(ent: Entity) -> tuple[type[Answer], type[Answer], type[Answer], type[RootModel[Any]],
                                  type[RootModel[Any]]]:
    """The record, page, record-with-history, records body and changes body of ``ent``: a model of each per entity,
    their names the entity's (one schema per name in the document)."""
    name = _camel(ent.name)
    record = create_model(f"{name}Record", __base__=Answer, __module__=__name__,
                          **{k: (str, ...) for k in ent.keys},
                          active=(bool, ...), version=(int, ...), updated_at=(str | None, ...))
    record.__doc__ = f"A {ent.name}: its key typed here, its other fields as the record takes them."
    page = create_model(f"{name}Page", __base__=Answer, __module__=__name__, items=(list[record], ...),
                        next=(str | None, Field(description="the cursor of the next page; null: this is the last")))
    story = create_model(f"{name}WithHistory", __base__=record, __module__=__name__,
                         history=(list[RecordChange], Field(description="its changes, newest first")))
    children = ((ent.children[0], ENTITIES[ent.children[1]].schema, ent.children[2])
                if ent.children is not None else None)
    records = type(f"{name}Records", (_Records,), {"__module__": __name__, "record": ent.schema,
                                                   "children": children})
    changes = type(f"{name}Changes", (_Changes,), {"__module__": __name__, "record": ent.schema,
                                                   "children": children})
    return record, page, story, records, changes


# -- the routes of one entity ----------------------------------------------------------------------
def _routes(ent: Entity) -> None:
    base = f"/api/{ent.plural}"
    one = base + "".join(f"/<path:{k}>" if k in _SLASHED else f"/<{k}>" for k in ent.keys)
    _, page, story, records, changes = _models(ent)

    def listing() -> Response:
        q = query(RecordsQuery)
        after = cursor_key(q.cursor, len(ent.keys)) if q.cursor is not None else None
        # One more than asked: the page is full only when there is more, so no empty last page is sent.
        rows = oms().masterdata.list(ent.plural, active=_STATUS[q.status], prefix=q.prefix or None,
                                     limit=q.limit + 1, after=after)
        more = len(rows) > q.limit
        items = [shown(r) for r in rows[:q.limit]]
        last = [str(items[-1][k]) for k in ent.keys] if more else None
        return json_response({"items": items, "next": key_cursor(last) if last else None})

    def show(**parts: str) -> Response:
        return json_response(shown(oms().masterdata.get(ent.plural, _key(ent, parts))))

    def create() -> Response:
        skip_bad = query(ImportQuery).skip_bad
        # Read as a file's rows (not body(records)): a record that is not an object is one problem of the 422.
        rows = body_rows()
        report = oms().masterdata.apply(ent.plural, rows, actor=actor(), source=SOURCE, skip_bad=skip_bad)
        return json_response(report.to_dict())

    def change(**parts: str) -> Response:
        key = _key(ent, parts)
        data = body(changes).root
        _exists(ent, key)
        # The record the URL names is the one changed, whatever key the body repeats.
        row = Row(SOURCE, {**data, **dict(zip(ent.keys, key, strict=True))})
        return json_response(oms().masterdata.apply(ent.plural, [row], actor=actor(), source=SOURCE,
                                                    merge=True).to_dict())

    def toggler(active: bool) -> Callable[..., Response]:
        def toggle(**parts: str) -> Response:
            key = _key(ent, parts)
            _exists(ent, key)
            return json_response(oms().masterdata.set_active(ent.plural, key, active, actor=actor(),
                                                             source=SOURCE).to_dict())
        return toggle

    some = _LABELS.get(ent.plural, ent.plural.replace("-", " "))
    a = ent.name.replace("_", " ").replace("sku", "SKU")
    routes: list[tuple[str, str, str, frozenset[str], Callable[..., Response], str, dict[str, Any]]] = [
        (base, "GET", "list", READ, listing, f"{some[0].upper()}{some[1:]} in key order, a page at a time.",
         {"query": RecordsQuery, "answers": {200: page}}),
        (base, "POST", "create", ADMIN, create,
         f"Create or change {some}, as a file import: 422 with every problem writes nothing.",
         {"query": ImportQuery, "body": records, "answers": {200: RecordsReport}, "refusals": (422,)}),
        (one, "GET", "show", READ, show, f"One {a} and its history.",
         {"answers": {200: story}, "refusals": (404,)}),
        (one, "PATCH", "change", ADMIN, change, f"Change some fields of one {a}; a PATCH never creates one.",
         {"body": changes, "answers": {200: RecordsReport}, "refusals": (404, 422)}),
        (f"{one}/deactivate", "POST", "deactivate", ADMIN, toggler(False),
         f"Deactivate a {a} (records are never deleted).",
         {"body": Body, "answers": {200: RecordsReport}, "refusals": (404, 422)}),
        (f"{one}/activate", "POST", "activate", ADMIN, toggler(True), f"Activate a {a} again.",
         {"body": Body, "answers": {200: RecordsReport}, "refusals": (404, 422)}),
    ]
    for rule, method, action, roles, view, summary, declared in routes:
        # A function name of its own per entity: the document's operation ids are made of it.
        view.__name__ = view.__qualname__ = f"{ent.plural.replace('-', '_')}_{action}"
        view.__doc__ = summary
        declared_view = operation(tags=TAGS, **declared)(view)
        bp.add_url_rule(rule, f"{ent.plural}_{action}", requires(roles)(declared_view), methods=[method])


def _exists(ent: Entity, key: Sequence[str]) -> None:
    """404 (MasterDataLookup) unless the record exists: a PATCH or a deactivation never creates one.

    Records are never deleted, so one that exists now still does when the change is made."""
    oms().masterdata.get(ent.plural, key, history=0)


for _entity in ENTITIES.values():
    _routes(_entity)


# -- the blacklist ------------------------------------------------------------------------------
def _not_blank(value: object) -> object:
    # Required, not only by the customer history: a customer already so would otherwise be answered
    # "unchanged" without a word about the missing reason.
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


Reason = Annotated[str, BeforeValidator(_not_blank), Field(strict=True, min_length=1, max_length=MAX_REASON,
                                                           description="why: kept in the customer's changes")]
CustomerRef = Annotated[str, BeforeValidator(_not_blank),
                        Field(strict=True, min_length=1, max_length=MAX_CUSTOMER_REF, description="the customer's ref")]


class BlacklistQuery(Query):
    limit: PageSize = MAX_PAGE
    cursor: Cursor | None = None


class Blacklisted(Answer):
    ref: str
    reason: str
    since: str | None = Field(description="when it was blacklisted")
    actor: str | None = Field(description="who blacklisted it")


class BlacklistPage(Answer):
    items: list[Blacklisted]
    next: str | None = Field(description="the cursor of the next page; null: this is the last")
    truncated: bool = Field(description="there is a next page")


class BlacklistBody(Body):
    customer: CustomerRef
    reason: Reason


class BlacklistRemoveBody(Body):
    reason: Reason


class BlacklistChange(Answer):
    customer: str
    blacklisted: bool
    changed: bool = Field(description="false: the customer was so already (the reason on record stays)")


@bp.get("/api/blacklist")
@requires(READ)
@operation(query=BlacklistQuery, answers={200: BlacklistPage}, tags=BLACKLIST_TAGS)
def blacklist() -> Response:
    """Blacklisted customers by ref, with why, since when and who, a page at a time."""
    q = query(BlacklistQuery)
    after = cursor_key(q.cursor, 1)[0] if q.cursor is not None else None
    rows = oms().blacklist.list(q.limit + 1, after=after)
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    return json_response({"items": rows, "next": key_cursor([rows[-1]["ref"]]) if more else None,
                          "truncated": more})


@bp.post("/api/blacklist")
@requires(ACT)
@operation(body=BlacklistBody, answers={200: BlacklistChange}, tags=BLACKLIST_TAGS)
def blacklist_add() -> Response:
    """Blacklist a customer (one not seen yet too): their orders are held for review."""
    data = body(BlacklistBody)
    changed = oms().blacklist.add(data.customer, reason=data.reason, actor=actor())
    return json_response({"customer": data.customer, "blacklisted": True, "changed": changed})


@bp.post("/api/blacklist/<path:ref>/remove")
@requires(ACT)
@operation(body=BlacklistRemoveBody, answers={200: BlacklistChange}, tags=BLACKLIST_TAGS, refusals=(404,))
def blacklist_remove(ref: str) -> Response:
    """Take a customer off the blacklist."""
    reason = body(BlacklistRemoveBody).reason
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

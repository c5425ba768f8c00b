"""Master data for a warehouse's WMS: each item and supplier sent before the first document that names it,
and again once per change.

A WMS whose connector says ``wants_master_data`` is sent, with each document
(documents.py), the items and the supplier it names that the warehouse has
not been sent at their current version: ``master_sync`` keeps the version each
warehouse was sent, recorded once the document carrying it has left. A
change to a product or a supplier the warehouse already knows is sent on its
own (``master.item``, ``master.supplier``) when it is made. Two documents
queued before the first of them left may both carry the same item: the WMS is
sent it twice at one version, which it takes as one (connectors send master
data keyed by its version).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..storage.models import MasterSync, Product, Supplier
from . import documents

ITEM, SUPPLIER = "item", "supplier"
_CHUNK = 500


def _known(s: Session, warehouse: str, entity: str, keys: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(keys), _CHUNK):
        for key, version in s.execute(select(MasterSync.key, MasterSync.version).where(
                MasterSync.warehouse == warehouse, MasterSync.entity == entity,
                MasterSync.key.in_(keys[i:i + _CHUNK]))):
            out[key] = version
    return out


def missing(s: Session, warehouse: str, skus: Iterable[str], supplier: str | None = None) -> dict[str, Any]:
    """The master records a document for ``warehouse`` naming these SKUs (and supplier) must carry: those
    its WMS has not been sent at their current version. Empty when it has them all."""
    wanted = sorted(set(skus))
    sent = _known(s, warehouse, ITEM, wanted)
    items = []
    for i in range(0, len(wanted), _CHUNK):
        for p in s.scalars(select(Product).where(Product.sku.in_(wanted[i:i + _CHUNK]))):
            if sent.get(p.sku, 0) < p.version:
                items.append(documents.item(p, warehouse))
    out: dict[str, Any] = {}
    if items:
        out["items"] = items
    if supplier:
        record = s.get(Supplier, supplier)
        if record is not None and _known(s, warehouse, SUPPLIER, [supplier]).get(supplier, 0) < record.version:
            out["suppliers"] = [documents.supplier(record, warehouse)]
    return out


def _upsert(s: Session, rows: list[dict[str, Any]]) -> None:
    insert_ = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = insert_(MasterSync.__table__)
    s.execute(stmt.on_conflict_do_update(index_elements=["warehouse", "entity", "key"],
                                         set_={"version": stmt.excluded.version, "at": stmt.excluded.at}), rows)


def record_sent(s: Session, topic: str, payload: Mapping[str, Any], at: datetime) -> None:
    """A message has left: the master records it carried (or was) are the warehouse's now."""
    warehouse = payload.get("warehouse")
    if not isinstance(warehouse, str):
        return
    rows: list[dict[str, Any]] = []
    carried = payload.get("master") or {}
    items = list(carried.get("items", ())) + ([payload] if topic == "master.item" else [])
    suppliers = list(carried.get("suppliers", ())) + ([payload] if topic == "master.supplier" else [])
    rows += [{"warehouse": warehouse, "entity": ITEM, "key": i["sku"], "version": i["version"], "at": at}
             for i in items]
    rows += [{"warehouse": warehouse, "entity": SUPPLIER, "key": r["code"], "version": r["version"], "at": at}
             for r in suppliers]
    if rows:
        # The highest version per key: a message carrying an older one must not move it back.
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            k = (r["entity"], r["key"])
            if k not in latest or latest[k]["version"] < r["version"]:
                latest[k] = r
        known = {(e, k): v for e in (ITEM, SUPPLIER)
                 for k, v in _known(s, warehouse, e, [r["key"] for r in latest.values() if r["entity"] == e]).items()}
        fresh = [r for k, r in latest.items() if known.get(k, 0) < r["version"]]
        if fresh:
            _upsert(s, fresh)


def changed(s: Session, entity: str, keys: Iterable[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(warehouse, topic, payload) for each warehouse that was sent an older version of these records."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    out: list[tuple[str, str, dict[str, Any]]] = []
    rows = s.execute(select(MasterSync.warehouse, MasterSync.key, MasterSync.version).where(
        MasterSync.entity == entity, MasterSync.key.in_(wanted))).all()
    model = Product if entity == ITEM else Supplier
    for warehouse, key, version in rows:
        record = s.get(model, key)
        if record is None or record.version <= version:
            continue
        if entity == ITEM:
            out.append((warehouse, "master.item", documents.item(record, warehouse)))  # type: ignore[arg-type]
        else:
            out.append((warehouse, "master.supplier", documents.supplier(record, warehouse)))  # type: ignore[arg-type]
    return out

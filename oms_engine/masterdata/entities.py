"""The master-data entities: which table each is, its key, its schema, and what it refers to.

Every entity is handled alike by service.py (validate, check references,
create or update with history, deactivate); what differs is here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.models import Carrier, CarrierService, FreightTemplate, Product, SkuMapping, Supplier, Warehouse
from .schemas import (
    CarrierIn,
    FreightTemplateIn,
    ProductIn,
    ServiceIn,
    SkuMappingIn,
    SupplierIn,
    WarehouseIn,
    freight_input,
)

# (row index, field, message) for each row whose references do not hold.
Problems = list[tuple[int, str, str]]


@dataclass(frozen=True)
class Entity:
    name: str                    # singular, as history and errors name it: "product"
    plural: str                  # as commands and URLs name it: "products"
    model: type
    schema: type[BaseModel]
    keys: tuple[str, ...]
    fields: tuple[str, ...]      # what a record says, besides its key (compared to tell a change)
    columns: tuple[str, ...]     # what a listing shows
    references: Callable[[Session, Sequence[BaseModel]], Problems] | None = None
    # Records of another entity a record may carry in a list field, keyed to it: (field, entity plural,
    # the child's field naming the parent). A carrier's services, say.
    children: tuple[str, str, str] | None = None
    # A stored record's fields as the schema takes them, where they differ (money as decimal amounts).
    as_input: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def key_of(self, record: Any) -> tuple[Any, ...]:
        return tuple(getattr(record, k) for k in self.keys)

    @staticmethod
    def key_text(key: tuple[Any, ...]) -> str:
        return "/".join(str(k) for k in key)


def _existing(s: Session, column: Any, values: set[str]) -> set[str]:
    found: set[str] = set()
    wanted = sorted(values)
    for i in range(0, len(wanted), 500):
        found.update(s.scalars(select(column).where(column.in_(wanted[i:i + 500]))))
    return found


def _product_refs(s: Session, rows: Sequence[BaseModel]) -> Problems:
    suppliers = {r.supplier for r in rows if r.supplier}  # type: ignore[attr-defined]
    known = _existing(s, Supplier.code, suppliers) if suppliers else set()
    problems: Problems = [(i, "supplier", f"no supplier '{r.supplier}' (import suppliers first)")  # type: ignore[attr-defined]
                          for i, r in enumerate(rows) if r.supplier and r.supplier not in known]  # type: ignore[attr-defined]
    return problems + _component_refs(s, rows)


def _component_refs(s: Session, rows: Sequence[Any]) -> Problems:
    """A kit's components are products (in the catalogue or earlier in the same import) and not kits."""
    named = {c.sku for r in rows for c in r.components}
    if not named:
        return []
    in_file = {r.sku: bool(r.components) for r in rows}
    stored = dict(s.execute(select(Product.sku, Product.components)
                            .where(Product.sku.in_(sorted(named - set(in_file))))).all())
    problems: Problems = []
    for i, r in enumerate(rows):
        for c in r.components:
            if c.sku not in in_file and c.sku not in stored:
                problems.append((i, "components", f"no product '{c.sku}' in the catalogue"))
            elif in_file.get(c.sku) or stored.get(c.sku):
                problems.append((i, "components", f"'{c.sku}' is a kit itself: a kit is made of plain products"))
    return problems


def _warehouse_refs(s: Session, rows: Sequence[Any]) -> Problems:
    named = {code for r in rows for code in r.carriers}
    known = _existing(s, Carrier.code, named) if named else set()
    return [(i, "carriers", f"no carrier '{code}' (import carriers first)")
            for i, r in enumerate(rows) for code in r.carriers if code not in known]


def _service_refs(s: Session, rows: Sequence[BaseModel]) -> Problems:
    known = _existing(s, Carrier.code, {r.carrier for r in rows})  # type: ignore[attr-defined]
    return [(i, "carrier", f"no carrier '{r.carrier}' (import carriers first)")  # type: ignore[attr-defined]
            for i, r in enumerate(rows) if r.carrier not in known]  # type: ignore[attr-defined]


def _mapping_refs(s: Session, rows: Sequence[BaseModel]) -> Problems:
    known = _existing(s, Product.sku, {r.sku for r in rows})  # type: ignore[attr-defined]
    return [(i, "sku", f"no product '{r.sku}' in the catalogue")  # type: ignore[attr-defined]
            for i, r in enumerate(rows) if r.sku not in known]  # type: ignore[attr-defined]


PRODUCTS = Entity("product", "products", Product, ProductIn, ("sku",),
                  ("name", "currency", "price", "merchant", "weight_g", "length_mm", "width_mm", "height_mm",
                   "barcode", "supplier", "attributes", "components", "lot_tracked"),
                  ("sku", "name", "price", "currency", "merchant", "weight_g", "supplier", "active"),
                  _product_refs)
WAREHOUSES = Entity("warehouse", "warehouses", Warehouse, WarehouseIn, ("code",),
                    ("name", "country", "region", "city", "priority", "lat", "lon", "capabilities", "regions",
                     "address", "wms_connector", "wms_settings", "carriers"),
                    ("code", "name", "region", "city", "priority", "capabilities", "wms_connector", "active"),
                    _warehouse_refs)
CARRIERS = Entity("carrier", "carriers", Carrier, CarrierIn, ("code",), ("name", "connector", "settings"),
                  ("code", "name", "connector", "active"), children=("services", "services", "carrier"))
SERVICES = Entity("service", "services", CarrierService, ServiceIn, ("carrier", "code"), ("name", "attributes"),
                  ("carrier", "code", "name", "attributes", "active"), _service_refs)
SUPPLIERS = Entity("supplier", "suppliers", Supplier, SupplierIn, ("code",), ("name", "contact", "address"),
                   ("code", "name", "contact", "active"))
SKU_MAPPINGS = Entity("sku_mapping", "skus", SkuMapping, SkuMappingIn, ("channel", "channel_sku"), ("sku",),
                      ("channel", "channel_sku", "sku", "active"), _mapping_refs)
FREIGHT_TEMPLATES = Entity("freight template", "freight-templates", FreightTemplate, FreightTemplateIn, ("code",),
                           ("name", "currency", "zones", "free_above"), ("code", "name", "currency", "active"),
                           as_input=freight_input)

ENTITIES: dict[str, Entity] = {e.plural: e for e in (PRODUCTS, WAREHOUSES, CARRIERS, SERVICES, SUPPLIERS,
                                                     SKU_MAPPINGS, FREIGHT_TEMPLATES)}

"""Invoices over the API: as kept and rendered as an e-invoice; an unknown format is 409, an unknown invoice 404."""

from __future__ import annotations

from oms_engine.engine import OMS
from tests.support import order_json
from tests.support.pipeline import ingest_one
from tests.support.web import VIEWER, ApiServer


def test_an_invoice_is_read_over_the_api(sqlite_oms: OMS, api: ApiServer) -> None:
    number = ingest_one(sqlite_oms, order_json("EI-API")).number
    got = api.get(f"/api/invoices/{number}-INV01", token=VIEWER)
    assert got.status == 200 and got.json["einvoice"]["format"] == "oms-einvoice/1"
    assert api.get(f"/api/invoices/{number}-INV01?format=ubl", token=VIEWER).status == 409
    missing = api.get("/api/invoices/NOPE-INV01", token=VIEWER)
    assert missing.status == 404 and missing.json["detail"] == "no invoice or credit note 'NOPE-INV01'"


def test_a_parameter_an_invoice_does_not_name_is_refused_naming_it(api: ApiServer) -> None:
    r = api.get("/api/invoices/NOPE-INV01?fmt=ubl", token=VIEWER)
    assert r.status == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json["field"] == "fmt" and "unknown parameter 'fmt'; allowed: format" in r.json["detail"]

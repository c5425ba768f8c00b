"""Master data: imported from CSV and JSON, checked row by row, idempotent, every change with its history."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from oms_engine.engine import OMS
from oms_engine.masterdata.files import Row
from oms_engine.masterdata.service import ImportRefused
from oms_engine.orders.queries import get_order
from oms_engine.plugin.testing import OrderBuilder, ingest_one, status
from oms_engine.storage.models import MasterChange, Product, SkuMapping, Stock, StockMovement, Warehouse
from tests.support import ROOT

DATA = ROOT / "examples" / "data"


def _changes(oms: OMS) -> int:
    with oms.db.read() as s:
        return s.scalar(select(func.count()).select_from(MasterChange)) or 0


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_data_imports_and_importing_it_again_changes_nothing(oms: OMS) -> None:
    md = oms.masterdata
    first = [md.import_file("suppliers", DATA / "suppliers.csv", actor="t"),
             md.import_file("products", DATA / "products.csv", actor="t"),
             md.import_file("carriers", DATA / "carriers.json", actor="t"),
             md.import_file("warehouses", DATA / "warehouses.json", actor="t"),
             md.import_file("skus", DATA / "skus.csv", actor="t"),
             oms.openings.import_file(DATA / "stock.csv", actor="t"),
             md.import_file("freight-templates", DATA / "freight_templates.json", actor="t")]
    assert [len(r.created) for r in first] == [3, 7, 7, 0, 3, 13, 1]
    # the test world already had WH-SH, WH-BJ and WH-GZ: the example file updates them
    assert sorted(first[3].updated) == ["WH-BJ", "WH-GZ", "WH-SH"]
    with oms.db.read() as s:
        sh = s.get(Warehouse, "WH-SH")
        assert sh is not None and sh.name == "Shanghai Qingpu DC" and "Jiangsu" in sh.regions
        assert sh.carriers == ["SF", "ZTO", "DEPPON"]
        table = s.get(Product, "TABLE-OAK")
        assert table is not None and table.price == 239900 and table.attributes["oversize"] is True
        assert table.supplier == "SUP-HOME" and (table.length_mm, table.width_mm, table.height_mm) == (1200, 600, 450)
        row = s.get(Stock, ("WH-SH", "TEA-LJ-250"))
        assert row is not None and (row.on_hand, row.value) == (40, 40 * 6150)
    history = _changes(oms)
    again = [md.import_file("suppliers", DATA / "suppliers.csv", actor="t"),
             md.import_file("products", DATA / "products.csv", actor="t"),
             md.import_file("carriers", DATA / "carriers.json", actor="t"),
             md.import_file("warehouses", DATA / "warehouses.json", actor="t"),
             md.import_file("skus", DATA / "skus.csv", actor="t"),
             oms.openings.import_file(DATA / "stock.csv", actor="t"),
             md.import_file("freight-templates", DATA / "freight_templates.json", actor="t")]
    assert [r.changed for r in again] == [0] * 7
    assert [r.unchanged for r in again] == [3, 7, 7, 3, 3, 13, 1]
    assert _changes(oms) == history
    assert oms.stock.verify().ok


def test_a_file_with_a_bad_row_imports_nothing_and_names_file_row_and_field(oms: OMS, tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "sku,name,currency,price,merchant,weight_g\n"
                                     "OK-1,Fine,CNY,10.00,M-1,100\n"
                                     "BAD-1,Bad price,CNY,-3.00,M-1,100\n"
                                     "BAD-2,Bad weight,CNY,3.00,M-1,heavy\n"
                                     "BAD-3,Bad currency,cny,3.00,M-1,1\n"
                                     "OK-1,Twice,CNY,10.00,M-1,100\n")
    with pytest.raises(ImportRefused) as refused:
        oms.masterdata.import_file("products", path, actor="t")
    errors = [str(e) for e in refused.value.report.errors]
    assert errors == [
        "p.csv:3: price: '-3.00' is negative; amounts are 0 or more",
        "p.csv:4: weight_g: Input should be a valid integer, unable to parse string as an integer",
        "p.csv:5: currency: 'cny' is not an ISO 4217 code: three capital letters A-Z, e.g. \"CNY\"",
        "p.csv:6: sku: OK-1 appears again (first at p.csv:2)",
    ]
    assert "nothing imported" in str(refused.value)
    with oms.db.read() as s:
        assert s.get(Product, "OK-1") is None
    report = oms.masterdata.import_file("products", path, actor="t", skip_bad=True)
    assert report.created == ["OK-1"] and len(report.errors) == 4 and report.applied
    assert "4 bad row(s) skipped" in report.summary()


def test_unknown_columns_references_and_connectors_are_refused(oms: OMS, tmp_path: Path) -> None:
    products = _write(tmp_path, "p.json", '[{"sku": "X-1", "name": "x", "currency": "CNY", "price": "1.00", '
                                          '"merchant": "M", "colour": "red", "supplier": "NOBODY"}]')
    with pytest.raises(ImportRefused) as refused:
        oms.masterdata.import_file("products", products, actor="t")
    assert [str(e) for e in refused.value.report.errors] == ["p.json:row 1: colour: Extra inputs are not permitted"]
    products.write_text('[{"sku": "X-1", "name": "x", "currency": "CNY", "price": "1.00", "merchant": "M", '
                        '"supplier": "NOBODY"}]', encoding="utf-8")
    with pytest.raises(ImportRefused, match=r"p.json:row 1: supplier: no supplier 'NOBODY'"):
        oms.masterdata.import_file("products", products, actor="t")
    warehouses = _write(tmp_path, "w.csv", "code,name,country,region,city,wms_connector\n"
                                           "WH-X,X,CN,Hubei,Wuhan,no_such_wms\n"
                                           "WH-Y,Y,CN,Hubei,Wuhan,sim_carrier\n")
    with pytest.raises(ImportRefused) as refused:
        oms.masterdata.import_file("warehouses", warehouses, actor="t")
    assert [e.message for e in refused.value.report.errors] == [
        "no connector 'no_such_wms' is registered (known: carrier_json, payment_json, sim_carrier, sim_payment, "
        "sim_tax, sim_wms, tax_json, wms_json, wms_xml)",
        "connector 'sim_carrier' is not a WMS connector"]
    mapping = _write(tmp_path, "m.csv", "channel,channel_sku,sku\njson,A,NO-SUCH-SKU\n")
    with pytest.raises(ImportRefused, match=r"m.csv:2: sku: no product 'NO-SUCH-SKU'"):
        oms.masterdata.import_file("skus", mapping, actor="t")
    with pytest.raises(Exception, match=r"a master-data file is \.csv or \.json"):
        oms.masterdata.import_file("skus", _write(tmp_path, "m.txt", "x"), actor="t")


def test_a_change_bumps_the_version_and_its_history_says_what_who_and_where(oms: OMS, tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "sku,name,currency,price,merchant\nHIST-1,Mug,CNY,10.00,M-1\n")
    oms.masterdata.import_file("products", path, actor="alice")
    path.write_text("sku,name,currency,price,merchant\nHIST-1,Blue mug,CNY,12.50,M-1\n", encoding="utf-8")
    report = oms.masterdata.import_file("products", path, actor="bob")
    assert report.updated == ["HIST-1"]
    oms.masterdata.set_active("products", ["HIST-1"], False, actor="carol", source="cli")
    record = oms.masterdata.get("products", ["HIST-1"])
    assert record["version"] == 3 and record["active"] is False and record["price"] == 1250
    [deactivated, updated, created] = record["history"]
    assert (created["action"], created["actor"], created["source"]) == ("create", "alice", "p.csv:2")
    assert (updated["action"], updated["actor"]) == ("update", "bob")
    assert updated["changes"] == {"name": ["Mug", "Blue mug"], "price": [1000, 1250]}
    assert (deactivated["action"], deactivated["actor"], deactivated["changes"]) == \
        ("deactivate", "carol", {"active": [True, False]})
    # a partial change keeps what it does not name
    oms.masterdata.apply("products", [Row("cli", {"sku": "HIST-1", "weight_g": "350", "active": "true"})],
                         actor="dan", source="cli", merge=True)
    record = oms.masterdata.get("products", ["HIST-1"])
    assert (record["name"], record["weight_g"], record["active"]) == ("Blue mug", 350, True)
    assert record["history"][0]["action"] == "reactivate"


def test_a_deactivated_product_holds_its_orders_and_a_deactivated_warehouse_gets_none(oms: OMS) -> None:
    oms.masterdata.set_active("products", ["MUG-1"], False, actor="t")
    held = ingest_one(oms, OrderBuilder("DEACT-1").line("MUG-1", 1).build())
    assert held.status == "on_hold"
    oms.masterdata.set_active("warehouses", ["WH-SH"], False, actor="t")
    sent = ingest_one(oms, OrderBuilder("DEACT-2").line("TEA-1", 1).build())
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        order = get_order(s, sent.number)
        assert order.warehouse not in (None, "WH-SH")
        assert "deactivated" in (get_order(s, held.number).hold_reason or "")
    assert status(oms, sent.number) == "dispatched"


def test_carriers_carry_their_services_and_a_bad_service_refuses_the_file(oms: OMS, tmp_path: Path) -> None:
    report = oms.masterdata.import_file("carriers", DATA / "carriers.json", actor="t")
    assert sorted(report.created) == ["DEPPON", "SF", "ZTO", "service DEPPON/HEAVY", "service SF/COLD",
                                      "service SF/STANDARD", "service ZTO/ECONOMY"]
    service = oms.masterdata.get("services", ["SF", "COLD"])
    assert service["attributes"] == {"cold_chain": True, "max_weight_g": 20000, "base_price": 3200,
                                     "transit_hours": 24}
    assert oms.masterdata.get("carriers", ["ZTO"])["settings"]["refuse_regions"] == ["Tibet", "Xinjiang"]
    bad = _write(tmp_path, "c.json", '[{"code": "YTO", "name": "YTO", "services": [{"code": "STD"}]}]')
    with pytest.raises(ImportRefused, match=r"c.json:row 1 services\[1\]: name: Field required"):
        oms.masterdata.import_file("carriers", bad, actor="t")
    with pytest.raises(Exception, match="no carrier 'YTO'"):
        oms.masterdata.get("carriers", ["YTO"])


def test_sku_mappings_are_used_at_intake_before_the_plugins(oms: OMS) -> None:
    oms.masterdata.apply("skus", [Row("t", {"channel": "json", "channel_sku": "SHOP-TEA", "sku": "TEA-1"})],
                         actor="t", source="t")
    result = ingest_one(oms, OrderBuilder("MAP-1").line("SHOP-TEA", 2, unit_price=5900).build())
    assert result.status == "paid"
    with oms.db.read() as s:
        [line] = get_order(s, result.number).lines
        assert (line.sku, line.channel_sku, line.mapped) == ("TEA-1", "SHOP-TEA", True)
        assert s.get(SkuMapping, ("json", "SHOP-TEA")) is not None


def test_opening_balances_post_once_and_refuse_another_figure(oms: OMS, tmp_path: Path) -> None:
    path = _write(tmp_path, "s.csv", "warehouse,sku,quantity,unit_cost\nWH-GZ,MUG-1,7,12.34\n")
    assert oms.openings.import_file(path, actor="t").created == ["WH-GZ/MUG-1"]
    assert oms.openings.import_file(path, actor="t").unchanged == 1
    path.write_text("warehouse,sku,quantity\nWH-GZ,MUG-1,9\nWH-SH,TEA-1,3\nWH-XX,TEA-1,3\nWH-GZ,NOPE,1\n"
                    "WH-GZ,PEN-1,0\n", encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        oms.openings.import_file(path, actor="t")
    assert [str(e) for e in refused.value.report.errors] == [
        "s.csv:6: quantity: Input should be greater than 0",
        "s.csv:2: quantity: WH-GZ/MUG-1 already has an opening balance of 7; change it with an adjustment or a "
        "stocktake",
        "s.csv:3: quantity: WH-SH/TEA-1 already has an opening balance of 50; change it with an adjustment or a "
        "stocktake",
        "s.csv:4: warehouse: no warehouse 'WH-XX' (import warehouses first)",
        "s.csv:5: sku: no product 'NOPE' in the catalogue (import products first)"]
    with oms.db.read() as s:
        row = s.get(Stock, ("WH-GZ", "MUG-1"))
        assert row is not None and (row.on_hand, row.value) == (7, 7 * 1234)
        kinds = s.scalars(select(StockMovement.kind).where(StockMovement.sku == "MUG-1",
                                                           StockMovement.warehouse == "WH-GZ")).all()
        assert kinds == ["opening"]


def test_blacklisting_a_customer_holds_their_next_order_and_is_audited(oms: OMS) -> None:
    assert oms.blacklist.add("C-NEW", reason="chargebacks on three orders", actor="risk:eve") is True
    assert oms.blacklist.add("C-NEW", reason="again", actor="risk:eve") is False
    [entry] = [e for e in oms.blacklist.list() if e["ref"] == "C-NEW"]
    assert entry["reason"] == "chargebacks on three orders" and entry["actor"] == "risk:eve"
    held = ingest_one(oms, OrderBuilder("BL-1", customer="C-NEW").build())
    oms.pipeline.run_until_idle()
    assert status(oms, held.number) == "on_hold"
    assert oms.blacklist.remove("C-NEW", reason="disputes settled", actor="risk:eve") is True
    assert [e["ref"] for e in oms.blacklist.list()] == ["C-BAD"]
    with pytest.raises(Exception, match="no customer 'C-NOBODY'"):
        oms.blacklist.remove("C-NOBODY", reason="x", actor="t")


def test_verify_reports_a_balance_the_ledger_does_not_explain(oms: OMS) -> None:
    assert oms.stock.verify().ok
    with oms.db.session() as s:
        row = s.get(Stock, ("WH-SH", "TEA-1"))
        assert row is not None
        row.on_hand += 3
    result = oms.stock.verify()
    assert [str(d) for d in result.differences] == ["WH-SH/TEA-1: on_hand is 53 in the stock table, 50 recomputed"]

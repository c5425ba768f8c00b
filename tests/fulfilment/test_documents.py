"""Goods-in and goods-out documents, master data for a warehouse's WMS, and what callbacks do: receipts post
what was received, late statuses are recorded and harmless, carriers' scans are tracked apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.fulfilment.stock_documents import DocKind, DocumentError, LineIn
from oms_engine.masterdata.files import Row
from oms_engine.orders.explain import explain
from oms_engine.plugin.testing import OrderBuilder, drive, drive_until_state, ingest_one, status
from oms_engine.storage.models import InboxMessage, Stock, StockMovement
from tests.support import build_oms, copy_rules
from tests.support.pipeline import sent_files

RECORDING = '''
from oms_engine import hookimpl


class RecordingWMS:
    """A WMS that wants master data and keeps every message it is sent, in order."""

    name, kind, wants_master_data = "recording_wms", "wms", True

    def send(self, message, ctx):
        log = ctx.state_get(self.name, "log") or []
        ctx.state_put(self.name, "log", log + [{"topic": message.topic, "payload": dict(message.payload),
                                                 "warehouse": message.warehouse,
                                                 "settings": dict(message.settings)}])

    def parse_callback(self, payload):
        return []

    def on_task(self, payload, ctx):
        pass


@hookimpl
def oms_register_connectors(register):
    register(RecordingWMS())
'''


def _supplier(oms: OMS) -> None:
    oms.masterdata.apply("suppliers", [Row("t", {"code": "SUP-1", "name": "Tea Farm"})], actor="t", source="t")


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[OMS]:
    """An OMS whose WH-SH is served by a WMS that wants master data (and records what it gets)."""
    plugin = tmp_path / "recording_wms.py"
    plugin.write_text(RECORDING, encoding="utf-8")
    oms = build_oms(tmp_path, f"sqlite:///{tmp_path / 'oms.db'}", plugins=[str(plugin)])
    oms.masterdata.apply("warehouses", [Row("t", {"code": "WH-SH", "wms_connector": "recording_wms",
                                                  "wms_settings": {"url": "http://wms.example"}})],
                         actor="t", source="t", merge=True)
    _supplier(oms)
    yield oms
    oms.close()


def _log(oms: OMS) -> list[dict[str, object]]:
    from tests.support.pipeline import plugin_state
    return plugin_state(oms, "recording_wms", "log") or []


def test_items_go_to_a_wms_before_the_first_document_naming_them_and_again_once_per_change(recorded: OMS) -> None:
    oms = recorded
    ingest_one(oms, OrderBuilder("MD-1").line("TEA-1", 1).build())
    oms.pipeline.run_until_idle()
    [first] = _log(oms)
    assert first["topic"] == "wms.create" and first["warehouse"] == "WH-SH"
    assert first["settings"] == {"url": "http://wms.example"}
    items = first["payload"]["master"]["items"]   # type: ignore[index]
    assert [(i["sku"], i["version"]) for i in items] == [("TEA-1", 1)]
    ingest_one(oms, OrderBuilder("MD-2").line("TEA-1", 1).build())
    oms.pipeline.run_until_idle()
    assert "master" not in _log(oms)[1]["payload"]   # type: ignore[operator]
    # A change to the product: the warehouse that has it is sent the new version, on its own, once.
    oms.masterdata.apply("products", [Row("t", {"sku": "TEA-1", "name": "Tea, new label"})], actor="t",
                         source="t", merge=True)
    oms.pipeline.run_until_idle()
    update = _log(oms)[2]
    assert update["topic"] == "master.item"
    assert (update["payload"]["sku"], update["payload"]["version"], update["payload"]["name"]) == \
        ("TEA-1", 2, "Tea, new label")   # type: ignore[index]
    oms.masterdata.apply("products", [Row("t", {"sku": "TEA-1", "name": "Tea, new label"})], actor="t",
                         source="t", merge=True)   # no change: nothing sent
    # A purchase order carries its supplier and the items this warehouse lacks.
    oms.documents.create(DocKind.PURCHASE_ORDER, "WH-SH", [LineIn("MUG-1", 4, "9.50"), LineIn("TEA-1", 2, "20")],
                         actor="t", supplier="SUP-1")
    oms.pipeline.run_until_idle()
    po = _log(oms)[3]
    assert len(_log(oms)) == 4 and po["topic"] == "wms.purchase_order"
    master = po["payload"]["master"]   # type: ignore[index]
    assert [i["sku"] for i in master["items"]] == ["MUG-1"]
    assert [r["code"] for r in master["suppliers"]] == ["SUP-1"]
    assert [(ln["sku"], ln["quantity"]) for ln in po["payload"]["lines"]] == [("MUG-1", 4), ("TEA-1", 2)]  # type: ignore[index]


def test_a_purchase_order_received_posts_what_arrived_at_its_cost_and_releases_backorders(oms: OMS) -> None:
    _supplier(oms)
    held = ingest_one(oms, OrderBuilder("PO-WAIT").line("RARE-1", 3).build())
    assert status(oms, held.number) == "on_hold"
    doc = oms.documents.create(DocKind.PURCHASE_ORDER, "WH-GZ", [LineIn("RARE-1", 4, "45.00")], actor="buyer:ann",
                               supplier="SUP-1")
    assert (doc["number"], doc["status"]) == ("PO-000001", "open")
    drive_until_state(oms, held.number, "dispatched")
    received = oms.documents.get("PO-000001")
    assert received["status"] == "done" and received["lines"][0]["done"] == 4
    with oms.db.read() as s:
        [receipt] = s.scalars(select(StockMovement).where(StockMovement.document == "PO-000001")).all()
        assert (receipt.kind, receipt.warehouse, receipt.on_hand_delta, receipt.unit_cost, receipt.value_delta) == \
            ("purchase_receipt", "WH-GZ", 4, 4500, 18000)
    assert oms.stock.verify().ok
    with pytest.raises(DocumentError, match="nothing was done on yet"):
        oms.documents.cancel("PO-000001", actor="t")


def test_a_return_to_vendor_takes_the_goods_out_when_they_left_and_never_below_zero(oms: OMS) -> None:
    _supplier(oms)
    oms.documents.create(DocKind.RETURN_TO_VENDOR, "WH-GZ", [LineIn("PEN-1", 10)], actor="t", supplier="SUP-1")
    too_many = oms.documents.create(DocKind.RETURN_TO_VENDOR, "WH-SH", [LineIn("RARE-1", 5)], actor="t",
                                    supplier="SUP-1")
    drive(oms)
    assert oms.documents.get("RTV-000001")["status"] == "done"
    assert oms.documents.get(too_many["number"])["status"] == "open"   # the report was refused: nothing moved
    with oms.db.read() as s:
        pen = s.get(Stock, ("WH-GZ", "PEN-1"))
        rare = s.get(Stock, ("WH-SH", "RARE-1"))
        assert pen is not None and pen.on_hand == 90 and rare is not None and rare.on_hand == 1
        outcome = s.scalars(select(InboxMessage.outcome).where(InboxMessage.outcome.like("%RTV-000002%"))).one()
    assert outcome.startswith("rejected: RTV-000002: return_to_vendor of 5 RARE-1 at WH-SH: only 1 available")
    assert oms.stock.verify().ok


def test_documents_are_checked_before_anything_is_written(oms: OMS) -> None:
    _supplier(oms)
    for kind, lines, kw, message in [
        (DocKind.PURCHASE_ORDER, [LineIn("TEA-1", 1)], {}, "names its supplier"),
        (DocKind.PURCHASE_ORDER, [LineIn("NOPE", 1)], {"supplier": "SUP-1"}, "no product 'NOPE'"),
        (DocKind.PURCHASE_ORDER, [LineIn("TEA-1", 0)], {"supplier": "SUP-1"}, "must be positive"),
        (DocKind.PURCHASE_ORDER, [LineIn("TEA-1", 1, "-1.00")], {"supplier": "SUP-1"}, "unit cost"),
        (DocKind.RETURN_TO_VENDOR, [LineIn("TEA-1", 1, "1.00")], {"supplier": "SUP-1"}, "only a purchase order"),
        (DocKind.CUSTOMER_RETURN, [LineIn("TEA-1", 1)], {"order_number": "123"}, "no order '123'"),
    ]:
        with pytest.raises(DocumentError, match=message):
            oms.documents.create(kind, "WH-SH", lines, actor="t", **kw)
    with pytest.raises(DocumentError, match="no warehouse 'WH-XX'"):
        oms.documents.create(DocKind.PURCHASE_ORDER, "WH-XX", [LineIn("TEA-1", 1)], actor="t", supplier="SUP-1")
    assert oms.documents.list() == []


def test_a_late_status_is_recorded_and_harmless_and_carrier_scans_are_tracked_apart(oms: OMS) -> None:
    r = ingest_one(oms, OrderBuilder("LATE-1").line("TEA-1", 1).build())
    drive_until_state(oms, r.number, "shipped")
    with oms.db.session() as s:
        oms.callbacks.receive(s, "sim_wms", {"order_number": r.number, "status": "PICKING"})
        oms.callbacks.receive(s, "sim_wms", {"order_number": r.number, "status": "TELEPORTED"})
    oms.pipeline.run_until_idle()
    with oms.db.read() as s:
        rows = s.scalars(select(InboxMessage).order_by(InboxMessage.id.desc()).limit(2)).all()
    assert [(m.status, m.outcome.split(":")[0]) for m in rows] == [("rejected", "rejected"), ("ignored", "ignored")]
    assert status(oms, r.number) == "shipped"
    oms.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    drive_until_state(oms, r.number, "delivered")
    with oms.db.read() as s:
        story = explain(s, r.number)
    tracking = [(t["kind"], t["status"], t["customer_visible"]) for t in story["tracking"]]
    assert tracking[0] == ("wms", "SHIPPED", True)
    assert [t for t in tracking if t[0] == "carrier"][-1] == ("carrier", "SIGNED", True)
    assert any("out of order" in c["outcome"] for c in story["callbacks"])
    json.dumps(story)   # the whole story is JSON, the exchanges' bodies included


def test_the_status_maps_visibility_and_label_reach_the_notification_rules(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    (rules / "notifications.yaml").write_text(
        (rules / "notifications.yaml").read_text(encoding="utf-8")
        + "  - name: every-visible-step\n    when:\n      all:\n        - transition.customer_visible: true\n"
          "        - transition.to_state: {in: [in_transit, out_for_delivery]}\n"
          "    then:\n      - notify: {template: tracking_update, medium: sms}\n", encoding="utf-8")
    oms = build_oms(tmp_path, f"sqlite:///{tmp_path / 'oms.db'}", rules_dir=rules)
    try:
        r = ingest_one(oms, OrderBuilder("SEEN-1").line("TEA-1", 1).build())
        drive_until_state(oms, r.number, "delivered")
        texts = [m["body"] for m in sent_files(oms)["sms"] if m["template"] == "tracking_update"]
    finally:
        oms.close()
    # COLLECTED and IN_TRANSIT both move it to in_transit; each says so in the map's words.
    assert texts == [f"Order {r.number}: Collected by the carrier.", f"Order {r.number}: In transit.",
                     f"Order {r.number}: Out for delivery."]

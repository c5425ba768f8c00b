"""From a fresh database to the door, with the commands a user types: the example shop with two carriers that
quote over HTTP (carrier_json) against two stand-ins. The courier rules send a cold-chain parcel to SF first;
SF answers that it does not deliver there, so the parcel goes with the next carrier that takes it, JD. The
warehouse ships it, JD is told of the parcel, and JD's signed tracking events come in through a running
``oms serve`` until the order is delivered; ``oms order show`` tells the whole story."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.test_warehouses_over_http import DATA, SECRETS, Shop, serve
from tests.support.carrier_standin import CarrierStandIn
from tests.support.wms_standin import WmsStandIn

__all__ = ["serve"]     # a fixture

# Not OMS_*: the shop's commands and its server get this process's environment without those.
CARRIER_SECRETS = {"SF": ("E2E_CARRIER_SECRET_SF", "sf-e2e-secret"), "JD": ("E2E_CARRIER_SECRET_JD", "jd-e2e-secret")}
ORDER = {
    "external_id": "SHOP-2001", "currency": "CNY", "placed_at": "2026-12-06T11:30:00+08:00",
    "customer": {"ref": "C-2001", "name": "Wang Fang", "email": "wang.fang@example.com", "phone": "13700137001"},
    "ship_to": {"name": "Wang Fang", "phone": "13700137001", "country": "CN", "region": "Shanghai",
                "city": "Shanghai", "district": "Xuhui", "line1": "88 Caoxi Road", "postcode": "200030"},
    "lines": [{"sku": "DUMPLING-1K", "quantity": 2}],
    "freight": "0.00", "declared_total": "91.60",
    "payment": {"transaction_id": "PAY-SHOP-2001", "amount": "91.60"},
}


@pytest.fixture(autouse=True)
def carrier_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Autouse, so set before ``serve`` copies the environment for the shop's commands and server.
    for env, secret in CARRIER_SECRETS.values():
        monkeypatch.setenv(env, secret)


def test_a_carrier_refuses_the_next_takes_the_parcel_and_its_tracking_delivers_the_order(
        serve: tuple[Shop, str], tmp_path: Path) -> None:
    shop, api = serve
    for entity, name in (("suppliers", "suppliers.csv"), ("products", "products.csv"),
                         ("carriers", "carriers.json"), ("warehouses", "warehouses.json"), ("skus", "skus.csv")):
        shop(entity, "import", str(DATA / name))
    shop("stock", "import", str(DATA / "stock.csv"))
    _, wms_env, wms_secret = SECRETS["WH-SH"]
    with WmsStandIn("json", secret=wms_secret, warehouse="WH-SH", oms_url=api) as wms, \
            CarrierStandIn(secret=CARRIER_SECRETS["SF"][1], carrier="SF", oms_url=api) as sf, \
            CarrierStandIn(secret=CARRIER_SECRETS["JD"][1], carrier="JD", oms_url=api) as jd:
        shop("warehouses", "set", "WH-SH", "wms_connector=wms_json", f"wms_settings.url={wms.url}",
             f"wms_settings.secret_env={wms_env}")
        # SF, from the example data, now quotes over HTTP; JD, a second cold-chain carrier, joins it at WH-SH.
        shop("carriers", "set", "SF", "connector=carrier_json", f"settings.url={sf.url}",
             f"settings.secret_env={CARRIER_SECRETS['SF'][0]}", "settings.timeout=2")
        jd_file = tmp_path / "jd.json"
        jd_file.write_text(json.dumps([{
            "code": "JD", "name": "JD Logistics", "connector": "carrier_json",
            "settings": {"url": jd.url, "secret_env": CARRIER_SECRETS["JD"][0], "timeout": 2},
            "services": [{"code": "COLD", "name": "JD Cold Chain", "attributes": {"cold_chain": True}}]}]),
            encoding="utf-8")
        shop("carriers", "import", str(jd_file))
        collecting = json.loads(shop("warehouses", "show", "WH-SH", "--json"))["carriers"]
        shop("warehouses", "set", "WH-SH", "carriers=" + ";".join([*collecting, "JD"]))
        sf.refuse("out of area")
        jd.accept("16.00")

        order_file = tmp_path / "2001-dumplings.json"
        order_file.write_text(json.dumps(ORDER), encoding="utf-8")
        [result] = json.loads(shop("ingest", "--channel", "json", str(order_file), "--json"))
        number = result["number"]
        shop("run")
        story = json.loads(shop("order", "show", number, "--json"))
        assert (story["status"], story["warehouse"], story["carrier"]) == ("dispatched", "WH-SH", "JD")
        [courier] = [d for d in story["decisions"] if d["point"] == "carriers"]
        assert [rule["rule"] for rule in courier["fired"]] == ["cold-chain", "cheapest"]
        tried = [(t["carrier"], t["service"], t["result"]) for t in courier["outcome"]["tried"]]
        assert tried[:2] == [("SF", "COLD", "refused: out of area"), ("JD", "COLD", "chosen")]
        # The warehouse's other carriers, from the example data, carry no cold chain: passed over, not asked.
        assert sorted(tried[2:]) == [("DEPPON", "HEAVY", "passed over: no cold chain"),
                                     ("SF", "STANDARD", "passed over: no cold chain"),
                                     ("ZTO", "ECONOMY", "passed over: no cold chain")]
        assert courier["outcome"]["why"].startswith("JD/COLD by rule cheapest at 16.00 CNY")
        assert [q.outcome for q in sf.quotes()] == ["refused"] and [q.outcome for q in jd.quotes()] == ["quoted"]

        # The warehouse ships it with the carrier its document names; JD is told of the parcel.
        [doc] = wms.docs("sales_order")
        assert doc.data["carrier"] == "JD"
        for st in ("ACCEPTED", "PICKING", "PACKED"):
            wms.order_status(number, st)
        wms.order_status(number, "SHIPPED", tracking_no="JD2001", carrier=doc.data["carrier"], place="Shanghai DC")
        for _ in range(50):   # the callbacks are stored by the server; each run applies what has come
            shop("run")
            if jd.registrations():
                break
            time.sleep(0.1)
        [registration] = jd.registrations()
        assert registration.signed and registration.outcome == "created"
        assert registration.data["data"]["tracking_no"] == "JD2001" and sf.registrations() == []

        # JD reports the journey, signed, over HTTP to the running server.
        assert [r.status for r in jd.journey(number, tracking_no="JD2001")] == [202] * 4
        for _ in range(50):
            shop("run")
            story = json.loads(shop("order", "show", number, "--json"))
            if story["status"] == "delivered":
                break
            time.sleep(0.1)
    assert story["status"] == "delivered"
    assert [h["to"] for h in story["history"]] == [
        "pending_payment", "paid", "routed", "dispatched", "accepted", "picking", "packed", "shipped",
        "in_transit", "in_transit", "out_for_delivery", "delivered"]   # collected, then in transit
    assert [h["actor"] for h in story["history"]][-4:] == ["carrier:carrier_json"] * 4
    carrier_events = [t for t in story["tracking"] if t["source"] == "carrier_json"]
    assert [(t["status"], t["place"]) for t in carrier_events] == [
        ("COLLECTED", "Shanghai hub"), ("IN_TRANSIT", "Shanghai hub"), ("OUT_FOR_DELIVERY", "Xuhui station"),
        ("SIGNED", "front door")]
    wire = [(x["connector"], x["direction"], x["kind"]) for x in story["exchanges"]]
    assert wire.count(("carrier_json", "out", "request")) == 1
    assert wire.count(("carrier_json", "in", "response")) == 1
    assert wire.count(("carrier_json", "in", "callback")) == 4
    # The printed page lists the decision and the carrier's calls (the courier's reasons are in --json: the table
    # cuts a decision's outcome short).
    printed = shop("order", "show", number)
    for text in ("carriers", "cold-chain (p10)", "carrier.register", "carrier_json"):
        assert text in printed, text

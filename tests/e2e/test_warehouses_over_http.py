"""From a fresh database to the door, with the commands a user types: the example data imported, one example
order split over two warehouses whose WMSs talk JSON and XML over HTTP, called back through a running
``oms serve``, shipped and delivered; every step in ``oms order show``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT
from tests.support.cli import OMS_BIN
from tests.support.wms_standin import WmsStandIn

DATA = ROOT / "examples" / "data"
SECRETS = {"WH-SH": ("json", "OMS_WMS_SECRET_SH", "sh-secret-1"), "WH-BJ": ("xml", "OMS_WMS_SECRET_BJ", "bj-secret-2")}


class Shop:
    def __init__(self, tmp_path: Path) -> None:
        self.config = tmp_path / "shop.yaml"
        settings = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        settings.update(database_url=f"sqlite:///{tmp_path / 'oms.db'}", outbox_dir=str(tmp_path / "outbox"),
                        rules_dir=str(ROOT / "rules"), templates_dir=str(ROOT / "templates"))
        self.config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
        self.env.update(OMS_CONFIG=str(self.config), COLUMNS="250", NO_COLOR="1",
                        **{env: secret for _, env, secret in SECRETS.values()})

    def __call__(self, *args: str) -> str:
        ran = subprocess.run([OMS_BIN, *args], env=self.env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, f"{args}\n{ran.stdout}\n{ran.stderr}"
        return ran.stdout


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Shop, str]]:
    shop = Shop(tmp_path)
    shop("init")
    proc = subprocess.Popen([OMS_BIN, "serve", "--port", "0"], env=shop.env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        yield shop, line.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_order_goes_to_a_json_and_an_xml_wms_and_to_the_door(serve: tuple[Shop, str]) -> None:
    shop, api = serve
    for entity, name in (("suppliers", "suppliers.csv"), ("products", "products.csv"),
                         ("carriers", "carriers.json"), ("warehouses", "warehouses.json"), ("skus", "skus.csv")):
        shop(entity, "import", str(DATA / name))
    shop("stock", "import", str(DATA / "stock.csv"))
    with WmsStandIn("json", secret=SECRETS["WH-SH"][2], warehouse="WH-SH", oms_url=api) as sh, \
            WmsStandIn("xml", secret=SECRETS["WH-BJ"][2], warehouse="WH-BJ", oms_url=api) as bj:
        for code, wms in (("WH-SH", sh), ("WH-BJ", bj)):
            fmt, env, _ = SECRETS[code]
            shop("warehouses", "set", code, f"wms_connector=wms_{fmt}", f"wms_settings.url={wms.url}",
                 f"wms_settings.secret_env={env}")
        # The oak table ships from Beijing (oversize), the frozen dumplings from Shanghai (cold chain).
        order_file = DATA / "orders" / "1002-table-and-dumplings.json"
        [result] = json.loads(shop("ingest", "--channel", "json", str(order_file), "--json"))
        number = result["number"]
        shop("run")
        story = json.loads(shop("order", "show", number, "--json"))
        children = {c["warehouse"]: c["number"] for c in story["children"]}
        assert set(children) == {"WH-SH", "WH-BJ"}
        for code, wms in (("WH-SH", sh), ("WH-BJ", bj)):
            [doc] = wms.requests("sales_order")
            assert children[code] in doc.body.decode()
            assert wms.docs("item"), "the WMS got the items before the first order naming them"
            wms.ship(children[code])
        for _ in range(50):   # the callbacks are stored by the server; each run applies what has come
            shop("run")
            states = {c["status"] for c in json.loads(shop("order", "show", number, "--json"))["children"]}
            if states == {"delivered"}:
                break
            time.sleep(0.1)
        assert states == {"delivered"}
    for code, child in children.items():
        story = json.loads(shop("order", "show", child, "--json"))
        assert [h["to"] for h in story["history"]] == [
            "paid", "routed", "dispatched", "accepted", "picking", "packed", "shipped",
            "in_transit", "in_transit", "out_for_delivery", "delivered"]   # collected, then in transit
        fmt = SECRETS[code][0]
        wire = [(x["direction"], x["kind"]) for x in story["exchanges"]]
        assert wire[:2] == [("out", "request"), ("in", "response")] and wire.count(("in", "callback")) == 4
        assert all(x["content_type"].startswith(f"application/{fmt}") for x in story["exchanges"]
                   if x["kind"] != "response" or x["status"] == 200)
        assert [t["status"] for t in story["tracking"] if t["customer_visible"]][:1] == ["SHIPPED"]
    printed = shop("order", "show", children["WH-BJ"])
    for heading in ("timeline", "decisions", "tracking", "messages on the wire"):
        assert heading in printed
    assert shop("stock", "verify").startswith("stock verified: ")

"""The README's examples work: its rule file loads and its plugin routes an order."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml

from oms_engine.engine import OMS
from oms_engine.plugin.testing import OrderBuilder, drive, ingest_one
from oms_engine.rules import load_ruleset_text
from oms_engine.storage.models import Order
from tests.support import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_rule_file_loads(make_oms: Callable[..., OMS]) -> None:
    [text] = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if b.startswith("ruleset:")]
    oms = make_oms()
    name = yaml.safe_load(text)["ruleset"]
    assert load_ruleset_text(text, filename="README.md", schema=oms.rulebook.schemas[name],
                             actions=oms.rulebook.catalogs[name]).rules


def test_the_readme_plugin_routes_northern_orders_from_beijing(make_oms: Callable[..., OMS], tmp_path: Path) -> None:
    [source] = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "@hookimpl" in b]
    plugin = tmp_path / "north.py"
    plugin.write_text(source, encoding="utf-8")
    rules = tmp_path / "readme_rules"
    (rules / "maps").mkdir(parents=True)
    for f in ("blocking.yaml", "split.yaml", "merging.yaml", "carriers.yaml", "notifications.yaml", "aftersales.yaml",
              "refunds.yaml", "commission.yaml", "freight.yaml", "stock.yaml",
              "maps/status.yaml"):
        (rules / f).write_text((ROOT / "rules" / f).read_text(encoding="utf-8"), encoding="utf-8")
    routing = ("ruleset: routing\nrules:\n  - name: north\n    priority: 1\n"
               "    then: [{route: {strategy: north_first}}]\n"
               "  - name: anywhere\n    priority: 2\n    then: [{route: {strategy: priority}}]\n")
    (rules / "routing.yaml").write_text(routing, encoding="utf-8")
    oms = make_oms(plugins=[str(plugin)], rules_dir=str(rules))
    north = ingest_one(oms, OrderBuilder("N-1").line("TEA-1", 1).ship_to(region="Beijing", city="Beijing").build())
    south = ingest_one(oms, OrderBuilder("S-1").line("TEA-1", 1).build())
    drive(oms)
    with oms.db.read() as s:
        where = {o.number: o.warehouse for o in s.query(Order).filter(Order.number.in_([north.number, south.number]))}
    assert where == {north.number: "WH-BJ", south.number: "WH-SH"}

"""The channel's own words about an order (its order type, its status there, the extension fields a deployment
names) as facts the rules read: a presale held, a gift-wrapped order sent to review, a child read as its parent."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_engine.config import ConfigError
from oms_engine.engine import OMS
from oms_engine.orders.explain import explain
from oms_engine.rules import RulesetInvalid
from tests.support import build_oms, copy_rules, order_json, payload

RULES = """
  - name: presales-wait-for-a-person
    priority: 5
    when:
      channel.order_type: presale
    then:
      - hold: {reason: a presale ships when its goods arrive}

  - name: gift-wrap-by-hand
    priority: 6
    when:
      channel.extensions.gift_wrap: "true"
    then:
      - hold: {reason: gift wrap is done by hand}
"""


def with_rules(tmp_path: Path, db_url: str, extra: str, **config: object) -> OMS:
    rules = copy_rules(tmp_path)
    blocking = rules / "blocking.yaml"
    blocking.write_text(blocking.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return build_oms(tmp_path, db_url, rules_dir=rules, **config)


def test_the_rules_read_the_channels_order_type_and_the_extension_fields_named_in_config(
        tmp_path: Path, db_url: str) -> None:
    oms = with_rules(tmp_path, db_url, RULES, channel_facts=["gift_wrap"])
    try:
        orders = [order_json("CF-PRESALE", order_type="presale", channel_status="open"),
                  order_json("CF-WRAP", extensions={"gift_wrap": True, "note": "for my aunt"}),
                  order_json("CF-PLAIN", order_type="standard", extensions={"gift_wrap": False})]
        numbers = [r.number for r in oms.intake.ingest("json", payload(*orders))]
        assert all(numbers)
        oms.pipeline.run_until_idle()
        with oms.db.session() as s:
            shown = [explain(s, n) for n in numbers if n]
        assert [o["status"] for o in shown] == ["on_hold", "on_hold", "dispatched"]
        assert [o["hold_reason"] for o in shown[:2]] == ["a presale ships when its goods arrive",
                                                       "gift wrap is done by hand"]
        [blocking] = [d for d in shown[0]["decisions"] if d["point"] == "blocking"]
        # What the rules read is recorded with the decision (channel.status is read by none of them).
        assert blocking["facts"]["channel"] == {"order_type": "presale", "extensions": {"gift_wrap": ""}}
    finally:
        oms.close()


def test_a_part_of_a_split_order_is_read_with_its_parents_channel_words(tmp_path: Path, db_url: str) -> None:
    rules = copy_rules(tmp_path)
    routing = rules / "routing.yaml"
    # Presales ship from Guangzhou; a Shanghai address would otherwise go to Shanghai first.
    routing.write_text(routing.read_text(encoding="utf-8").replace(
        "rules:\n", "rules:\n  - name: presales-from-guangzhou\n    priority: 1\n    when:\n"
        "      channel.order_type: presale\n    then:\n      - route: {strategy: fixed, warehouse: WH-GZ}\n\n", 1),
        encoding="utf-8")
    oms = build_oms(tmp_path, db_url, rules_dir=rules)
    try:
        [presale, plain] = oms.intake.ingest("json", payload(
            order_json("CF-SPLIT", [("TEA-1", 1), ("PEN-1", 1)], order_type="presale"),
            order_json("CF-NOT", [("TEA-1", 1)])))
        assert presale.number and plain.number
        oms.pipeline.run_until_idle()
        with oms.db.session() as s:
            children = [explain(s, c["number"]) for c in explain(s, presale.number)["children"]]
            assert explain(s, plain.number)["warehouse"] == "WH-SH"
        assert len(children) == 2       # one per merchant
        for child in children:
            assert child["warehouse"] == "WH-GZ"
            [routed] = [d for d in child["decisions"] if d["point"] == "routing"]
            assert routed["facts"]["channel"]["order_type"] == "presale"
    finally:
        oms.close()


def test_an_extension_field_not_named_in_config_is_refused_at_load_naming_it(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises((RulesetInvalid, ConfigError), match=r"blocking\.yaml.*channel\.extensions\.gift_wrap"):
        with_rules(tmp_path, sqlite_url, RULES).close()

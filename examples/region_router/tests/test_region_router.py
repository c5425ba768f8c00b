"""region_router in a real OMS, with the fixtures oms-engine ships (docs/plugins.md, "Testing your plugin")."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_engine.plugin.testing import OrderBuilder, drive, ingest_one, show_order, status

RULES = Path(__file__).resolve().parents[1] / "rules"
DONE = ("completed", "closed")  # closed: the simulated carrier's customer refused the parcel


@pytest.fixture
def oms_plugins() -> list[str]:
    return ["region_router"]  # as config.yaml's plugins: would name it


@pytest.fixture
def oms_rules_dir() -> Path:
    return RULES


def routed(oms, number: str) -> tuple[str, str]:
    """(warehouse, strategy that chose it)."""
    order = show_order(oms, number)
    [decision] = [d for d in order["decisions"] if d["point"] == "routing"]
    return order["warehouse"], decision["outcome"]["strategy"]


def beijing(builder: OrderBuilder) -> OrderBuilder:
    return builder.ship_to(region="Beijing", city="Beijing", district="Chaoyang", line1="1 Jianguo Road")


def test_a_northern_order_with_shop_skus_ships_from_beijing(oms) -> None:
    result = ingest_one(oms, beijing(OrderBuilder("RR-1001")).line("RR-TEA", 2, unit_price=5900).build())
    assert result.status == "paid"
    drive(oms)
    assert routed(oms, result.number) == ("WH-BJ", "north_first")
    assert [(ln["channel_sku"], ln["sku"]) for ln in show_order(oms, result.number)["lines"]] == [("RR-TEA", "TEA-1")]
    assert status(oms, result.number) in DONE


def test_a_southern_order_goes_by_priority(oms) -> None:
    order = OrderBuilder("RR-1002").line("RR-TEA", 1, unit_price=5900).ship_to(region="Guangdong", city="Guangzhou")
    number = ingest_one(oms, order.build()).number
    drive(oms)
    assert routed(oms, number) == ("WH-SH", "priority")


def test_the_north_without_stock_in_beijing_falls_through_to_the_next_rule(oms) -> None:
    number = ingest_one(oms, beijing(OrderBuilder("RR-1003")).line("PEN-1", 3).build()).number  # PEN-1: Guangzhou only
    drive(oms)
    assert routed(oms, number) == ("WH-GZ", "priority")


def test_cold_chain_to_the_north_is_not_sent_to_beijing(oms) -> None:
    number = ingest_one(oms, beijing(OrderBuilder("RR-1004")).line("RR-ICE", 1, unit_price=2900).build()).number
    drive(oms)
    assert routed(oms, number) == ("WH-SH", "fixed")  # WH-BJ has no cold chain


def test_an_unknown_shop_sku_holds_the_order(oms) -> None:
    number = ingest_one(oms, beijing(OrderBuilder("RR-1005")).line("RR-NOPE", 1, unit_price=100).build()).number
    assert status(oms, number) == "on_hold"
    assert "unmapped SKU 'RR-NOPE'" in show_order(oms, number)["hold_reason"]


def test_shop_skus_come_from_plugin_settings_too(make_oms) -> None:
    oms = make_oms(plugin_settings={"region_router": {"skus": {"RR-GREEN-TEA": "TEA-1"}}})
    order = beijing(OrderBuilder("RR-1006")).line("RR-GREEN-TEA", 1, unit_price=5900).line("RR-MUG", 1,
                                                                                          unit_price=3900)
    number = ingest_one(oms, order.build()).number
    assert status(oms, number) == "paid"
    drive(oms)
    assert {ln["sku"] for ln in show_order(oms, number)["lines"]} == {"TEA-1", "MUG-1"}
    assert routed(oms, number) == ("WH-BJ", "north_first")


def test_the_mapping_can_be_limited_to_some_channels(make_oms) -> None:
    oms = make_oms(plugin_settings={"region_router": {"channels": ["bazaar"]}})
    number = ingest_one(oms, OrderBuilder("RR-1007").line("RR-TEA", 1, unit_price=5900).build()).number
    assert status(oms, number) == "on_hold"  # the json channel's RR- SKUs are not this plugin's business


def test_bad_settings_stop_the_start(make_oms) -> None:
    with pytest.raises(Exception, match=r"plugin_settings.region_router: unknown setting\(s\) sku"):
        make_oms(plugin_settings={"region_router": {"sku": {"RR-X": "TEA-1"}}})


def test_rule_parameters_are_checked() -> None:
    from region_router import validate

    validate({"strategy": "north_first", "warehouse": "WH-BJ", "regions": ["Beijing", "Tianjin"]})
    with pytest.raises(ValueError, match="did you mean 'warehouse'"):
        validate({"strategy": "north_first", "warehous": "WH-BJ"})
    with pytest.raises(ValueError, match="'regions' must be a non-empty list of region names"):
        validate({"strategy": "north_first", "regions": "Beijing"})


def test_the_regions_parameter_changes_what_is_north(make_oms, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for f in RULES.rglob("*.yaml"):
        target = rules / f.relative_to(RULES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    routing = rules / "routing.yaml"
    routing.write_text(routing.read_text(encoding="utf-8").replace(
        "{strategy: north_first, warehouse: WH-BJ}", "{strategy: north_first, warehouse: WH-BJ, regions: [Shanghai]}"),
        encoding="utf-8")
    oms = make_oms(rules_dir=str(rules))
    number = ingest_one(oms, OrderBuilder("RR-1008").line("RR-TEA", 1, unit_price=5900).build()).number  # Shanghai
    drive(oms)
    assert routed(oms, number) == ("WH-BJ", "north_first")

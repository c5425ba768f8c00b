"""The plugin manager and the registries: switches, typo detection, overriding built-ins, hook docs."""

from __future__ import annotations

import inspect
import logging
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from oms_engine.config import load_config
from oms_engine.orders.queries import get_order
from oms_engine.plugin import hookspecs
from oms_engine.plugin.manager import DEFAULT_PLUGINS, PluginError, build_plugin_manager
from oms_engine.plugin.registry import PluginRegistry, RegistryError
from oms_engine.storage.models import DecisionRecord
from tests.support import ROOT, build_oms, order_json, payload


@pytest.fixture(autouse=True)
def _no_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OMS_LOAD_PLUGINS", "OMS_BLOCK_PLUGINS", "OMS_TRACE_HOOKS"):
        monkeypatch.delenv(var, raising=False)


def write_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    """Write a plugin module into tmp_path, put it on sys.path, return its (unique) module name."""
    name = f"oms_test_plugin_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def config(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return load_config(ROOT / "config.yaml", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                       outbox_dir=str(tmp_path / "outbox"), **kw)


def test_all_builtins_load_by_default() -> None:
    pm = build_plugin_manager()
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name) is not None, name


def test_block_plugins_removes_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMS_BLOCK_PLUGINS", "oms_plugins.connectors.sim_carrier")
    pm = build_plugin_manager()
    assert pm.get_plugin("oms_plugins.connectors.sim_carrier") is None
    assert pm.is_blocked("oms_plugins.connectors.sim_carrier")
    assert pm.get_plugin("oms_plugins.connectors.sim_wms") is not None
    ext = PluginRegistry(pm, config(tmp_path))
    assert "sim_carrier" not in ext.connectors and "sim_wms" in ext.connectors
    with pytest.raises(RegistryError, match="sim_carrier"):
        ext.connectors.get("sim_carrier")


def test_load_plugins_loads_only_the_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMS_LOAD_PLUGINS", "oms_plugins.channels.json_channel, oms_plugins.strategies.split")
    pm = build_plugin_manager()
    loaded = {name for name, _ in pm.list_name_plugin()}
    assert loaded == {"oms_plugins.channels.json_channel", "oms_plugins.strategies.split"}
    ext = PluginRegistry(pm, config(tmp_path))
    assert ext.channels.names() == ["json"]
    assert "by_merchant" in ext.split_strategies
    assert ext.routing_strategies.names() == [] and ext.connectors.names() == []


def test_misspelt_hook_fails_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    name = write_plugin(tmp_path, monkeypatch, """
        from oms_engine import hookimpl

        @hookimpl
        def oms_register_chanels(register, config):
            pass
    """)
    with pytest.raises(PluginError, match="oms_register_chanels"):
        build_plugin_manager([name])
    # and through the OMS itself, as config.yaml's plugins: list would load it
    with pytest.raises(PluginError, match="oms_register_chanels"):
        build_oms(tmp_path, f"sqlite:///{tmp_path / 'typo.db'}", plugins=[name])


@pytest.mark.parametrize("mark", ["wrapper=True", "hookwrapper=True"])
def test_a_wrapper_is_refused_at_start_not_left_to_never_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              mark: str) -> None:
    name = write_plugin(tmp_path, monkeypatch, f"""
        from oms_engine import hookimpl

        @hookimpl({mark})
        def oms_resolve_sku(channel, sku, config):
            result = yield
            return result
    """)
    with pytest.raises(PluginError, match=f"plugin '{name}': hook 'oms_resolve_sku' is a wrapper"):
        build_plugin_manager([name])
    with pytest.raises(PluginError, match="wrappers are not supported"):
        build_oms(tmp_path, f"sqlite:///{tmp_path / 'wrapper.db'}", plugins=[name])


def test_a_hook_implemented_under_another_name_is_checked_by_its_hook_name(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    name = write_plugin(tmp_path, monkeypatch, """
        from oms_engine import hookimpl

        @hookimpl(specname="oms_resolve_sku")
        def upper_case_skus(channel, sku, config):
            return sku.upper()
    """)
    pm = build_plugin_manager([name])
    registry = PluginRegistry(pm, config(tmp_path))
    assert registry.resolve_sku("json", "abc-1") == "ABC-1"


def test_tryfirst_moves_an_implementation_ahead_of_later_loaded_plugins(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    first = write_plugin(tmp_path, monkeypatch, """
        from oms_engine import hookimpl

        @hookimpl(tryfirst=True)
        def oms_resolve_sku(channel, sku, config):
            return "FIRST-" + sku
    """)
    later = write_plugin(tmp_path, monkeypatch, """
        from oms_engine import hookimpl

        @hookimpl
        def oms_resolve_sku(channel, sku, config):
            return "LATER-" + sku
    """)
    plain = write_plugin(tmp_path, monkeypatch, """
        from oms_engine import hookimpl

        @hookimpl
        def oms_resolve_sku(channel, sku, config):
            return "PLAIN-" + sku
    """)
    assert PluginRegistry(build_plugin_manager([first, later]), config(tmp_path)).resolve_sku("json", "a") == "FIRST-a"
    # without the mark, the plugin listed last is asked first
    assert PluginRegistry(build_plugin_manager([plain, later]), config(tmp_path)).resolve_sku("json", "a") == "LATER-a"


def test_unimportable_plugin_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="oms_no_such_plugin_module"):
        build_plugin_manager(["oms_no_such_plugin_module"])


OVERRIDE = """
    from oms_engine import SplitGroup, SplitPlan
    from oms_engine import hookimpl

    def keep_together(order, stock, params):
        return SplitPlan(groups=(SplitGroup(lines={ln.line_no: ln.quantity for ln in order.lines},
                                            reason="kept together by the override"),), strategy="by_merchant")

    @hookimpl
    def oms_register_split_strategies(register):
        register("by_merchant", keep_together)
"""


def test_third_party_overrides_builtin_strategy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    name = write_plugin(tmp_path, monkeypatch, OVERRIDE)
    pm = build_plugin_manager([name])
    ext = PluginRegistry(pm, config(tmp_path))
    assert ext.split_strategies.get("by_merchant").run.__module__ == name
    assert "by_attribute" in ext.split_strategies  # the other built-ins are still there


def test_override_is_what_the_pipeline_uses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    name = write_plugin(tmp_path, monkeypatch, OVERRIDE)
    oms = build_oms(tmp_path, f"sqlite:///{tmp_path / 'o.db'}", plugins=[name])
    try:
        # two merchants: rules/split.yaml picks by_merchant, which the plugin now answers with one group
        [res] = oms.intake.ingest("json", payload(order_json("OVR-1", [("TEA-1", 1), ("PEN-1", 1)])))
        oms.pipeline.run_until_idle()
        with oms.db.session() as s:
            order = get_order(s, res.number)
            assert order.status != "split" and not order.children
            [dec] = s.scalars(select(DecisionRecord).where(DecisionRecord.order_id == order.id,
                                                           DecisionRecord.point == "split"))
            assert [g["reason"] for g in dec.outcome["groups"]] == ["kept together by the override"]
    finally:
        oms.close()


def test_two_third_party_plugins_with_one_name_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    src = """
        from oms_engine import SplitPlan
        from oms_engine import hookimpl

        def mine(order, stock, params):
            return SplitPlan(groups=())

        @hookimpl
        def oms_register_split_strategies(register):
            register("my_strategy", mine)
    """
    a = write_plugin(tmp_path, monkeypatch, src)
    b = write_plugin(tmp_path, monkeypatch, src)
    pm = build_plugin_manager([a, b])
    with pytest.raises(RegistryError, match="my_strategy"):
        PluginRegistry(pm, config(tmp_path))


def test_two_third_party_plugins_overriding_one_builtin_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    a = write_plugin(tmp_path, monkeypatch, OVERRIDE)
    b = write_plugin(tmp_path, monkeypatch, OVERRIDE)
    with pytest.raises(RegistryError, match="by_merchant"):
        PluginRegistry(build_plugin_manager([a, b]), config(tmp_path))


def test_trace_hooks_logs_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OMS_TRACE_HOOKS", "1")
    with caplog.at_level(logging.DEBUG, logger="oms.hooks"):
        PluginRegistry(build_plugin_manager(), config(tmp_path))
    assert "oms_register_channels" in caplog.text


HOOKS = sorted(n for n, f in vars(hookspecs).items()
               if n.startswith("oms_") and callable(f) and hasattr(f, f"{hookspecs.PROJECT}_spec"))


def test_hookspecs_are_found() -> None:
    assert "oms_register_channels" in HOOKS and "oms_after_transition" in HOOKS
    assert len(HOOKS) >= 10


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc and len(doc) > 20, f"{hook} has no docstring"

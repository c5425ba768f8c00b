"""Every YAML example in docs/rules.md loads, and every rule-test example passes against the ruleset shown
before it, with the project's own plugins."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from oms_engine.config import load_config
from oms_engine.decisions.rulebook import Rulebook
from oms_engine.plugin.manager import load_plugins
from oms_engine.plugin.registry import PluginRegistry
from oms_engine.rules import load_ruleset_text, run_rule_tests
from tests.support import ROOT

DOC = ROOT / "docs" / "rules.md"
# The rule files and rule tests the page shows (a config.yaml excerpt is tested where its setting is).
BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
          if b.startswith("ruleset:")]


@pytest.fixture(scope="module")
def rulebook(tmp_path_factory: pytest.TempPathFactory) -> Rulebook:
    tmp = tmp_path_factory.mktemp("rulesdoc")
    config = load_config(ROOT / "config.yaml", outbox_dir=str(tmp / "outbox"))
    return Rulebook(ROOT / "rules", PluginRegistry(load_plugins(base_dir=ROOT).pm, config))


def test_the_page_has_examples() -> None:
    assert sum("cases:" in b for b in BLOCKS) >= 1 and sum("cases:" not in b for b in BLOCKS) >= 4


@pytest.mark.parametrize("index", [i for i, b in enumerate(BLOCKS) if "cases:" not in b])
def test_every_ruleset_example_loads(rulebook: Rulebook, index: int) -> None:
    text = BLOCKS[index]
    name = yaml.safe_load(text)["ruleset"]
    ruleset = load_ruleset_text(text, filename=f"docs/rules.md example {index}", schema=rulebook.schemas[name],
                                actions=rulebook.catalogs[name])
    assert ruleset.rules or name == "notifications"


@pytest.mark.parametrize("index", [i for i, b in enumerate(BLOCKS) if "cases:" in b])
def test_every_rule_test_example_passes(rulebook: Rulebook, tmp_path: Path, index: int) -> None:
    cases = BLOCKS[index]
    name = yaml.safe_load(cases)["ruleset"]
    shown = next(b for b in reversed(BLOCKS[:index]) if "cases:" not in b and yaml.safe_load(b)["ruleset"] == name)
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    (rules / f"{name}.yaml").write_text(shown, encoding="utf-8")
    (rules / "tests").mkdir()
    (rules / "tests" / f"{name}.yaml").write_text(cases, encoding="utf-8")
    results = run_rule_tests(rules, rules / "tests", schemas=rulebook.schemas, actions=rulebook.catalogs)
    assert results and all(r.passed for r in results), [r.message for r in results if not r.passed]

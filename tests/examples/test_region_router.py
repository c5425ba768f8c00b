"""examples/region_router, a third-party plugin written from docs/plugins.md, works the three ways a plugin is used.

Its own test suite passes with only the fixtures oms-engine ships; the real ``oms``
command finds it through config.yaml's ``plugins:`` (a module kept next to
config.yaml) and through an ``oms`` entry point of a distribution (a dist-info
directory on PYTHONPATH, so nothing is installed into the virtualenv); and a
plugin with a misspelt hook argument stops ``oms`` with one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from oms_engine.clock import Clock
from oms_engine.plugin.testing import OrderBuilder, migrated_sqlite_url, seed_world
from oms_engine.storage.db import Database

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "region_router"
OMS_BIN = str(Path(sys.executable).parent / "oms")
HOOKS = ["oms_register_routing_strategies", "oms_resolve_sku"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the OMS switches, PYTHONPATH or a terminal width: what a fresh shell would have."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OMS_") and k not in ("PYTHONPATH", "COLUMNS", "LINES")}
    env.update(NO_COLOR="1", TERM="dumb", **extra)
    return env


def oms(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OMS_BIN, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=env or clean_env())


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0 and "Traceback" not in p.stderr, f"{p.args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def plugin_rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(stdout)}


def test_the_example_passes_its_own_tests() -> None:
    p = subprocess.run([sys.executable, "-m", "pytest", "examples/region_router/tests", "-q", "-p", "no:cacheprovider"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout and "failed" not in p.stdout and "error" not in p.stdout


def test_config_yaml_finds_the_module_next_to_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(EXAMPLE / "region_router.py", site / "region_router.py")
    (site / "config.yaml").write_text("plugins:\n  - region_router\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"  # neither the working directory nor PYTHONPATH has the module
    elsewhere.mkdir()
    rows = plugin_rows(ok(oms("--config", str(site / "config.yaml"), "plugins", "list", "--json", cwd=elsewhere)))
    assert rows["region_router"] == {"name": "region_router", "origin": "config.yaml",
                                     "location": str(site / "region_router.py"), "hooks": HOOKS}


def fake_distribution(directory: Path) -> Path:
    """An installed oms-region-router 0.1, as pip would leave it, in a directory of its own."""
    directory.mkdir()
    shutil.copy(EXAMPLE / "region_router.py", directory / "region_router.py")
    info = directory / "oms_region_router-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: oms-region-router\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[oms]\nregion_router = region_router\n", encoding="utf-8")
    return directory


def seeded_database(directory: Path) -> str:
    """A migrated SQLite database with the test world, and no rules yet: the first ``oms`` publishes the example's."""
    directory.mkdir()
    url = migrated_sqlite_url(directory)
    db = Database(url)
    try:
        seed_world(SimpleNamespace(db=db, clock=Clock()))  # type: ignore[arg-type]
    finally:
        db.dispose()
    return url


def test_an_entry_point_loads_it_and_it_maps_and_routes(tmp_path: Path) -> None:
    site = fake_distribution(tmp_path / "site-packages")
    work = tmp_path / "work"
    url = seeded_database(work)
    (work / "templates").mkdir()
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": url, "rules_dir": str(EXAMPLE / "rules"), "templates_dir": "templates",
        "outbox_dir": "outbox", "number_secret": "region-router-test"}), encoding="utf-8")
    env = clean_env(PYTHONPATH=str(site))

    rows = plugin_rows(ok(oms("--config", str(config), "plugins", "list", "--json", cwd=work, env=env)))
    assert rows["region_router"] == {"name": "region_router", "origin": "entry point of oms-region-router 0.1",
                                     "location": str(site / "region_router.py"), "hooks": HOOKS}

    order = OrderBuilder("RR-EP-1").line("RR-TEA", 2, unit_price=5900).ship_to(
        region="Beijing", city="Beijing", district="Chaoyang", line1="1 Jianguo Road").build()
    (work / "order.json").write_text(json.dumps(order), encoding="utf-8")
    [result] = json.loads(ok(oms("--config", str(config), "ingest", "--channel", "json", "--json", "order.json",
                                 cwd=work, env=env)))
    assert result["status"] == "paid", result  # RR-TEA was mapped, so the order was not held as unmapped
    ok(oms("--config", str(config), "run", cwd=work, env=env))
    shown = json.loads(ok(oms("--config", str(config), "order", "show", result["number"], "--json", cwd=work,
                              env=env)))
    assert [(ln["channel_sku"], ln["sku"]) for ln in shown["lines"]] == [("RR-TEA", "TEA-1")]
    [routing] = [d for d in shown["decisions"] if d["point"] == "routing"]
    assert (shown["warehouse"], routing["outcome"]["strategy"]) == ("WH-BJ", "north_first")
    assert shown["status"] == "dispatched"  # sent to the (simulated) warehouse; its answers come later


def test_a_misspelt_hook_argument_stops_oms_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad_router.py").write_text(textwrap.dedent("""
        from oms_engine import hookimpl


        @hookimpl
        def oms_register_routing_strategies(regster, config):
            pass
    """), encoding="utf-8")
    (tmp_path / "config.yaml").write_text("plugins: [bad_router]\n", encoding="utf-8")
    p = oms("--config", str(tmp_path / "config.yaml"), "plugins", "list", cwd=tmp_path)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "'bad_router'" in lines[0] and "'oms_register_routing_strategies'" in lines[0] and "'regster'" in lines[0]
    assert "did you mean 'register'" in lines[0]

"""``oms plugins list``: every plugin with its origin, its file and the hooks it implements, as a table and as JSON."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oms_engine.plugin import hookspecs
from oms_engine.plugin.manager import DEFAULT_PLUGINS

OMS_BIN = str(Path(sys.executable).parent / "oms")


def expected_builtins() -> list[dict[str, Any]]:
    """What the listing must say of each built-in, worked out from the modules themselves."""
    rows = []
    for name in DEFAULT_PLUGINS:
        module = importlib.import_module(name)
        hooks = [attr for attr in dir(module) if hasattr(getattr(module, attr), f"{hookspecs.PROJECT}_impl")]
        assert hooks, f"built-in {name} implements no hook"
        rows.append({"name": name, "origin": "built-in", "location": module.__file__, "hooks": hooks})
    return rows


def plugins_list(tmp_path: Path, *args: str, **env: str) -> str:
    config = tmp_path / "config.yaml"
    if not config.exists():
        config.write_text("plugins: []\n", encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OMS_") and k != "PYTHONPATH"}
    environ.update(COLUMNS="250", NO_COLOR="1", TERM="dumb", **env)
    p = subprocess.run([OMS_BIN, "--config", str(config), "plugins", "list", *args], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env=environ)
    assert p.returncode == 0 and "Traceback" not in p.stderr, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def table_rows(stdout: str) -> list[dict[str, Any]]:
    """The rows of the rich table; a plugin with several hooks takes one line per hook."""
    rows: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if not line.startswith("│"):
            continue
        name, origin, hook, location = (cell.strip() for cell in line.strip("│").split("│"))
        if name:
            rows.append({"name": name, "origin": origin, "location": location, "hooks": [hook] if hook else []})
        else:
            rows[-1]["hooks"].append(hook)
    return rows


def test_json_lists_every_builtin_with_its_origin_file_and_hooks(tmp_path: Path) -> None:
    rows = json.loads(plugins_list(tmp_path, "--json"))
    expected = expected_builtins()
    # Built-ins come first, in loading order; installed entry points (if any) would follow.
    assert rows[:len(expected)] == expected
    assert all(Path(r["location"]).is_file() for r in rows)


def test_the_table_shows_the_same(tmp_path: Path) -> None:
    stdout = plugins_list(tmp_path)
    header = next(line for line in stdout.splitlines() if "plugin" in line)
    assert [c.strip() for c in header.strip().strip("┃").split("┃")] == ["plugin", "from", "hooks", "file"]
    expected = expected_builtins()
    assert table_rows(stdout)[:len(expected)] == expected


@pytest.mark.parametrize("switch", ["OMS_LOAD_PLUGINS", "OMS_BLOCK_PLUGINS"])
def test_the_switches_apply_to_the_listing(tmp_path: Path, switch: str) -> None:
    (tmp_path / "house").mkdir()
    (tmp_path / "house" / "house_rules.py").write_text(
        "from oms_engine import hookimpl\n\n\n@hookimpl\ndef oms_resolve_sku(sku):\n    return None\n",
        encoding="utf-8")
    (tmp_path / "config.yaml").write_text("plugins: [house/house_rules.py]\n", encoding="utf-8")
    # A file entry answers to its stem as well as to the entry itself.
    for value in ("house_rules", "house/house_rules.py"):
        selection = f"oms_plugins.channels.json_channel,{value}"
        names = [r["name"] for r in json.loads(plugins_list(tmp_path, "--json", **{switch: selection}))]
        if switch == "OMS_LOAD_PLUGINS":
            assert names == ["oms_plugins.channels.json_channel", "house_rules"], value
        else:
            assert "house_rules" not in names and "oms_plugins.channels.json_channel" not in names, value
            assert "oms_plugins.strategies.routing" in names

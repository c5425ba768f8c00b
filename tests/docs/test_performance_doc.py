"""Every command in docs/performance.md runs as written, with small sizes.

The figures on that page come from these commands at full size; here each is
run with a small world and few orders (the sizes the command asks for are
overridden, its options and subcommands kept), so a command the page shows
cannot stop working unnoticed. Nothing about speed is asserted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support import PG_URL, ROOT

OMS_BIN = str(ROOT / ".venv" / "bin" / "oms")
DOC = ROOT / "docs" / "performance.md"
DOC_PG = "postgresql://postgres@127.0.0.1:5432/test"

# Option -> the small value it gets here; options given twice take the last value (click).
SMALLER = {"--orders": "30", "--stored": "60", "--memory-every": "10", "--rate": "20", "--duration": "1",
           "--customers": "200", "--skus": "800", "--server-threads": "8"}
SWEEP_VALUES = 1    # a sweep runs its first value, made small: the command, its figures and plot, not a curve
SMALL_VALUE = {"stored": 60, "rules": 20, "lines": 20, "workers": 2, "orders": 30}


def commands() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("oms bench"):
                found.append(line)
    return list(dict.fromkeys(found))     # a command the page shows twice runs once


def shrink(args: list[str], out: Path) -> list[str]:
    """The command's arguments with every size made small (and a sweep's output in ``out``)."""
    small = list(args)
    for i, arg in enumerate(small[:-1]):
        if arg in SMALLER:
            small[i + 1] = SMALLER[arg]
    if small[:2] == ["bench", "sweep"]:
        parameter, values = small[2], small[3].split(",")[:SWEEP_VALUES]
        small[3] = ",".join(str(min(int(v), SMALL_VALUE[parameter])) for v in values)
        small[4:4] = ["--out", str(out)]
        small += ["--no-baseline"]
    if small[:2] == ["bench", "http"]:
        # Fewer senders than the server admits at once: a slow moment here is never answered 503 busy.
        small += ["--threads", "4"]
    else:
        small += ["--payload", "15"]
    small += [flag for opt in ("--skus", "--customers") if opt not in small for flag in (opt, SMALLER[opt])]
    return small


def test_the_page_shows_every_kind_of_run() -> None:
    shown = {" ".join(shlex.split(c)[:3]) for c in commands()}
    assert {"oms bench --json", "oms bench sweep", "oms bench http"} <= shown


@pytest.mark.parametrize("command", commands())
def test_a_command_of_the_performance_page_runs(command: str, tmp_path: Path) -> None:
    args = shlex.split(command)[1:]
    if DOC_PG in args:
        if not PG_URL:
            pytest.skip("PostgreSQL tests skipped: OMS_TEST_DATABASE_URL is not set")
        args[args.index(DOC_PG)] = PG_URL   # the run keeps to a schema of its own in it
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
    env.update(OMS_CONFIG=str(ROOT / "config.yaml"), NO_COLOR="1", TERM="dumb")
    out = tmp_path / "perf"
    p = subprocess.run([OMS_BIN, *shrink(args, out)], capture_output=True, text=True, timeout=300, env=env,
                       cwd=tmp_path)
    assert p.returncode == 0, f"{command}: exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    if "sweep" in args:
        parameter = args[args.index("sweep") + 1]
        points = json.loads((out / f"{parameter}.json").read_text(encoding="utf-8"))
        assert len(points) == SWEEP_VALUES and all(pt["orders_per_s"] > 0 for pt in points)
        assert (out / f"{parameter}.png").read_bytes()[:4] == b"\x89PNG"
    elif "--json" in args:
        figures = json.loads(p.stdout.strip().splitlines()[-1])
        assert figures.get("orders_per_s", figures.get("achieved_per_s", 0)) > 0
    else:
        assert "orders" in p.stdout

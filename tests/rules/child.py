"""Run Python in a child process, so that a durable_rules crash (abort, segfault) fails one test only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Shared by the child snippets: build a ruleset from conditions and check the engine against
# the reference evaluator (the oracle) on some facts.
PRELUDE = """
import json
from oms_engine.rules import RuleEngine, RulesetInvalid, evaluate_reference, load_ruleset_text


def ruleset(conditions, mode="all", name="p"):
    lines = [f"ruleset: {name}", f"mode: {mode}", "rules:"]
    for i, when in enumerate(conditions):
        lines += [f"  - name: r{i}", f"    priority: {(i * 7) % 5}", "    then: [flag]"]
        if when is not None:
            lines.append(f"    when: {when}")
    return load_ruleset_text("\\n".join(lines) + "\\n", filename=f"{name}.yaml")


def agree(engine, rs, facts_list):
    engine.load(rs)
    counts = []
    for facts in facts_list:
        got = engine.evaluate(rs.name, facts).fired_names
        want = evaluate_reference(rs, facts).fired_names
        assert got == want, (got[:8], want[:8], len(got), len(want))
        counts.append(len(got))
    return counts
"""


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run PRELUDE + `code` with the project importable; return the JSON printed on its last line."""
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        how = f"signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0 else f"exit {proc.returncode}"
        raise AssertionError(f"child process ended with {how}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])

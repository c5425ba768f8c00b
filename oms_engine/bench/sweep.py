"""A series of benchmark runs over one parameter, its figures as JSON and a plot as PNG.

Each point is a separate ``oms bench --json`` process, so no run inherits
another's caches, compiled rules or memory; with ``repeat`` the point's
figures are those of its median run by orders per second. The plots in
docs/performance.md are made by this module (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median
from typing import Any

# What each parameter is called on the command line and on the plot's axis.
PARAMETERS: dict[str, tuple[str, str]] = {
    "rules": ("--rules", "rules in the blocking ruleset"),
    "workers": ("--workers", "oms worker processes"),
    "lines": ("--lines", "lines per order"),
    "stored": ("--stored", "orders already stored"),
    "orders": ("--orders", "orders in the run"),
}


def run_point(oms_args: Sequence[str], bench_args: Sequence[str], parameter: str, value: int) -> dict[str, Any]:
    flag, _ = PARAMETERS[parameter]
    oms_bin = str(Path(sys.executable).parent / "oms")
    p = subprocess.run([oms_bin, *oms_args, "bench", "--json", *bench_args, flag, str(value)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"oms bench {flag} {value} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return figures


def sweep(parameter: str, values: Sequence[int], *, oms_args: Sequence[str] = (), bench_args: Sequence[str] = (),
          repeat: int = 1, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Figures per value: the median run (by orders per second) of ``repeat``, with every run's rate."""
    if parameter not in PARAMETERS:
        raise ValueError(f"cannot sweep '{parameter}': choose one of {', '.join(PARAMETERS)}")
    points = []
    for value in values:
        runs = [run_point(oms_args, bench_args, parameter, value) for _ in range(repeat)]
        rates = [r["orders_per_s"] for r in runs]
        chosen = min(runs, key=lambda r: abs(r["orders_per_s"] - median(rates)))
        points.append({**chosen, parameter: value, "runs_orders_per_s": rates})
        if progress:
            progress(f"{parameter}={value}: {chosen['orders_per_s']} orders/s "
                     f"(runs: {', '.join(str(r) for r in rates)})")
    return points


def plot(parameter: str, points: Sequence[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Orders per second (and the 99th-percentile latency) against the parameter."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'oms-engine[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p[parameter] for p in points]
    rates = [p["orders_per_s"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(xs, rates, marker="o", color="tab:blue", label="orders per second")
    if parameter == "workers" and xs and rates:
        # The line a perfectly shared load would follow from the first point.
        ax.plot(xs, [rates[0] * x / xs[0] for x in xs], linestyle=":", color="grey", label="linear from one worker")
    ax.set_xlabel(PARAMETERS[parameter][1])
    ax.set_ylabel("orders per second")
    ax.set_ylim(bottom=0)
    if parameter == "stored":
        ax.set_xscale("symlog", linthresh=1000)
    p99 = [p.get("p99_ms") for p in points]
    if all(v is not None for v in p99):
        right = ax.twinx()
        right.plot(xs, p99, marker="s", linestyle="--", color="tab:orange", label="p99 latency (ms)")
        right.set_ylabel("p99 latency, ms")
        right.set_ylim(bottom=0)
        lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], loc="best", fontsize=8)
    else:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"oms bench: throughput against {PARAMETERS[parameter][1]}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write(parameter: str, points: Sequence[dict[str, Any]], out: Path, *, title: str = "") -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    data, image = out / f"{parameter}.json", out / f"{parameter}.png"
    data.write_text(json.dumps(list(points), indent=1) + "\n", encoding="utf-8")
    plot(parameter, points, image, title=title)
    return data, image

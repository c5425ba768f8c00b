"""``oms bench``: the figures the performance docs quote come out of real runs, whole and consistent.

Small worlds and few orders: these tests check what the benchmark reports
and does, never how fast anything is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from oms_engine.storage.models import ActiveRule, Order, RuleVersion
from tests.support import ROOT

OMS_BIN = str(Path(ROOT) / ".venv" / "bin" / "oms")
SMALL = ("--skus", "800", "--customers", "200", "--payload", "40")
ISSUE_KEYS = {"orders_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "rules_share", "baseline_orders_per_s", "ratio"}


def _command(tmp_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """``oms bench`` with the repository's rules and templates, and an environment without OMS_ settings."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"rules_dir": str(ROOT / "rules"), "templates_dir": str(ROOT / "templates"),
                                      "number_secret": "bench-tests"}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
    return [OMS_BIN, "--config", str(config), "bench", *args], env


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    command, env = _command(tmp_path, *SMALL, "--json", *args)
    p = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def test_a_run_reports_every_figure_and_finishes_every_order(tmp_path: Path) -> None:
    figures = bench(tmp_path, "--orders", "80")
    assert figures.keys() >= ISSUE_KEYS
    assert all(isinstance(figures[k], float | int) and figures[k] > 0 for k in ISSUE_KEYS)
    assert figures["orders"] == figures["finished"] == 80
    assert figures["processed_twice"] == 0
    assert figures["p50_ms"] <= figures["p99_ms"]
    assert 0 < figures["rules_share"] < 1
    # the ratio is the run's rate over the baseline's, as printed
    assert figures["ratio"] == pytest.approx(figures["orders_per_s"] / figures["baseline_orders_per_s"], rel=0.01)


def test_generated_rules_and_stored_history_are_in_the_database_the_run_used(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    figures = bench(tmp_path, "--orders", "40", "--rules", "60", "--stored", "300", "--db", url)
    assert figures["blocking_rules"] == 60 and figures["stored"] == 300
    assert figures["finished"] == 40 and figures["baseline_orders_per_s"] is None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            parents = conn.scalar(select(func.count()).select_from(Order).where(Order.parent_id.is_(None)))
            text = conn.scalar(select(RuleVersion.text).join(ActiveRule, ActiveRule.version_id == RuleVersion.id)
                               .where(ActiveRule.ruleset == "blocking"))
    finally:
        engine.dispose()
    assert parents == 300 + 40
    assert len(yaml.safe_load(text or "")["rules"]) == 60


# Workers share work through PostgreSQL's row locks; on SQLite one writer at a time is all there is.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_workers_share_the_load_and_none_is_processed_twice(db_url: str, tmp_path: Path) -> None:
    figures = bench(tmp_path, "--orders", "80", "--workers", "2", "--db", db_url)
    assert figures["workers"] == 2 and figures["backend"] == "postgresql"
    assert figures["finished"] == 80 and figures["processed_twice"] == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_with_a_backlog_the_workers_take_every_order_after_it_is_in(db_url: str, tmp_path: Path) -> None:
    figures = bench(tmp_path, "--orders", "60", "--workers", "2", "--backlog", "--db", db_url, "--no-baseline")
    assert figures["backlog"] is True and figures["workers"] == 2
    assert figures["finished"] == 60 and figures["processed_twice"] == 0


def test_a_backlog_without_workers_is_refused(tmp_path: Path) -> None:
    p = subprocess.run([OMS_BIN, "bench", "--backlog", "--orders", "10"], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert p.returncode == 2 and "--backlog times worker processes" in p.stderr


def _bench_schemas(url: str, pid: int) -> set[str]:
    """The benchmark schemas of process ``pid`` (another suite on the same database has its own)."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return set(conn.scalars(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :mine"),
                                    {"mine": f"oms_bench_{pid}_%"}))
    finally:
        engine.dispose()


def _start_bench(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    command, env = _command(tmp_path, *SMALL, *args, "--no-baseline")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_run_keeps_to_a_schema_of_its_own_and_drops_it_even_when_stopped(
        db_url: str, tmp_path: Path) -> None:
    done = _start_bench(tmp_path, "--orders", "20", "--db", db_url)
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err[-3000:]
    assert _bench_schemas(db_url, done.pid) == set()
    # Stopped by a kill (a CI timeout, say) half-way through: its schema goes all the same.
    run = _start_bench(tmp_path, "--orders", "200000", "--db", db_url)
    try:
        deadline = time.monotonic() + 120
        while not _bench_schemas(db_url, run.pid):
            assert run.poll() is None and time.monotonic() < deadline, "the run never made its schema"
            time.sleep(0.05)
        time.sleep(1.0)   # into the run proper: the schema has tables and a transaction is likely open
        run.terminate()
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert _bench_schemas(db_url, run.pid) == set()


def test_a_sweep_writes_its_figures_and_a_plot(tmp_path: Path) -> None:
    out = tmp_path / "perf"
    command, env = _command(tmp_path, "sweep", "lines", "1,4", "--out", str(out), "--orders", "30", *SMALL,
                            "--no-baseline")
    p = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    points = json.loads((out / "lines.json").read_text(encoding="utf-8"))
    assert [pt["lines"] for pt in points] == [1, 4]
    assert all(pt["finished"] == 30 and pt["orders_per_s"] > 0 and len(pt["runs_orders_per_s"]) == 1
               for pt in points)
    assert (out / "lines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_sigterm_swallowed_by_a_weakref_callback_still_ends_the_run() -> None:
    """The handler raises wherever the main thread is; inside a callback the garbage collector runs,
    Python prints the exit as ignored and goes on. The run's next step ends it all the same."""
    import weakref

    from oms_engine.bench.runner import sigterm_as_exit, stop_if_asked

    class Thing:
        pass

    def callback(_ref: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))   # the handler runs here, inside the callback, and its exit is swallowed

    went_on = False
    with pytest.raises(SystemExit) as stopped, sigterm_as_exit():
        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing
        went_on = ref() is None   # still running after the signal
        stop_if_asked()
    assert went_on and stopped.value.code == 128 + signal.SIGTERM
    stop_if_asked()   # once the run has ended, nothing is pending

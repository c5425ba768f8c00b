"""The ``oms`` command against a private config and database: in this process by default, or as the real
console script in a process of its own.

Starting ``oms`` costs about a second (most of it importing the engine), and most tests are about what a
command prints and does, not about the process it runs in. So :meth:`Cli.__call__` runs the command's click
group in this process, with what a process of its own would have: the same environment (``OMS_*`` of the
test run removed), the working directory, stdout and stderr apart, logging, signal handlers and the garbage
collector as they were before, the terminal read again from the environment. A test whose subject is the
process boundary (the installed entry point, an exit code from the console script, a kill, several at once)
asks for the real thing: ``cli(..., subprocess=True)``, and :meth:`Cli.many` always runs processes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from click import formatting
from click.testing import CliRunner

from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.engine import OMS
from tests.support import ROOT, make_config, payload

OMS_BIN = str(Path(ROOT) / ".venv" / "bin" / "oms")


class _Runner(CliRunner):
    """click's runner, with what differs from a process of its own put back for the run."""

    @contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        from rich.console import Console

        from oms_engine.cli import root

        with super().isolation(*args, **kwargs) as streams:
            # Help text as wide as the terminal says (COLUMNS), not the runner's fixed 80; restored by click.
            formatting.FORCED_WIDTH = None
            # The consoles the CLI made when it was imported (oms_engine/cli/root.py: Console() and
            # Console(stderr=True)) read the terminal (COLUMNS, NO_COLOR, TERM, a tty or not) from this
            # process's environment then: made again for the run, they read the command's, as in a process of
            # its own.
            consoles = (root.console, root.err)
            saved = [dict(c.__dict__) for c in consoles]
            for c in consoles:
                c.__dict__.update(Console(stderr=c.stderr).__dict__)
            try:
                yield streams
            finally:
                for c, state in zip(consoles, saved, strict=True):
                    c.__dict__.clear()
                    c.__dict__.update(state)


@contextmanager
def _as_a_process(cwd: Path) -> Iterator[None]:
    """The working directory for the run, and what a command may set for its process (logging, signal
    handlers, the garbage collector's settings) as it was before, afterwards."""
    root_logger = logging.getLogger()
    handlers, level = root_logger.handlers[:], root_logger.level
    signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    threshold = gc.get_threshold()
    before = os.getcwd()
    # No handler and the default level, as in a new process: a command's logging.basicConfig writes to its own
    # stderr, and a warning logged without one goes there too (logging's last resort).
    root_logger.handlers = []
    root_logger.setLevel(logging.WARNING)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)
        for h in root_logger.handlers:
            if h not in handlers:
                h.close()
        root_logger.handlers = handlers
        root_logger.setLevel(level)
        for s, handler in signals.items():
            if handler is not None:
                signal.signal(s, handler)
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _changes(env: Mapping[str, str]) -> dict[str, str | None]:
    """What to set (a value) and unset (None) in this process's environment to make it ``env``."""
    changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    changes.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    return changes


class Cli:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.config = tmp_path / "config.yaml"
        self.write_config()

    def write_config(self, **changes: Any) -> None:
        data = {"database_url": self.url, "rules_dir": str(ROOT / "rules"),
                "templates_dir": str(ROOT / "templates"), "outbox_dir": str(self.tmp_path / "outbox"),
                "number_secret": "cli-tests", **changes}
        self.config.write_text(yaml.safe_dump(data), encoding="utf-8")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
        env.update(OMS_CONFIG=str(self.config), COLUMNS="250", NO_COLOR="1", TERM="dumb", **extra)
        return env

    def __call__(self, *args: str, ok: bool | None = True, env: dict[str, str] | None = None,
                 cwd: Path | None = None, subprocess: bool = False) -> subprocess.CompletedProcess[str]:
        """``oms *args``: exit 0 when ``ok``, not 0 when ``ok`` is False, either when None; never a traceback.
        In this process unless ``subprocess``: then the console script, in a process of its own."""
        run = self.run_process if subprocess else self.run_in_process
        p = run(args, env=env or self.env(), cwd=cwd or self.tmp_path)
        assert "Traceback" not in p.stderr, p.stderr[-3000:]
        if ok is True:
            assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        elif ok is False:
            assert p.returncode != 0, f"{args}: expected failure\n{p.stdout}\n{p.stderr}"
        return p

    def run_process(self, args: Sequence[str], *, env: dict[str, str],
                    cwd: Path) -> subprocess.CompletedProcess[str]:
        """The installed console script, in a process of its own."""
        return subprocess.run([OMS_BIN, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)

    def run_in_process(self, args: Sequence[str], *, env: dict[str, str],
                       cwd: Path) -> subprocess.CompletedProcess[str]:
        """The console script's click group, called in this process (not thread-safe: one at a time)."""
        from oms_engine.cli import main

        with _as_a_process(cwd):
            r = _Runner().invoke(main, list(args), env=_changes(env), prog_name="oms")
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            # What a process of its own would print as a traceback on stderr, and fail on.
            shown = "".join(traceback.format_exception(*r.exc_info)) if r.exc_info else repr(r.exception)
            raise AssertionError(f"{list(args)}: exception\n{shown}\n{r.stdout}\n{r.stderr}")
        return subprocess.CompletedProcess([OMS_BIN, *args], r.exit_code, r.stdout, r.stderr)

    def many(self, *calls: tuple[tuple[str, ...], bool | None]) -> list[subprocess.CompletedProcess[str]]:
        """Independent commands, run side by side, each in a process of its own."""
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(lambda c: self(*c[0], ok=c[1], subprocess=True), calls))

    def write_orders(self, name: str, *orders: dict[str, Any]) -> str:
        path = self.tmp_path / name
        path.write_bytes(payload(*orders))
        return str(path)

    def ingest(self, *paths: str, ok: bool | None = True) -> list[dict[str, Any]]:
        p = self("ingest", "--channel", "json", *paths, "--json", ok=ok)
        return json.loads(p.stdout)

    def show(self, number: str) -> dict[str, Any]:
        return json.loads(self("order", "show", number, "--json").stdout)

    def oms(self) -> OMS:
        """An OMS in this process on the same database, clock at the wall-clock time like the CLI's."""
        return OMS(make_config(self.tmp_path, self.url), clock=SimulatedClock(utcnow()))

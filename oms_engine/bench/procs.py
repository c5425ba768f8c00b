"""The benchmarks' subprocesses (``oms worker``, ``oms serve``), and the open work they leave.

Each process writes its output to a log file of its own (a pipe nobody reads
would fill and stall it); a run waits for a line it prints, checks that none
has died, and stops them all with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from sqlalchemy import func, select

from ..engine import OMS
from ..errors import OmsError
from ..storage.models import Order

STOP_TIMEOUT = 30.0            # seconds a subprocess gets after SIGTERM before it is killed
OPEN_STATES = ("paid", "routed")   # states the pipeline moves on by itself: open work


class BenchProcessError(OmsError):
    """A benchmark's subprocess would not start or died during the run."""


def open_orders(oms: OMS) -> int:
    with oms.db.read() as s:
        return s.scalar(select(func.count()).select_from(Order).where(Order.status.in_(OPEN_STATES))) or 0


class Processes:
    """The subprocesses of a run, their output in log files; each stopped by :meth:`stop_all`."""

    def __init__(self, directory: Path, oms_cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.directory, self.oms_cmd, self.env = directory, oms_cmd, env
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, args: list[str], *, stdout_pipe: bool = False) -> subprocess.Popen[bytes]:
        log_path = self.directory / f"{name}.log"
        log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115  (the child holds it; closed below when it is started)
        try:
            proc = subprocess.Popen([*self.oms_cmd, *args], env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if stdout_pipe else log, stderr=log)
        finally:
            log.close()
        self.procs.append((name, proc, log_path))
        return proc

    def tail(self, name: str, chars: int = 1500) -> str:
        for n, _, path in self.procs:
            if n == name:
                return path.read_text(encoding="utf-8", errors="replace")[-chars:].strip()
        return ""

    def wait_for_log(self, name: str, marker: str, timeout: float) -> None:
        """Until the process's log holds ``marker``; an error when it dies or the time is up first."""
        [path] = [p for n, _, p in self.procs if n == name]
        deadline = time.monotonic() + timeout
        while marker not in path.read_text(encoding="utf-8", errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchProcessError(f"{name} did not get ready in {timeout:g} s: {self.tail(name)}")
            time.sleep(0.05)

    def check_alive(self) -> None:
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                raise BenchProcessError(f"{name} exited with status {proc.returncode} during the benchmark: "
                                        f"{self.tail(name)}")

    def stop_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

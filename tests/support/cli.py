"""The real ``oms`` console script, run as a subprocess against a private config and database."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.engine import OMS
from tests.support import ROOT, make_config, payload

OMS_BIN = str(Path(ROOT) / ".venv" / "bin" / "oms")


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
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([OMS_BIN, *args], capture_output=True, text=True, timeout=120,
                           env=env or self.env(), cwd=cwd or self.tmp_path)
        assert "Traceback" not in p.stderr, p.stderr[-3000:]
        if ok is True:
            assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        elif ok is False:
            assert p.returncode != 0, f"{args}: expected failure\n{p.stdout}\n{p.stderr}"
        return p

    def many(self, *calls: tuple[tuple[str, ...], bool | None]) -> list[subprocess.CompletedProcess[str]]:
        """Independent commands, run side by side."""
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(lambda c: self(*c[0], ok=c[1]), calls))

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



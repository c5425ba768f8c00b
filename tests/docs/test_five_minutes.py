"""The README's "your own data in five minutes", run as written: from an empty database to every example
order delivered, the one waiting for stock released by a purchase order's receipt.

The first line runs in a shell, as written, through the installed console script; the others are plain ``oms``
commands and run in this process as the shell would split and expand them (a line that is more than that runs
in the shell too).
"""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path

import yaml
from sqlalchemy import select

from oms_engine.clock import SimulatedClock, utcnow
from oms_engine.config import load_config
from oms_engine.engine import OMS
from oms_engine.storage.models import History, Order
from tests.support import ROOT
from tests.support.cli import OMS_BIN, Cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block() -> list[str]:
    section = README.split("### Your own data in five minutes", 1)[1]
    [commands] = re.findall(r"```sh\n(.*?)```", section, re.S)[:1]
    return [line.strip() for line in commands.splitlines() if line.strip()]


# A line the shell only splits into words and expands the globs of: nothing else to do with a shell.
_PLAIN = re.compile(r"[A-Za-z0-9_./:,=*-]+( [A-Za-z0-9_./:,=*-]+)*")


def _words(line: str) -> list[str] | None:
    """The arguments of ``.venv/bin/oms ...`` as bash gives them (globs expanded relative to the checkout,
    sorted; one matching nothing stays as it is), or None when the line needs a shell."""
    if not _PLAIN.fullmatch(line) or not line.startswith(".venv/bin/oms "):
        return None
    words: list[str] = []
    for word in line.split()[1:]:
        matched = sorted(glob.glob(word, root_dir=ROOT)) if "*" in word else []
        words.extend(matched or [word])
    return words


def test_your_own_data_in_five_minutes(tmp_path: Path) -> None:
    config = tmp_path / "shop.yaml"
    settings = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    settings.update(database_url=f"sqlite:///{tmp_path / 'oms.db'}", outbox_dir=str(tmp_path / "outbox"),
                    rules_dir=str(ROOT / "rules"), templates_dir=str(ROOT / "templates"))
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    cli = Cli(tmp_path, settings["database_url"])
    env = cli.env()
    env["OMS_CONFIG"] = str(config)
    lines = _block()
    assert lines[0] == ".venv/bin/oms init" and lines[-1] == ".venv/bin/oms stock verify"
    for i, line in enumerate(lines):
        words = _words(line) if i else None
        if words is None:
            command = line.replace(".venv/bin/oms", OMS_BIN)
            ran = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=120)
        else:
            ran = cli(*words, ok=None, env=env, cwd=ROOT)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, f"{line}\n{ran.stdout}\n{ran.stderr}"
    with OMS(load_config(config), clock=SimulatedClock(utcnow())) as oms, oms.db.read() as s:
        shipped = {o.number: o.status for o in s.scalars(select(Order).where(Order.status != "split"))}
        assert set(shipped.values()) == {"delivered"}, shipped
        waited = s.scalar(select(Order).where(Order.external_id == "SHOP-1003"))
        assert waited is not None
        releases = s.scalars(select(History.actor).where(History.order_id == waited.id,
                                                         History.event == "release")).all()
        assert releases == ["oms:backorders"]
        assert oms.stock.verify().ok

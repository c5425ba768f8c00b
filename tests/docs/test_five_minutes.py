"""The README's "your own data in five minutes", run as written: from an empty database to every example
order delivered, the one waiting for stock released by a purchase order's receipt."""

from __future__ import annotations

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


def test_your_own_data_in_five_minutes(tmp_path: Path) -> None:
    config = tmp_path / "shop.yaml"
    settings = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    settings.update(database_url=f"sqlite:///{tmp_path / 'oms.db'}", outbox_dir=str(tmp_path / "outbox"),
                    rules_dir=str(ROOT / "rules"), templates_dir=str(ROOT / "templates"))
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = Cli(tmp_path, settings["database_url"]).env()
    env["OMS_CONFIG"] = str(config)
    lines = _block()
    assert lines[0] == ".venv/bin/oms init" and lines[-1] == ".venv/bin/oms stock verify"
    for line in lines:
        command = line.replace(".venv/bin/oms", OMS_BIN)
        ran = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
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

"""Small things a person at the terminal trips over: the version, and options given where the help offers them."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import yaml
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from oms_engine.cli import main
from oms_engine.storage.models import Order
from tests.support import ROOT


def test_oms_version_names_the_installed_package() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"oms, version {version('oms-engine')}"


def test_demo_takes_its_database_after_the_command_as_its_help_says(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"rules_dir": str(ROOT / "rules"), "templates_dir": str(ROOT / "templates"),
                                      "outbox_dir": str(tmp_path / "outbox")}), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = CliRunner().invoke(main, ["--config", str(config), "demo", "--db", url, "--orders", "12", "--skus", "40"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "var" / "demo.db").exists()      # not the demo's own database
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # the twelve, and what the demo makes of them (a split's parts, an exchange's replacement)
            assert (conn.execute(select(func.count()).select_from(Order.__table__)).scalar() or 0) >= 12
    finally:
        engine.dispose()

"""Small things a person at the terminal trips over: the version, options given where the help offers them, an
order that does not say why it is held or what to do about it, a message or a time cut short."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from oms_engine.cli import main
from oms_engine.storage.models import Order
from tests.support import ROOT, order_json
from tests.support.cli import Cli


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


# --------------------------------------------------------------------------- what an order says of itself


def _at(cli: Cli, columns: int = 80) -> dict[str, str]:
    return {**cli.env(), "COLUMNS": str(columns)}


def test_an_unknown_order_is_named_whole_in_one_line(cli: Cli) -> None:
    for columns in (80, 20):
        p = cli("order", "show", "123", ok=False, env=_at(cli, columns))
        assert p.stderr == "error: no order numbered '123'\n"


def test_ingest_says_why_an_order_is_held_and_what_to_do(cli: Cli) -> None:
    path = cli.write_orders("o.json", order_json("WHY-1", [("SHOP-TEA-NOT-MAPPED-0001", 1)]), order_json("WHY-2"))
    p = cli("ingest", "--channel", "json", path, env=_at(cli))
    # stdout stays one line per order, as scripts read it
    [held, paid] = p.stdout.splitlines()
    assert re.fullmatch(r"WHY-1: \d{19} on_hold", held) and re.fullmatch(r"WHY-2: \d{19} paid", paid)
    # the person is told why, and the command that moves it on
    assert "WHY-1: held at intake: unmapped SKU 'SHOP-TEA-NOT-MAPPED-0001'" in p.stderr
    assert "oms skus map json SHOP-TEA-NOT-MAPPED-0001 SKU" in p.stderr
    assert "WHY-2" not in p.stderr
    [r1, r2] = json.loads(cli("ingest", "--channel", "json", path, "--json").stdout)
    assert r1["hold_reason"] == "unmapped SKU 'SHOP-TEA-NOT-MAPPED-0001'" and "hold_reason" not in r2


def _held(cli: Cli, *orders: dict[str, object]) -> list[str]:
    results = cli.ingest(cli.write_orders("held.json", *orders))
    assert all(r["status"] == "on_hold" for r in results), results
    return [str(r["number"]) for r in results]


def test_order_show_says_what_to_do_next_for_each_intake_hold_and_it_works(cli: Cli) -> None:
    short = order_json("NEXT-STOCK", [("RARE-1", 3)], customer="C-N1")
    underpaid = order_json("NEXT-PAY", [("MUG-1", 1)], customer="C-N2")
    underpaid["payment"]["amount"] = "20.00"       # 39.00 and 10.00 freight are payable
    unmapped, stock, pay = _held(cli, order_json("NEXT-MAP", [("SHOP-MUG-0001", 1)], customer="C-N3"), short,
                                 underpaid)
    shown = {n: cli("order", "show", n, env=_at(cli)).stdout for n in (unmapped, stock, pay)}
    assert "next: map the channel's SKU SHOP-MUG-0001" in shown[unmapped]
    assert "oms skus map json SHOP-MUG-0001 SKU" in shown[unmapped]
    assert "next: receive stock of RARE-1" in shown[stock] and "oms stock receive WAREHOUSE RARE-1" in shown[stock]
    assert "next: correct the payment" in shown[pay] and f"oms order pay {pay} --amount" in shown[pay]
    assert f"oms order release {pay}" in shown[pay]
    # Doing what it says moves the orders on.
    cli("skus", "map", "json", "SHOP-MUG-0001", "MUG-1")
    cli("stock", "receive", "WH-SH", "RARE-1", "5", "--document", "PO-NEXT")
    cli("order", "pay", pay, "--amount", "29.00", "--txn", "PAY-NEXT-REST")
    cli("order", "release", pay)        # the money is right now: a person lets it go on
    cli("run")
    for number in (unmapped, stock, pay):
        assert cli.show(number)["status"] != "on_hold", number
        assert "next:" not in cli("order", "show", number).stdout


def test_a_screening_hold_says_to_release_or_reject(cli: Cli) -> None:
    [r] = cli.ingest(cli.write_orders("o.json", order_json("NEXT-BAD", customer="C-BAD")))
    cli("run")
    shown = cli("order", "show", r["number"], env=_at(cli)).stdout
    assert shown.splitlines()[0].startswith(f"Order {r['number']}  on_hold  (held at screening:")
    assert f"oms order release {r['number']} --note WHY" in shown and f"oms order reject {r['number']}" in shown


def test_a_cancelled_order_is_not_held(cli: Cli) -> None:
    [number] = _held(cli, order_json("CANCEL-HELD", [("RARE-1", 3)], customer="C-N4"))
    assert "held at intake: insufficient stock for SKU 'RARE-1'" in cli("order", "show", number).stdout
    cli("order", "cancel", number)
    shown = cli("order", "show", number, env=_at(cli)).stdout
    head = " ".join(shown.split("channel ")[0].split())
    assert head.startswith(f"Order {number} cancelled") and "held at" not in head.replace("had been held at", "")
    assert "it had been held at intake" in head and "next:" not in shown
    listed = cli("order", "list", env=_at(cli)).stdout
    assert "earlier: insufficient stock" in " ".join(listed.split())


def test_times_carry_their_zone(cli: Cli) -> None:
    [r] = cli.ingest(cli.write_orders("o.json", order_json("ZONE-1")))
    shown = cli("order", "show", r["number"]).stdout
    assert "placed 2026-11-02 09:00:00 UTC" in shown
    assert not re.search(r"\d\d:\d\d:\d\d(?! UTC)", shown), shown
    wide = cli("order", "list", "--wide").stdout
    assert "2026-11-02 09:00:00 UTC" in wide


HOLDS = [  # (status, hold stage, reason) as the OMS words them
    ("on_hold", "intake", "unmapped SKU 'S-1'"),
    ("on_hold", "intake", "SKU 'S-1' could not be mapped: the mapper timed out"),
    ("on_hold", "intake", "insufficient stock for SKU 'TEA-1'; insufficient stock for SKU 'MUG-1'"),
    ("on_hold", "intake", "SKU 'TEA-1' is deactivated in the catalogue"),
    ("on_hold", "intake", "SKU 'TEA-1' is priced in USD, order is in CNY"),
    ("on_hold", "intake", "payment 20.00 CNY differs from payable 49.00 CNY"),
    ("on_hold", "intake", "gift card GC-1 held 10.00 CNY, the order redeems 20.00 CNY"),
    ("on_hold", "intake", "totals disagree: channel says 10.00 CNY, lines add up to 12.00 CNY"),
    ("on_hold", "screening", "customer is on the blacklist"),
    ("on_hold", "routing", "no warehouse covers every line"),
    ("on_hold", "courier", "no carrier takes a parcel of 40 kg"),
    ("on_hold", "route-fault", "internal error: boom"),
    ("on_hold", "exchange", "waits for the goods it replaces"),
    ("on_hold", "restored", "restored from the recycle bin (binned: duplicate)"),
    ("binned", None, "a duplicate of another order"),
]


@pytest.mark.parametrize(("status", "stage", "reason"), HOLDS)
def test_every_next_step_names_commands_that_exist(status: str, stage: str | None, reason: str) -> None:
    import click

    from oms_engine.cli.holds import next_steps
    steps = next_steps("2612084047099751810", status, stage, reason, "json")
    assert steps
    for what, commands in steps:
        assert what and commands
        for command in commands:
            words = command.split()
            assert words[0] == "oms"
            group: click.Command = main
            for word in words[1:]:
                if not isinstance(group, click.Group) or word not in group.commands:
                    break
                group = group.commands[word]
            assert not isinstance(group, click.Group) and group is not main, command
    if reason.startswith("insufficient"):
        assert [c[0] for _, c in steps] == ["oms stock receive WAREHOUSE TEA-1 QUANTITY --document DOC",
                                            "oms stock receive WAREHOUSE MUG-1 QUANTITY --document DOC"]

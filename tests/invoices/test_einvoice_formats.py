"""E-invoice formats: an invoice is kept as issued and rendered for the tax platform by the format config.yaml
names, or another asked for; a format plugin that fails is named; an unknown format or invoice says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from oms_engine.errors import CommandError, InvoiceNotFound
from oms_engine.orders.explain import explain
from oms_engine.plugin.registry import RegistryError
from tests.support import order_json
from tests.support.cli import Cli
from tests.support.pipeline import ingest_one

PLUGIN = '''
from oms_engine import hookimpl


class Plain:
    name = "plain_text"

    def render(self, invoice):
        if invoice["amount"] > 10**6:
            raise ValueError("amounts that large are not taken")
        return f"{invoice['number']} {invoice['kind']} {invoice['amount']} {invoice['currency']}"


@hookimpl
def oms_register_einvoice_formats(register, config):
    register(Plain())
'''


def _plugin(tmp_path: Path) -> str:
    path = tmp_path / "plain_einvoice.py"
    path.write_text(PLUGIN, encoding="utf-8")
    return str(path)


def test_an_invoice_is_rendered_in_the_format_asked_for(make_oms: Callable[..., OMS], tmp_path: Path) -> None:
    oms = make_oms(plugins=[_plugin(tmp_path)], einvoice_format="plain_text")
    number = ingest_one(oms, order_json("EI-1")).number
    with oms.db.read() as s:
        [kept] = explain(s, number)["invoices"]
    shown = oms.invoices.einvoice(kept["number"])
    assert shown["format"] == "plain_text"
    assert shown["einvoice"] == f"{kept['number']} invoice {kept['amount']} CNY"
    built_in = oms.invoices.einvoice(kept["number"], "oms-einvoice/1")
    assert built_in["einvoice"] == kept["document"]       # the built-in format is the invoice as kept
    assert built_in["invoice"]["items"] == kept["lines"]
    with pytest.raises(CommandError, match=r"unknown e-invoice format 'fapiao' \(known: oms-einvoice/1, plain_text\)"):
        oms.invoices.einvoice(kept["number"], "fapiao")
    with pytest.raises(InvoiceNotFound, match="no invoice or credit note 'NOPE-INV01'"):
        oms.invoices.einvoice("NOPE-INV01")


def test_a_format_that_fails_is_named_and_an_unknown_default_is_refused_at_start(
        make_oms: Callable[..., OMS], tmp_path: Path) -> None:
    oms = make_oms(plugins=[_plugin(tmp_path)])
    order = order_json("EI-2", [("TV-1", 2)])
    number = ingest_one(oms, order).number
    with pytest.raises(CommandError, match="plugin 'plain_einvoice' failed in e-invoice format 'plain_text': "
                                           "ValueError: amounts that large are not taken"):
        oms.invoices.einvoice(f"{number}-INV01", "plain_text")
    with pytest.raises(RegistryError, match="unknown e-invoice format 'ubl'"):
        make_oms(einvoice_format="ubl")


def test_an_invoice_is_shown_from_the_command_line_and_the_api(cli: Cli) -> None:
    [r] = cli.ingest(cli.write_orders("o.json", order_json("EI-CLI")))
    shown = json.loads(cli("invoices", "show", f"{r['number']}-INV01").stdout)
    assert shown["format"] == "oms-einvoice/1" and shown["einvoice"]["invoice_no"] == f"{r['number']}-INV01"
    only = json.loads(cli("invoices", "show", f"{r['number']}-INV01", "--einvoice").stdout)
    assert only == shown["einvoice"]
    assert "no invoice or credit note 'X-INV01'" in cli("invoices", "show", "X-INV01", ok=False).stderr

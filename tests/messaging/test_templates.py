"""Message templates: the sandbox, strict variables, the money filter, and the project's own templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oms_engine.messaging.templates import TemplateProblem, check, render
from oms_plugins.templates.directory import load_templates
from tests.support import ROOT, build_oms, order_json, payload

CTX = {
    "order": {"number": "2611024034682700268", "status": "shipped", "payable": 12345, "currency": "CNY",
              "tracking_no": "SF123", "carrier": "sim_carrier", "warehouse": "WH-SH", "refund": 0,
              "hold_reason": ""},
    "customer": {"name": "Li Lei", "level": "gold"},
    "transition": {"event": "ship", "from_state": "packed", "to_state": "shipped", "actor": "wms",
                   "customer_visible": True, "label": "Shipped"},
}

ESCAPES = [
    "{{ order.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ order.number.__class__.__base__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ order.update({'payable': 0}) }}",
    "{% set x = order.__setitem__('payable', 0) %}",
    "{{ order.number.format.__globals__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_refuses_reaching_python(source: str) -> None:
    try:
        out = render(source, CTX)
    except TemplateProblem as exc:
        assert "unsafe" in str(exc) or "undefined" in str(exc) or "no attribute" in str(exc)
        return
    # if it renders at all, it must not have exposed anything
    for leak in ("<class", "subclasses", "built-in", "module", "function"):
        assert leak not in out, out


def test_sandbox_does_not_mutate_the_context() -> None:
    ctx = {"order": dict(CTX["order"])}
    with pytest.raises(TemplateProblem):
        render("{{ order.pop('payable') }}", ctx)
    assert ctx["order"]["payable"] == 12345


@pytest.mark.parametrize("source", ["{{ ordr.number }}", "{{ order.numbr }}", "{{ customer.name.first }}"])
def test_misspelt_variable_raises(source: str) -> None:
    with pytest.raises(TemplateProblem, match="sms_x"):
        render(source, CTX, name="sms_x")
    with pytest.raises(TemplateProblem):
        check(source, name="sms_x", sample=CTX)


def test_syntax_error_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem):
        render("{{ order.number ", CTX)


@pytest.mark.parametrize(("source", "text"), [
    ("{{ order.payable | money(order.currency) }}", "123.45 CNY"),
    ("{{ 5 | money('CNY') }}", "0.05 CNY"),
    ("{{ 150000 | money('JPY') }}", "150,000 JPY"),
    ("{{ 1234 | money('KWD') }}", "1.234 KWD"),
    ("{{ -250 | money('USD') }}", "-2.50 USD"),
])
def test_money_filter_formats_minor_units(source: str, text: str) -> None:
    assert render(source, CTX) == text


def test_money_filter_on_text_is_a_template_problem() -> None:
    # a template that pipes a name through money is a template mistake, reported as one
    with pytest.raises(TemplateProblem):
        render("{{ customer.name | money('CNY') }}", CTX, name="bad_money")


def test_project_templates_render_with_the_notification_context() -> None:
    templates = load_templates(ROOT / "templates")
    assert {t.name for t in templates} >= {"order_paid", "shipped", "cancelled", "delivered"}
    for t in templates:
        body = render(t.body, CTX, name=t.name)
        assert body and "{{" not in body
        assert CTX["order"]["number"] in body or CTX["customer"]["name"] in body, (t.name, body)
        if t.subject:
            assert render(t.subject, CTX, name=t.name)


def test_broken_template_never_loses_a_paid_order(tmp_path: Path) -> None:
    """A misspelt variable in a template is an operations mistake: it is either refused when the OMS
    starts, or the order still gets stored. It must not make a paying customer's order vanish."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "order_paid.sms.j2").write_text("Order {{ order.numbr }} is paid.\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'tpl.db'}"
    try:
        oms = build_oms(tmp_path, url, templates_dir=str(templates))
    except Exception as exc:  # refused at start: fine, as long as it names the template
        assert "order_paid" in str(exc)
        return
    try:
        results = oms.intake.ingest("json", payload(order_json("TPL-1")))
        assert len(results) == 1 and results[0].number, results
    finally:
        oms.close()

"""Messages in the buyer's language and by the medium the buyer asked for; templates previewed; errors at a line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from oms_engine.messaging.templates import TemplateProblem
from tests.support import ROOT, build_oms, order_json, payload
from tests.support.cli import Cli
from tests.support.pipeline import sent_files


def _customer(external_id: str, **asked: str) -> dict[str, object]:
    o = order_json(external_id, customer=f"C-{external_id}")
    o["customer"] = {**o["customer"], **asked}    # type: ignore[dict-item]
    return o


def test_a_buyer_who_writes_chinese_is_told_in_chinese_and_others_in_english(oms: OMS) -> None:
    [zh, en, zh_tw] = oms.intake.ingest("json", payload(_customer("L-1", language="zh-CN"), _customer("L-2"),
                                                        _customer("L-3", language="zh-TW")))
    oms.pipeline.run_until_idle()
    paid = {r["order"]: r for r in sent_files(oms)["sms"] if r["template"].startswith("order_paid")}
    assert paid[zh.number]["template"] == "order_paid@zh"
    assert paid[zh.number]["body"].startswith("Test Customer，您好，我们已收到订单")
    assert paid[en.number]["template"] == "order_paid"
    assert paid[en.number]["body"].startswith("Hi Test Customer, we have your payment")
    # zh-TW has no template of its own: the language's (zh) is taken
    assert paid[zh_tw.number]["template"] == "order_paid@zh"


def test_a_buyer_who_asked_for_email_gets_the_tracking_number_by_email(oms: OMS) -> None:
    [mail, sms] = oms.intake.ingest("json", payload(_customer("M-1", preferred_medium="email", language="zh"),
                                                    _customer("M-2")))
    oms.pipeline.run_until_idle()
    oms.clock.advance_to(oms.pipeline.next_due() or oms.clock.now())   # the simulated warehouse picks and ships
    for _ in range(20):
        due = oms.pipeline.next_due()
        if due is None:
            break
        oms.clock.advance_to(due)
        oms.pipeline.run_until_idle()
    sent = sent_files(oms)
    shipped_mail = [r for r in sent.get("email", []) if r["template"].startswith("shipped_mail")]
    shipped_sms = [r for r in sent.get("sms", []) if r["template"].startswith("shipped")]
    assert {r["order"] for r in shipped_mail} == {mail.number}
    assert shipped_mail[0]["template"] == "shipped_mail@zh" and shipped_mail[0]["subject"].startswith("订单")
    assert {r["order"] for r in shipped_sms} == {sms.number}


def test_a_template_error_names_its_file_and_line(tmp_path: Path, sqlite_url: str) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "shipped.sms.zh.j2").write_text("订单 {{ order.number }}\n已发货 {{ order.tracking }}。\n",
                                                 encoding="utf-8")
    with pytest.raises(TemplateProblem, match=r"template 'shipped@zh' \(.*shipped\.sms\.zh\.j2:2\): "
                                              r".*has no attribute 'tracking'"):
        build_oms(tmp_path, sqlite_url, templates_dir=str(templates))
    (templates / "shipped.sms.zh.j2").write_text("Subject: x\n\n订单 {{ order.number }\n", encoding="utf-8")
    with pytest.raises(TemplateProblem, match=r"shipped\.sms\.zh\.j2:3\): unexpected '}'"):
        build_oms(tmp_path, sqlite_url, templates_dir=str(templates))


def test_a_template_is_previewed_for_an_order_in_its_buyers_language(cli: Cli) -> None:
    path = cli.write_orders("o.json", _customer("P-1", language="zh-CN"))
    [result] = cli.ingest(path)
    shown = json.loads(cli("templates", "render", "order_paid", "--order", result["number"], "--json").stdout)
    assert shown["template"] == "order_paid@zh" and shown["language"] == "zh"
    assert result["number"] in shown["body"] and "我们已收到订单" in shown["body"]
    english = json.loads(cli("templates", "render", "order_paid", "--order", result["number"], "--language", "en",
                             "--json").stdout)
    assert english["template"] == "order_paid" and english["body"].startswith("Hi Test Customer")
    refused = cli("templates", "render", "no_such", "--order", result["number"], ok=False)
    assert "no template 'no_such'" in refused.stderr + refused.stdout
    listed = cli("templates", "list").stdout
    assert "order_paid@zh" in listed and "shipped_mail" in listed

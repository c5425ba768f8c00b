"""What the sender tests share: a notifications ruleset and templates of their own, and reading back what the OMS
recorded of each notification.

The project's rules send most customer messages by SMS; these tests want every transition they count to go by
the medium under test, so they write their own ``notifications.yaml`` (and templates for it) next to a copy of
the project's other rules.
"""

from __future__ import annotations

import copy
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.plugin.testing import drive
from oms_engine.storage.models import History, Order, OutboxMessage
from tests.support import ROOT
from tests.support.gateway_standin import gateway_standin
from tests.support.smtp_server import smtp_server

__all__ = ["gateway_standin", "smtp_server"]      # fixtures

FROM = "Tea Shop <orders@shop.example.com>"

# (rule name, when, template): one message per transition it matches.
MAIL_RULES = [
    ("paid-mail", {"all": [{"transition.event": "pay"}, {"order.is_child": False}]}, "paid_mail"),
    ("shipped-mail", {"transition.to_state": "shipped"}, "shipped_mail"),
    ("delivered-mail", {"transition.to_state": "delivered"}, "delivered_mail"),
]
MAIL_TEMPLATES = {
    "paid_mail.email.j2": "Subject: 订单 {{ order.number }} 已付款 (paid)\n"
                          "Dear {{ customer.name }},\n\nwe have your payment for order {{ order.number }}.\n",
    "shipped_mail.email.j2": "Subject: Order {{ order.number }} has shipped\n"
                             "Your parcel is on its way with {{ order.carrier }}: {{ order.tracking_no }}.\n",
    "delivered_mail.email.j2": "Subject: Order {{ order.number }} was delivered\n"
                               "Order {{ order.number }} was delivered. 谢谢!\n",
}


def notification_world(tmp_path: Path, rules: list[tuple[str, Any, str] | tuple[str, Any, str, str]],
                       templates: dict[str, str]) -> tuple[Path, Path]:
    """A rules directory (the project's, with this notifications ruleset) and a templates directory (the
    project's, with these added). A rule is (name, when, template[, medium])."""
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_dir, ignore=shutil.ignore_patterns("tests"))
    ruleset: dict[str, Any] = {"ruleset": "notifications", "mode": "all", "rules": []}
    for priority, (name, when, template, *medium) in enumerate(rules, start=1):
        notify = {"template": template, **({"medium": medium[0]} if medium else {})}
        # a copy each: a condition shared by two rules would be written as a YAML alias, which rules refuse
        ruleset["rules"].append({"name": name, "priority": priority * 10, "when": copy.deepcopy(when),
                                 "then": [{"notify": notify}]})
    (rules_dir / "notifications.yaml").write_text(yaml.safe_dump(ruleset, sort_keys=False, allow_unicode=True),
                                                   encoding="utf-8")
    templates_dir = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates_dir)
    for name, text in templates.items():
        (templates_dir / name).write_text(text, encoding="utf-8")
    return rules_dir, templates_dir


def drive_all(oms: OMS) -> None:
    """Drive the pipeline to quiescence, the simulated clock at least 10 s on per step.

    A message waiting behind an older pending one of its order (an SMS being retried holds back the order's
    app message: the outbox keeps one queue per order for all notifications) counts as due already in
    ``Pipeline.next_due``, though nothing can send it until the older one's retry; plain ``drive`` would move
    the clock to "now" again and again.
    """
    drive(oms, min_step=timedelta(seconds=10))


def smtp_settings(host: str, port: int, **more: Any) -> dict[str, Any]:
    return {"host": host, "port": port, "from": FROM, "timeout": 5, **more}


def notifications(oms: OMS, medium: str | None = None) -> list[OutboxMessage]:
    """The notification rows of the outbox, oldest first."""
    with oms.db.read() as s:
        stmt = select(OutboxMessage).where(OutboxMessage.kind == "notification").order_by(OutboxMessage.id)
        if medium is not None:
            stmt = stmt.where(OutboxMessage.target == medium)
        return list(s.scalars(stmt))


def expected_mail(oms: OMS, number: str) -> list[str]:
    """The templates the mail rules call for, in the order of the order's transitions (its history)."""
    with oms.db.read() as s:
        order = s.scalar(select(Order).where(Order.number == number))
        assert order is not None
        steps = list(s.scalars(select(History).where(History.order_id == order.id).order_by(History.id)))
        is_child = order.parent_id is not None
    out = []
    for h in steps:
        if h.event == "pay" and not is_child:
            out.append("paid_mail")
        if h.to_state == "shipped":
            out.append("shipped_mail")
        if h.to_state == "delivered":
            out.append("delivered_mail")
    return out

"""docs/senders.md: its config.yaml example starts a real OMS and delivers through it; every setting is described.

The example names hosts that do not exist here, so after checking that it starts as written, the test points
its addresses (only those) at a relay and a gateway on loopback, with the relay speaking STARTTLS and asking
for the login the example gives, and sends an order's notifications through all four senders.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from oms_plugins.senders import gateways, smtp
from tests.support import NO_REFUSALS, ROOT, build_oms, order_json, payload
from tests.support.gateway_standin import GatewayStandIn
from tests.support.smtp_server import SmtpServer, self_signed

from .conftest import drive_all, notification_world, notifications

DOC = ROOT / "docs" / "senders.md"
TEXT = DOC.read_text(encoding="utf-8")
PAID = {"all": [{"transition.event": "pay"}, {"order.is_child": False}]}
RULES = [("paid-mail", PAID, "paid_mail"), ("paid-sms", PAID, "order_paid"), ("paid-app", PAID, "paid_app"),
         ("paid-hook", PAID, "paid_hook")]
TEMPLATES = {"paid_mail.email.j2": "Subject: Paid: {{ order.number }}\nThank you, {{ customer.name }}.\n",
             "paid_app.app.j2": "Subject: Payment received\nWe have your payment for {{ order.number }}.\n",
             "paid_hook.webhook.j2": "{{ order.number }} paid {{ order.payable }}\n"}


def example() -> dict[str, Any]:
    """The YAML block under '## An example: config.yaml'."""
    section = TEXT.split("## An example: config.yaml", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, "docs/senders.md has no yaml block under '## An example: config.yaml'"
    data = yaml.safe_load(block.group(1))
    assert isinstance(data, dict)
    return data


def secrets(data: dict[str, Any]) -> list[str]:
    return [s.get("secret_env") or s.get("password_env") for s in data["plugin_settings"].values()]


def test_the_example_starts_an_oms_as_written(tmp_path: Path, sqlite_url: str) -> None:
    data = example()
    oms = build_oms(tmp_path, sqlite_url, senders=data["senders"],
                    plugin_settings={**NO_REFUSALS, **data["plugin_settings"]})
    try:
        for medium, name in data["senders"].items():
            assert oms.plugins.sender_for(medium).name == name
        # every secret it names is described in the text above it
        assert all(f"`{env}`" in TEXT for env in secrets(data))
    finally:
        oms.close()


def test_the_example_delivers_through_every_sender(tmp_path: Path, sqlite_url: str,
                                                   smtp_server: Callable[..., SmtpServer],
                                                   gateway_standin: Callable[..., GatewayStandIn],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = example()
    settings = data["plugin_settings"]
    context, cert = self_signed(tmp_path)
    relay = smtp_server(starttls=context, login=(settings["smtp"]["username"], "relay-pa55"))
    gateway = gateway_standin(secret="gw-s3cret")
    monkeypatch.setenv(settings["smtp"]["password_env"], "relay-pa55")
    for name, path in (("sms_http", "/sms"), ("app_http", "/app"), ("webhook_http", "/hook")):
        monkeypatch.setenv(settings[name]["secret_env"], "gw-s3cret")
        settings[name]["url"] = gateway.url + path
    settings["smtp"].update(host=relay.host, port=relay.port, ca_file=cert)
    rules_dir, templates_dir = notification_world(tmp_path, RULES, TEMPLATES)
    oms = build_oms(tmp_path, sqlite_url, rules_dir=rules_dir, templates_dir=str(templates_dir), late_steps=[],
                    senders=data["senders"], plugin_settings={**NO_REFUSALS, **settings})
    try:
        [result] = oms.intake.ingest("json", payload(order_json("DOC-1")))
        drive_all(oms)
        rows = notifications(oms)
        assert sorted(r.target for r in rows) == ["app", "email", "sms", "webhook"]
        assert {r.status for r in rows} == {"sent"}, [(r.target, r.last_error) for r in rows]
        [mail] = relay.received()
        assert mail.subject == f"Paid: {result.number}" and relay.logins[-1] == ("orders@shop.example.com", True)
        assert sorted(d.kind for d in gateway.deliveries()) == ["app", "sms", "webhook"]
        app = next(d for d in gateway.deliveries() if d.kind == "app")
        assert app.data["template_id"] == "TPL-PAID"
        hook = next(d for d in gateway.deliveries() if d.kind == "webhook")
        assert hook.key.startswith("shop-eu-msg-")
    finally:
        oms.close()


@pytest.mark.parametrize(("sender", "keys"), [("smtp", smtp.SETTINGS),
                                              ("sms_http", gateways.SETTINGS),
                                              ("app_http", (*gateways.SETTINGS, *gateways.AppGateway.extra_settings))])
def test_every_setting_is_described(sender: str, keys: tuple[str, ...]) -> None:
    rows = {cell for line in TEXT.splitlines() if line.startswith("| `")
            for cell in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    missing = [k for k in keys if k not in rows]
    assert not missing, f"docs/senders.md does not describe the {sender} settings {missing}"


def test_every_built_in_sender_is_listed() -> None:
    listed = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \| `", TEXT, re.MULTILINE))
    names = {n for pair in listed for n in pair if n}
    assert {"file_sms", "file_email", "smtp", "sms_http", "app_http", "webhook_http"} <= names

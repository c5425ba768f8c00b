"""SMS, app messages and webhooks through the real pipeline to a gateway on loopback: each delivered once, in order
per order, through failures, a slow gateway and refusals.

``senders:`` sends sms by ``sms_http``, app by ``app_http`` and webhook by ``webhook_http``, all at the stand-in
(tests/support/gateway_standin.py), which checks every signature and delivers once per idempotency key. The rules
send all three when an order is paid, and an SMS when it ships.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oms_engine.engine import OMS
from oms_engine.plugin.testing import show_order
from tests.support import NO_REFUSALS, build_oms, order_json, payload
from tests.support.gateway_standin import GatewayStandIn

from .conftest import drive_all, notification_world, notifications

SECRET_ENV = "OMS_TEST_GATEWAY_SECRET"
PAID = {"all": [{"transition.event": "pay"}, {"order.is_child": False}]}
RULES = [("paid-sms", PAID, "order_paid"), ("paid-app", PAID, "paid_app"), ("paid-hook", PAID, "paid_hook"),
         ("shipped-sms", {"transition.to_state": "shipped"}, "shipped")]
TEMPLATES = {"paid_app.app.j2": "Subject: Payment received\nWe have your payment for {{ order.number }}.\n",
             "paid_hook.webhook.j2": "{{ order.number }} paid {{ order.payable }}\n"}
# medium -> the kinds of message, in the order the rules queue them for one order
EXPECTED = {"sms": ["order_paid", "shipped"], "app": ["paid_app"], "webhook": ["paid_hook"]}


@pytest.fixture
def gateway(gateway_standin: Callable[..., GatewayStandIn],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayStandIn]:
    monkeypatch.setenv(SECRET_ENV, "gw-s3cret")
    yield gateway_standin(secret="gw-s3cret")


def gateway_oms(tmp_path: Path, url: str, gw: GatewayStandIn, timeout: float = 2) -> OMS:
    rules_dir, templates_dir = notification_world(tmp_path, RULES, TEMPLATES)
    common = {"secret_env": SECRET_ENV, "timeout": timeout}
    return build_oms(tmp_path, url, rules_dir=rules_dir, templates_dir=str(templates_dir), late_steps=[],
                     senders={"sms": "sms_http", "app": "app_http", "webhook": "webhook_http"},
                     plugin_settings={**NO_REFUSALS,
                                      "sms_http": {"url": gw.url + "/sms", **common},
                                      "app_http": {"url": gw.url + "/app", **common,
                                                   "template_ids": {"paid_app": "TPL-PAID"}},
                                      "webhook_http": {"url": gw.url + "/hook", **common}})


def ingest_orders(oms: OMS, count: int, phones: dict[int, str] | None = None) -> list[str]:
    orders = []
    for i in range(count):
        order = order_json(f"G-{i}", customer=f"C-G{i}")
        if phones and i in phones:
            order["customer"]["phone"] = phones[i]
        orders.append(order)
    results = oms.intake.ingest("json", payload(*orders))
    assert [r.error for r in results] == [None] * count
    return [r.number for r in results]


def assert_delivered_once_in_order(oms: OMS, gw: GatewayStandIn, numbers: list[str]) -> None:
    rows = {r.id: r for r in notifications(oms) if r.status == "sent"}
    delivered = gw.deliveries()
    assert sorted(int(d.key.removeprefix("oms-msg-")) for d in delivered) == sorted(rows)    # each once
    assert all(r.signed for r in gw.received if r.outcome != "unsigned") and \
        not [r for r in gw.received if r.outcome == "unsigned"]
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for d in delivered:
        row = rows[int(d.key.removeprefix("oms-msg-"))]
        assert d.kind == row.target
        seen[(row.order_number, row.target)].append(row.payload["template"])
        text = d.data.get("text") or d.data.get("body") or d.data["data"]["content"]["value"]
        assert text == row.payload["body"]
    for number in numbers:
        for medium, kinds in EXPECTED.items():
            assert seen.get((number, medium), []) == kinds, (number, medium)


def test_each_message_delivered_once_through_failures_and_refusals(tmp_path: Path, db_url: str,
                                                                   gateway: GatewayStandIn) -> None:
    oms = gateway_oms(tmp_path, db_url, gateway)
    try:
        for medium, name in (("sms", "sms_http"), ("app", "app_http"), ("webhook", "webhook_http")):
            assert oms.plugins.sender_for(medium).name == name
        gateway.fail(2, status=503)
        gateway.fail(1, status=429)
        gateway.lose_answers(1)
        gateway.refuse("13900000001", 400, "number not in service")
        gateway.errcode("C-G3", 43004, "require subscribe")
        numbers = ingest_orders(oms, 5, phones={4: "139 0000 0001"})
        drive_all(oms)
        rows = notifications(oms)
        dead = {(r.order_number, r.target, r.payload["template"]): r for r in rows if r.status == "dead"}
        assert set(dead) == {(numbers[4], "sms", "order_paid"), (numbers[4], "sms", "shipped"),
                             (numbers[3], "app", "paid_app")}
        assert all(r.attempts == 1 for r in dead.values())        # dead at once, with the gateway's reason
        assert "number not in service" in dead[(numbers[4], "sms", "order_paid")].last_error
        assert "errcode 43004: require subscribe" in dead[(numbers[3], "app", "paid_app")].last_error
        assert len(show_order(oms, numbers[4])["incidents"]) == 2
        assert {r.status for r in rows} == {"sent", "dead"}
        retried = [r for r in rows if r.status == "sent" and r.attempts > 1]
        assert len(retried) == 4          # 503, 503, 429 and the answer lost: each tried again, delivered once
        assert_delivered_once_in_order(oms, gateway, numbers[:3])
        # the refused customers' other messages went their way, once each
        kinds = defaultdict(list)
        for r in rows:
            if r.status == "sent":
                kinds[r.order_number].append(r.target)
        assert kinds[numbers[4]] == ["app", "webhook"] and kinds[numbers[3]] == ["sms", "webhook", "sms"]
    finally:
        oms.close()


def test_a_slow_gateway_hits_the_timeout_and_each_message_is_still_delivered_once(
        tmp_path: Path, sqlite_url: str, gateway: GatewayStandIn) -> None:
    oms = gateway_oms(tmp_path, sqlite_url, gateway, timeout=0.1)
    try:
        numbers = ingest_orders(oms, 2)
        gateway.delay = 0.4            # it delivers, then answers too late for the OMS
        oms.pipeline.run_until_idle()
        timed_out = [r for r in notifications(oms) if r.attempts]
        # each order's first message of each medium timed out (a later one of that medium waits behind it; the
        # other media do not), and the gateway has it
        assert sorted(r.payload["template"] for r in timed_out) == sorted(["order_paid", "paid_app", "paid_hook"] * 2)
        assert all(r.status == "pending" and "timed out after 0.1 s" in r.last_error for r in timed_out)
        assert len(gateway.deliveries()) == 6
        gateway.delay = 0.0
        drive_all(oms)
        assert {r.status for r in notifications(oms)} == {"sent"}
        assert_delivered_once_in_order(oms, gateway, numbers)
        outcomes = defaultdict(list)
        for key, outcome in gateway.outcomes():
            outcomes[key].append(outcome)
        # the retry of a message the gateway had taken is a duplicate: delivered once, however often sent
        assert {f"oms-msg-{r.id}": ["delivered", "duplicate"] for r in timed_out}.items() <= outcomes.items()
        assert sum(o == ["delivered"] for o in outcomes.values()) == len(notifications(oms)) - len(timed_out)
    finally:
        oms.close()


def test_app_messages_go_to_the_buyers_app_user_id_when_the_order_gives_one(tmp_path: Path, sqlite_url: str,
                                                                           gateway: GatewayStandIn) -> None:
    oms = gateway_oms(tmp_path, sqlite_url, gateway)
    try:
        with_id = order_json("G-APP", customer="C-APP")
        with_id["customer"]["app_user"] = "oWx-7Hq2Lp9"
        without = order_json("G-REF", customer="C-REF")
        results = oms.intake.ingest("json", payload(with_id, without))
        assert [r.error for r in results] == [None, None]
        drive_all(oms)
        to = {d.data["touser"] for d in gateway.deliveries() if d.kind == "app"}
        assert to == {"oWx-7Hq2Lp9", "C-REF"}
        hooks = {d.data["recipient"] for d in gateway.deliveries() if d.kind == "webhook"}
        assert hooks == {"C-APP", "C-REF"}        # a webhook is about the customer, by its reference
    finally:
        oms.close()

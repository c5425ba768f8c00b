"""The HTTP gateway senders against a gateway played on loopback: what they send (signed, with the idempotency
key), and what they make of each answer (delivered, tried again, refused for good)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oms_engine import MessageRefused, Notification, SettingsError
from oms_plugins.senders.gateways import AppGateway, GatewayError, HttpSender, SmsGateway, WebhookSender
from tests.support.gateway_standin import GatewayStandIn

SECRET = "gw-s3cret"
SECRET_ENV = "OMS_TEST_GATEWAY_SECRET"
PATHS = {SmsGateway: "/sms", AppGateway: "/app", WebhookSender: "/hook"}


@pytest.fixture
def gateway(gateway_standin: Callable[..., GatewayStandIn],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayStandIn]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    yield gateway_standin(secret=SECRET)


def make(cls: type[HttpSender], gw: GatewayStandIn, **more: Any) -> HttpSender:
    return cls({"url": gw.url + PATHS[cls], "secret_env": SECRET_ENV, "timeout": 2, **more})


def note(cls: type[HttpSender], i: int, to: str | None = None) -> Notification:
    default = {SmsGateway: "13800000000", AppGateway: "oXyz-openid-1", WebhookSender: "C-OLD"}[cls]
    return Notification(i, "2611020000000000001", cls.medium, to or default, "order_paid", "Paid",
                        f"Order paid, 订单 {i}.")


SENDERS = [SmsGateway, AppGateway, WebhookSender]


@pytest.mark.parametrize("cls", SENDERS, ids=lambda c: c.name)
def test_each_message_is_signed_and_keyed_by_its_outbox_id(cls: type[HttpSender], gateway: GatewayStandIn) -> None:
    s = make(cls, gateway)
    s.send(note(cls, 7))
    s.send(note(cls, 8))
    s.flush()
    [first, second] = gateway.received
    assert first.signed and first.outcome == "delivered" and second.outcome == "delivered"
    assert first.headers["idempotency-key"] == "oms-msg-7" and first.headers["x-correlation-id"] == "7"
    assert first.headers["content-type"] == "application/json"
    body = first.data
    assert body["id"] == "oms-msg-7"
    if cls is SmsGateway:
        assert body == {"id": "oms-msg-7", "to": "13800000000", "text": "Order paid, 订单 7."}
    elif cls is AppGateway:
        assert body == {"id": "oms-msg-7", "touser": "oXyz-openid-1", "template_id": "order_paid",
                        "data": {"title": {"value": "Paid"}, "order": {"value": "2611020000000000001"},
                                 "content": {"value": "Order paid, 订单 7."}}}
    else:
        assert body == {"id": "oms-msg-7", "type": "notification", "order_number": "2611020000000000001",
                        "medium": "webhook", "recipient": "C-OLD", "template": "order_paid", "subject": "Paid",
                        "body": "Order paid, 订单 7."}
    assert [d.key for d in gateway.deliveries()] == ["oms-msg-7", "oms-msg-8"]


@pytest.mark.parametrize(("status", "refused"), [(400, True), (403, True), (404, True), (422, True),
                                                 (401, False), (408, False), (409, False), (425, False),
                                                 (429, False), (500, False), (502, False), (503, False)])
def test_what_each_status_means(gateway: GatewayStandIn, status: int, refused: bool) -> None:
    s = make(SmsGateway, gateway)
    gateway.fail(1, status=status)
    with pytest.raises(MessageRefused if refused else GatewayError, match=f"answered {status}|refused it .{status}"):
        s.send(note(SmsGateway, 1))
    s.send(note(SmsGateway, 1))       # the outbox tries again (or an operator does: oms outbox retry)
    assert [d.key for d in gateway.deliveries()] == ["oms-msg-1"]


def test_a_refusal_keeps_the_gateways_reason(gateway: GatewayStandIn) -> None:
    gateway.refuse("13900000000", 400, "number not in service")
    with pytest.raises(MessageRefused, match=r"the SMS gateway refused it \(400 Bad Request\): number not in service"):
        make(SmsGateway, gateway).send(note(SmsGateway, 3, to="139-0000-0000"))


def test_an_answer_lost_then_a_retry_delivers_once(gateway: GatewayStandIn) -> None:
    s = make(WebhookSender, gateway)
    gateway.lose_answers(1)
    with pytest.raises(GatewayError, match="answered 500"):
        s.send(note(WebhookSender, 5))
    s.send(note(WebhookSender, 5))
    assert gateway.outcomes() == [("oms-msg-5", "delivered, answer lost"), ("oms-msg-5", "duplicate")]
    assert len(gateway.deliveries()) == 1


def test_a_duplicate_answered_409_counts_as_delivered(gateway: GatewayStandIn) -> None:
    gateway.duplicate_status = 409
    s = make(SmsGateway, gateway)
    s.send(note(SmsGateway, 6))
    s.send(note(SmsGateway, 6))
    assert gateway.outcomes() == [("oms-msg-6", "delivered"), ("oms-msg-6", "duplicate")]


def test_a_slow_gateway_hits_the_timeout_and_the_retry_delivers_nothing_twice(gateway: GatewayStandIn) -> None:
    s = make(SmsGateway, gateway, timeout=0.2)
    gateway.delay = 1.0
    started = time.monotonic()
    with pytest.raises(GatewayError, match=r"timed out after 0\.2 s"):
        s.send(note(SmsGateway, 9))
    assert time.monotonic() - started < 0.9
    gateway.delay = 0.0
    s.send(note(SmsGateway, 9))
    s.flush()
    assert [d.key for d in gateway.deliveries()] == ["oms-msg-9"]
    assert [o for _, o in gateway.outcomes()] == ["delivered", "duplicate"]


def test_a_secret_that_does_not_match_is_tried_again(gateway: GatewayStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "rotated-on-one-side-only")
    with pytest.raises(GatewayError, match="answered 401"):
        make(AppGateway, gateway).send(note(AppGateway, 1))
    assert gateway.outcomes() == [("", "unsigned")]
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(SettingsError, match=f"plugin_settings.app_http: the environment variable {SECRET_ENV}"):
        make(AppGateway, gateway).send(note(AppGateway, 1))


@pytest.mark.parametrize(("cls", "recipient", "says"), [
    (SmsGateway, "not-a-number", "is not a phone number"),
    (SmsGateway, "12345", "is not a phone number"),
    (SmsGateway, "+86 138 0000 0000 0000", "is not a phone number"),
    (SmsGateway, "", "is not a phone number"),
    (AppGateway, "two words", "is not an app user id"),
    (AppGateway, "", "is not an app user id"),
])
def test_a_recipient_it_cannot_reach_is_refused_before_any_request(gateway: GatewayStandIn, cls: type[HttpSender],
                                                                   recipient: str, says: str) -> None:
    with pytest.raises(MessageRefused, match=says):
        make(cls, gateway).send(Notification(1, "N-1", cls.medium, recipient, "t", "", "text"))
    assert gateway.received == []


def test_phone_numbers_are_sent_without_their_punctuation(gateway: GatewayStandIn) -> None:
    make(SmsGateway, gateway).send(note(SmsGateway, 1, to=" +86 (138) 0000-0000 "))
    assert gateway.deliveries()[0].to == "+8613800000000"


def test_the_app_gateways_errcode_decides(gateway: GatewayStandIn) -> None:
    s = make(AppGateway, gateway, template_ids={"order_paid": "TPL-PAID-01"})
    gateway.errcode("o-unfollowed", 43004, "require subscribe")
    gateway.errcode("o-busy", -1, "system error")
    with pytest.raises(MessageRefused, match="errcode 43004: require subscribe"):
        s.send(note(AppGateway, 1, to="o-unfollowed"))
    with pytest.raises(GatewayError, match="errcode -1: system error"):
        s.send(note(AppGateway, 2, to="o-busy"))
    s.send(note(AppGateway, 3))
    [delivered] = gateway.deliveries()
    assert delivered.data["template_id"] == "TPL-PAID-01"


@pytest.mark.parametrize(("cls", "settings", "says"), [
    (SmsGateway, {"secret_env": SECRET_ENV}, "parameter 'url' is required"),
    (SmsGateway, {"url": "https://sms.example.com"}, "parameter 'secret_env' is required"),
    (SmsGateway, {"url": "ftp://sms.example.com", "secret_env": SECRET_ENV}, "'url' must be an http"),
    (SmsGateway, {"url": "https://sms.example.com", "secret_env": SECRET_ENV, "timout": 3},
     "unknown parameter 'timout'.*did you mean 'timeout'"),
    (SmsGateway, {"url": "https://sms.example.com", "secret_env": SECRET_ENV, "timeout": 601}, "'timeout' must be"),
    (SmsGateway, {"url": "https://sms.example.com", "secret_env": SECRET_ENV, "key_prefix": "a b"}, "'key_prefix'"),
    (SmsGateway, {"url": "https://sms.example.com", "secret_env": SECRET_ENV, "template_ids": {}}, "unknown parameter"),
    (AppGateway, {"url": "https://app.example.com", "secret_env": SECRET_ENV, "template_ids": {"a": 1}},
     "'template_ids' maps"),
    (WebhookSender, {"url": "https://hooks.example.com", "secret_env": ""}, "'secret_env' must name"),
])
def test_settings_are_checked(cls: type[HttpSender], settings: dict[str, Any], says: str) -> None:
    with pytest.raises(SettingsError, match=f"plugin_settings.{cls.name}: .*{says}"):
        cls(settings)

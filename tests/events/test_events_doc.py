"""docs/events.md is what the OMS publishes, and every example on it works.

The envelope's table lists the envelope's fields in order; each event type has a section with a table of its data
fields and an example that has exactly those fields, of the documented types. Then a real run: the configuration
example starts an OMS that publishes to the real broker, the consumer example reads what it published (each event
once, late ones named, another schema refused), and every event it handled has exactly the documented fields, of
the documented types.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pika
import pytest
import yaml

from oms_engine.events import SCHEMA, EventType, event_id
from oms_engine.events.schema import FIELDS
from oms_engine.plugin.testing import drive
from oms_engine.stock.movements import Movement
from tests.support import build_oms, order_json, payload

from .support import AMQP_URL, AT_ONCE, DOC, Broker, doc_code, doc_examples, event_rows

TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "string or null": (str, type(None)),
                                      "object": (dict,)}


def section(title: str) -> str:
    """The text under the heading whose title starts with ``title``, to the next heading."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(rf"^#+ {re.escape(title)}.*?\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    assert m, f"docs/events.md has no section {title!r}"
    return m.group(1)


def table(title: str) -> dict[str, str]:
    """field -> documented type, in the order of the section's table."""
    rows = re.findall(r"^\| `(\w+)` \| ([a-z ]+) \|", section(title), re.M)
    assert rows, f"no field table under {title!r}"
    return dict(rows)


def data_table(type_: str) -> dict[str, str]:
    return table("`payment.recorded`" if type_ in ("payment.recorded", "refund.recorded") else f"`{type_}`")


def assert_documented(event: dict[str, Any]) -> None:
    """The event has exactly the documented fields, in order, each of its documented type."""
    envelope, data = table("The envelope"), data_table(event["type"])
    assert list(event) == list(envelope), event
    assert list(event["data"]) == list(data), (event["type"], list(event["data"]), list(data))
    for fields, values in ((envelope, event), (data, event["data"])):
        for name, documented in fields.items():
            value = values[name]
            assert isinstance(value, TYPES[documented]) and not isinstance(value, bool), (event["type"], name, value)


def test_the_page_documents_the_envelope_and_every_event_type_with_an_example() -> None:
    assert tuple(table("The envelope")) == FIELDS
    examples = doc_examples()
    for t in EventType:
        lang, code = examples[t.value]
        assert lang == "json"
        event = json.loads(code)
        assert event["type"] == t.value and event["schema"] == SCHEMA
        assert event["id"] == event_id(event, event["sequence"])
        assert_documented(event)


def test_the_configuration_example_publishes_and_the_consumer_example_reads_each_event_once(
        tmp_path: Path, sqlite_url: str, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    lang, text = doc_examples()["config"]
    assert lang == "yaml"
    config = yaml.safe_load(text)
    assert config["events"]["connector"] == "rabbitmq"
    monkeypatch.setenv(config["plugin_settings"]["rabbitmq"]["url_env"], AMQP_URL)
    # This test's exchange, not the example's shared name; the simulated warehouse answering at once.
    config["plugin_settings"]["rabbitmq"]["exchange"] = broker.exchange
    config["plugin_settings"].update(AT_ONCE)
    oms = build_oms(tmp_path, sqlite_url, **config)
    try:
        numbers = [r.number for r in oms.intake.ingest("json", payload(*[order_json(f"X-{i}") for i in range(3)]))]
        oms.commands.cancel(numbers[0], actor="ops:test", reason="changed their mind")    # a refund
        oms.stock.post(Movement.PURCHASE_RECEIPT, "WH-SH", "TEA-1", 5, document="PO-DOC-1", actor="ops:test")
        drive(oms)
        rows = event_rows(oms)
        assert rows and {r.status for r in rows} == {"sent"}

        consume = doc_code("consumer")["consume"]
        handled_events: list[dict[str, Any]] = []
        handled: set[str] = set()
        last: dict[str, int] = {}
        assert consume(AMQP_URL, broker.queue, handled_events.append, handled, last) == []
        assert sorted(e["sequence"] for e in handled_events) == [r.id for r in rows]
        assert {e["type"] for e in handled_events} == {t.value for t in EventType}
        for e in handled_events:
            assert_documented(e)

        # Sent again (a publisher that died before recording it): skipped, and taken off the queue.
        again = handled_events[-1]
        publish(broker, again)
        assert consume(AMQP_URL, broker.queue, handled_events.append, handled, last) == []
        assert len(handled_events) == len(rows) and broker.count() == 0
        # A dead letter sent again after its order's later events: handled, and named as late.
        dead = {**handled_events[1], "id": "oms:late:1", "sequence": 0}
        publish(broker, dead)
        assert consume(AMQP_URL, broker.queue, handled_events.append, handled, last) == ["oms:late:1"]
        # Another version: the example refuses to read it as its own.
        publish(broker, {**again, "id": "oms:v2:1", "schema": "oms.event/2"})
        with pytest.raises(RuntimeError, match=r"this consumer reads oms\.event/1"):
            consume(AMQP_URL, broker.queue, handled_events.append, handled, last)
    finally:
        oms.close()


def publish(broker: Broker, event: dict[str, Any]) -> None:
    broker.channel.basic_publish(broker.exchange, event["type"], json.dumps(event).encode(),
                                 pika.BasicProperties(message_id=event["id"], content_type="application/json"))

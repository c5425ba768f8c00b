"""/metrics: the state of the OMS in Prometheus's text format, read from the database."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from oms_engine.engine import OMS
from tests.support.web import VIEWER, ApiServer, dispatched_order, held_order


def _samples(api: ApiServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = api.get("/metrics", token=VIEWER)
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.body.decode()) for s in family.samples}


def test_metrics_count_orders_holds_and_the_outbox(oms: OMS, api_any: ApiServer) -> None:
    held_order(oms, "M-HELD")
    dispatched_order(oms, "M-SENT")
    oms.clock.advance(timedelta(minutes=90))  # type: ignore[attr-defined]
    got = _samples(api_any)
    assert got[("oms_orders", (("channel", "json"), ("status", "on_hold")))] == 1
    assert got[("oms_orders", (("channel", "json"), ("status", "dispatched")))] == 1
    assert got[("oms_orders_placed_total", (("channel", "json"),))] == 2
    assert got[("oms_payloads_received_total", (("channel", "json"),))] == 2
    assert got[("oms_holds", (("stage", "screening"),))] == 1
    assert got[("oms_holds_by_reason", (("reason", "customer is on the blacklist"),))] == 1
    assert got[("oms_oldest_hold_seconds", ())] == 90 * 60
    pending = {labels: v for (name, labels), v in got.items() if name == "oms_outbox_messages"}
    assert all(dict(labels)["status"] in ("pending", "dead") for labels in pending)
    assert ("oms_outbox_oldest_pending_seconds", ()) in got


def test_metrics_need_a_token(api: ApiServer) -> None:
    r = api.get("/metrics")
    assert r.status == 401 and r.headers["content-type"] == "application/problem+json"

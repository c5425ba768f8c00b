"""A plugin that raises holds its order (or retries its message or task) with the plugin's name and error on
record, and the rest of the batch goes on: the pipeline never stops for one bad order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from oms_engine.engine import OMS
from oms_engine.orders.explain import explain
from oms_engine.storage.models import Incident, OutboxMessage, ScheduledTask
from tests.support import ROOT, build_oms, copy_rules, order_json, payload
from tests.support.pipeline import status

FAULTY = '''
from oms_engine import RoutePlan, hookimpl

def exploding_split(order, stock, params):
    raise ValueError(f"cannot split {order.number}")

def exploding_route(order, stock, params):
    if any(ln.sku == "MUG-1" for ln in order.lines):
        raise RuntimeError("routing service unreachable")
    return RoutePlan("WH-SH", "always Shanghai", "picky")

@hookimpl
def oms_register_split_strategies(register):
    register("exploding", exploding_split)

@hookimpl
def oms_register_routing_strategies(register):
    register("picky", exploding_route)
'''

SPLIT_RULE = """
  - name: pens-explode
    priority: 1
    when:
      any_line: {sku: PEN-1}
    then:
      - split: {strategy: exploding}
"""
ROUTE_RULE = """
  - name: picky-first
    priority: 1
    then:
      - route: {strategy: picky}
"""


def _plugin(tmp_path: Path, source: str, name: str = "faulty_plugin") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return str(path)


def _rules(tmp_path: Path) -> Path:
    rules = copy_rules(tmp_path)
    for file, rule in (("split.yaml", SPLIT_RULE), ("routing.yaml", ROUTE_RULE)):
        text = (rules / file).read_text(encoding="utf-8")
        (rules / file).write_text(text.replace("rules:\n", "rules:\n" + rule, 1), encoding="utf-8")
    return rules


def _faulty_oms(tmp_path: Path, url: str) -> OMS:
    return build_oms(tmp_path, url, rules_dir=_rules(tmp_path), plugins=[_plugin(tmp_path, FAULTY)])


def _incidents(oms: OMS) -> list[Incident]:
    with oms.db.read() as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


def test_a_raising_strategy_holds_its_order_and_the_batch_goes_on(tmp_path: Path, db_url: str) -> None:
    oms = _faulty_oms(tmp_path, db_url)
    try:
        results = oms.intake.ingest("json", payload(
            order_json("OK-1"), order_json("PEN-1", [("PEN-1", 1), ("TEA-1", 1)]), order_json("MUG-1", [("MUG-1", 1)]),
            order_json("OK-2", [("TEA-1", 3)])))
        numbers = {r.external_id: r.number for r in results}
        oms.pipeline.run_until_idle()
        assert status(oms, numbers["OK-1"]) == status(oms, numbers["OK-2"]) == "dispatched"
        with oms.db.read() as s:
            split_held = explain(s, numbers["PEN-1"])
            route_held = explain(s, numbers["MUG-1"])
        assert split_held["status"] == "on_hold" and split_held["hold_stage"] == "split-fault"
        assert "faulty_plugin" in split_held["hold_reason"] and "ValueError: cannot split" in split_held["hold_reason"]
        assert route_held["status"] == "on_hold" and route_held["hold_stage"] == "route-fault"
        assert "RuntimeError: routing service unreachable" in route_held["hold_reason"]
        [incident] = split_held["incidents"]
        assert incident["plugin"] == "faulty_plugin" and incident["hook"] == "split strategy 'exploding'"
        assert incident["action"] == "order held for review"
        assert {i.stage for i in _incidents(oms)} == {"split", "route"}
    finally:
        oms.close()


def test_releasing_a_fault_hold_runs_the_failed_stage_again(tmp_path: Path, sqlite_url: str) -> None:
    oms = _faulty_oms(tmp_path, sqlite_url)
    try:
        [r] = oms.intake.ingest("json", payload(order_json("MUG-2", [("MUG-1", 1)])))
        oms.pipeline.run_until_idle()
        assert status(oms, r.number) == "on_hold"
        oms.close()
        # The plugin is gone and the project's rules are published again; a person releases the
        # order and routing runs again.
        fixed = oms.config.model_copy(update={"plugins": [], "rules_dir": str(ROOT / "rules")})
        with OMS(fixed, clock=oms.clock, require_rules=False) as publisher:
            assert publisher.rulebook.rulesets == {}   # the active rules name strategies this process lacks
            publisher.rules.publish_dir(actor="test", note="the faulty rules are gone")
        oms = OMS(fixed, clock=oms.clock)
        assert oms.commands.release(r.number, actor="ops") == "paid"
        oms.pipeline.run_until_idle()
        assert status(oms, r.number) == "dispatched"
    finally:
        oms.close()


CONNECTOR = '''
from oms_engine import hookimpl
from oms_plugins.connectors.sim_wms import SimWMS

class BrokenWMS(SimWMS):
    def send(self, message, ctx):
        if message.payload.get("lines") and message.payload["lines"][0]["sku"] == "MUG-1":
            ctx.state_put(self.name, message.order_number, {"half": "written"})
            raise ConnectionError("WMS answered 503")
        super().send(message, ctx)

    def on_task(self, payload, ctx):
        if payload.get("step") == "PICKING":
            raise TimeoutError("WMS status endpoint timed out")
        super().on_task(payload, ctx)

@hookimpl
def oms_register_connectors(register, config):
    register(BrokenWMS(name="broken_wms"))
'''


def test_a_raising_connector_retries_the_message_and_its_task_leaving_no_trace(tmp_path: Path,
                                                                              sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, plugins=[_plugin(tmp_path, CONNECTOR, "broken")],
                    wms_connector="broken_wms")
    try:
        results = oms.intake.ingest("json", payload(order_json("C-1", [("MUG-1", 1)]), order_json("C-2")))
        numbers = {r.external_id: r.number for r in results}
        oms.pipeline.run_until_idle()
        assert status(oms, numbers["C-1"]) == "routed"       # its document waits for the retry
        assert status(oms, numbers["C-2"]) == "dispatched"
        with oms.db.read() as s:
            story = explain(s, numbers["C-1"])
            [doc] = [m for m in story["messages"] if m["topic"] == "wms.create"]
            # nothing the connector did before it raised was kept
            assert s.scalars(select(ScheduledTask).where(ScheduledTask.key == numbers["C-1"])).all() == []
        assert doc["status"] == "pending" and doc["attempts"] == 1
        assert "plugin 'broken'" in doc["last_error"] and "ConnectionError: WMS answered 503" in doc["last_error"]
        # the other order's task fails when it reaches picking: retried later, with an incident
        for _ in range(30):  # step through due times until the picking step has been tried
            oms.clock.advance_to(oms.pipeline.next_due())
            oms.pipeline.run_until_idle()
            with oms.db.read() as s:
                tasks = s.scalars(select(ScheduledTask).where(ScheduledTask.key == numbers["C-2"])).all()
            if any(t.attempts for t in tasks):
                break
        assert [(t.attempts, "TimeoutError" in t.last_error) for t in tasks] == [(1, True)]
        assert tasks[0].due_at > oms.clock.now()
        assert any(i.stage == "tasks" and "broken" in i.plugin for i in _incidents(oms))
        assert status(oms, numbers["C-2"]) == "accepted"
    finally:
        oms.close()


SENDER = '''
from oms_engine import hookimpl

class PickySms:
    name = "picky_sms"
    medium = "sms"
    sent = []

    def send(self, notification):
        if notification.recipient.startswith("139"):
            raise ValueError("number barred by the gateway")
        PickySms.sent.append(notification.id)

@hookimpl
def oms_register_senders(register):
    register(PickySms())
'''


def test_a_raising_sender_retries_that_message_and_delivers_the_others(tmp_path: Path, sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, plugins=[_plugin(tmp_path, SENDER, "picky")])
    try:
        barred = order_json("S-1", customer="C-BAD-PHONE")
        barred["customer"]["phone"] = "13900000000"
        results = oms.intake.ingest("json", payload(barred, order_json("S-2")))
        oms.pipeline.run_until_idle()
        with oms.db.read() as s:
            rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "notification",
                                                         OutboxMessage.target == "sms")).all()
        by_order = {r.number: [m for m in rows if m.order_number == r.number] for r in results}
        failed = by_order[results[0].number]
        assert failed and all(m.status == "pending" and "number barred" in m.last_error for m in failed)
        assert by_order[results[1].number] and all(m.status == "sent" for m in by_order[results[1].number])
        assert sys.modules["picky"].PickySms.sent == [m.id for m in by_order[results[1].number]]
    finally:
        oms.close()


OBSERVER_AND_FACTS = '''
from oms_engine import FactProvider, hookimpl

def provide(orders, core):
    out = {}
    for o in orders:
        if o.customer_ref == "C-ODD":
            raise KeyError("no score for C-ODD")
        out[o.number] = {"score": {"value": 1}}
    return out

@hookimpl
def oms_register_fact_providers(register):
    register(FactProvider("score", {"score.value": int}, provide))

@hookimpl
def oms_after_transition(order_number, to_state):
    if to_state == "dispatched":
        raise RuntimeError("audit log is full")
'''


def test_a_raising_fact_provider_holds_only_its_orders_and_a_raising_observer_keeps_the_transition(
        tmp_path: Path, sqlite_url: str) -> None:
    oms = build_oms(tmp_path, sqlite_url, plugins=[_plugin(tmp_path, OBSERVER_AND_FACTS, "scoring")])
    try:
        results = oms.intake.ingest("json", payload(order_json("F-1"), order_json("F-2", customer="C-ODD")))
        oms.pipeline.run_until_idle()
        ok, odd = (r.number for r in results)
        assert status(oms, ok) == "dispatched"     # the observer raised on this transition: it stands
        with oms.db.read() as s:
            held = explain(s, odd)
            fine = explain(s, ok)
        assert held["status"] == "on_hold" and held["hold_stage"] == "screen-fault"
        assert "fact provider 'score'" in held["hold_reason"] and "no score for C-ODD" in held["hold_reason"]
        assert [i["hook"] for i in fine["incidents"]] == ["oms_after_transition"]
        assert "the transition to dispatched stands" in fine["incidents"][0]["action"]
    finally:
        oms.close()


def test_oms_run_exits_cleanly_with_a_raising_plugin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    oms = _faulty_oms(tmp_path, url)
    [r] = oms.intake.ingest("json", payload(order_json("CLI-1", [("PEN-1", 1), ("TEA-1", 1)])))
    config = tmp_path / "config.yaml"
    config.write_text(f"database_url: {url}\nrules_dir: {oms.config.rules_dir}\n"
                      f"templates_dir: {ROOT / 'templates'}\noutbox_dir: {tmp_path / 'outbox'}\n"
                      f"plugins: [{oms.config.plugins[0]}]\n", encoding="utf-8")
    oms.close()
    oms_cmd = Path(sys.executable).parent / "oms"
    done = subprocess.run([str(oms_cmd), "--config", str(config), "run"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([str(oms_cmd), "--config", str(config), "order", "show", r.number], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "on_hold" in shown.stdout and "faulty_plugin" in shown.stdout and "incidents" in shown.stdout


def test_routing_asks_strategies_only_until_one_places_the_order(tmp_path: Path, sqlite_url: str) -> None:
    """Strategies are tried in the rules' order until one answers with a warehouse that takes the
    order: one further down that would fail on the order is never asked, and the decision lists the
    strategies that were."""
    rules = copy_rules(tmp_path)
    text = (rules / "routing.yaml").read_text(encoding="utf-8")
    last = ROUTE_RULE.replace("picky-first", "picky-last").replace("priority: 1", "priority: 99")
    (rules / "routing.yaml").write_text(text.rstrip("\n") + "\n" + last, encoding="utf-8")
    oms = build_oms(tmp_path, sqlite_url, rules_dir=rules, plugins=[_plugin(tmp_path, FAULTY)])
    try:
        [r] = oms.intake.ingest("json", payload(order_json("MUG-3", [("MUG-1", 1)])))
        oms.pipeline.run_until_idle()
        assert status(oms, r.number) == "dispatched"
        with oms.db.read() as s:
            [routing] = [d for d in explain(s, r.number)["decisions"] if d["point"] == "routing"]
        tried = [t["strategy"] for t in routing["outcome"]["tried"]]
        assert tried == [routing["outcome"]["strategy"]] and "picky" not in tried
        assert not _incidents(oms)
    finally:
        oms.close()

"""docs/plugins.md is complete, and every example in it works as a real plugin.

(a) Every hook in oms_engine/plugin/hookspecs.py has a section (a ``### <hook>``
heading), with an example that is exercised; every class plugins meet in
``oms_engine.__all__`` is described under "Objects hooks receive", with its fields.

(b) Every ```python block is compiled and imported. The first comment lines of a
block say what else is done with it:

    # registers: <registry>[.<point>] <name>
        The block is a plugin registering the component <name>. It is written to a
        module in tmp_path and loaded into an OMS by the shipped pytest plugin's
        ``make_oms(plugins=[<path to the .py file>])``, exactly as config.yaml's
        ``plugins:`` would load it; the component must then be in
        ``oms.plugins.<registry>`` (``oms.plugins.rule_actions[<point>]``),
        registered by that plugin, and it is exercised (below).
    # implements: <hook>
        The block is a plugin implementing a hook that registers nothing
        (oms_resolve_sku, oms_after_transition); loaded and exercised the same way.
    # exercise: {YAML flow mapping}
        How the exercise drives it. Common keys: ``lines`` ([[sku, qty] or
        [sku, qty, unit_price], ...], default [[TEA-1, 1]]), ``ship_to`` (address
        fields), ``customer`` (default C-OLD), ``settings`` (config.yaml's
        plugin_settings; the string ``$server`` becomes the URL of a local HTTP
        server that records what it is sent). Per kind, see EXERCISES.
    # file: <name>.py
        The file the block is saved as (else a unique name). A block saved as
        ``test_*.py`` is a test file: it is run with pytest in a subprocess, next to
        every other ``# file:`` block, using only the shipped fixtures.

A block that defines a ``@hookimpl`` must carry ``# registers:`` or ``# implements:``.
The test world is oms_engine.plugin.testing's: warehouses WH-SH, WH-BJ, WH-GZ and
SKUs TEA-1, MUG-1, ICE-1, SOFA-1, TV-1, PEN-1, RARE-1.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import logging
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

import oms_engine
from oms_engine.plugin import hookspecs
from oms_engine.plugin.testing import MINIMAL_RULES, OrderBuilder, drive, ingest_one, show_order, write_minimal_rules

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")

HOOKS = sorted(n for n, f in vars(hookspecs).items()
               if n.startswith("oms_") and callable(f) and hasattr(f, f"{hookspecs.PROJECT}_spec"))
# The registry of oms.plugins each registration hook fills.
REGISTRY_HOOK = {
    "channels": "oms_register_channels",
    "split_strategies": "oms_register_split_strategies",
    "routing_strategies": "oms_register_routing_strategies",
    "fact_providers": "oms_register_fact_providers",
    "connectors": "oms_register_connectors",
    "senders": "oms_register_senders",
    "einvoice_formats": "oms_register_einvoice_formats",
    "templates": "oms_register_templates",
    "rule_actions": "oms_register_rule_actions",
}
SECTIONS = ("What a plugin is", "Installing a plugin", "Environment switches", "Overriding built-ins",
            "When a plugin fails", "Hooks", "Objects hooks receive", "Stability", "Testing your plugin",
            "`oms plugins list`")
END = ("completed", "closed")  # where the simulated warehouse and carrier take an order


# -- reading the page ---------------------------------------------------------------------
@dataclass
class Block:
    index: int
    heading: str              # the nearest heading above it
    source: str
    line: int
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        what = self.markers.get("registers") or self.markers.get("implements") or self.markers.get("file") or ""
        return f"{self.index}-{what.split(' ')[-1] or self.heading}".replace(" ", "_")

    @property
    def hook(self) -> str | None:
        if "implements" in self.markers:
            return self.markers["implements"]
        if "registers" in self.markers:
            return REGISTRY_HOOK.get(self.markers["registers"].split()[0].split(".")[0])
        return None

    @property
    def exercise(self) -> dict[str, Any]:
        return yaml.safe_load(self.markers.get("exercise", "{}")) or {}


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every markdown heading outside code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^(#{1,6}) (.+?)\s*$", line)):
            out.append((len(m.group(1)), m.group(2)))
    return out


def section(text: str, title: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    fenced, start, level = False, None, 0
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if m is None:
            continue
        if start is None and m.group(2) == title:
            start, level = i + 1, len(m.group(1))
        elif start is not None and len(m.group(1)) <= level:
            return "\n".join(lines[start:i])
    if start is None:
        raise AssertionError(f"docs/plugins.md has no section '{title}'")
    return "\n".join(lines[start:])


def python_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    heading, fenced, lang, start, buf = "", False, "", 0, []
    for n, line in enumerate(text.splitlines(), start=1):
        if not fenced and (m := re.match(r"^#{1,6} (.+?)\s*$", line)):
            heading = m.group(1)
        elif line.startswith("```"):
            if not fenced:
                fenced, lang, start, buf = True, line[3:].strip(), n + 1, []
            else:
                if lang == "python":
                    source = "\n".join(buf) + "\n"
                    markers = {}
                    for first in buf:
                        mk = re.match(r"^# (registers|implements|exercise|file): (.+)$", first)
                        if not mk:
                            break
                        markers[mk.group(1)] = mk.group(2).strip()
                    blocks.append(Block(len(blocks), heading, source, start, markers))
                fenced = False
        elif fenced:
            buf.append(line)
    return blocks


BLOCKS = python_blocks(TEXT)
PLUGIN_BLOCKS = [b for b in BLOCKS if b.hook]
FILES = {b.markers["file"]: b for b in BLOCKS if "file" in b.markers}
TEST_FILES = sorted(name for name in FILES if name.startswith("test_"))
# Blocks that are neither plugins nor test files: they must import on their own.
PLAIN_BLOCKS = [b for b in BLOCKS if not b.hook and not b.markers.get("file", "").startswith("test_")]


# -- (a) the page is complete ------------------------------------------------------------------
def test_the_guide_has_its_sections() -> None:
    titles = {title for level, title in headings(TEXT) if level == 2}
    missing = [s for s in SECTIONS if s not in titles]
    assert not missing, f"docs/plugins.md lacks the sections {missing}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section(hook: str) -> None:
    hook_headings = {title for level, title in headings(section(TEXT, "Hooks")) if level == 3}
    assert hook in hook_headings, f"hook {hook} has no '### {hook}' section under '## Hooks' in docs/plugins.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_an_exercised_example(hook: str) -> None:
    examples = [b for b in PLUGIN_BLOCKS if b.hook == hook and b.heading == hook]
    assert examples, f"the section '{hook}' of docs/plugins.md has no example marked '# registers:' or '# implements:'"
    body = section(TEXT, hook)
    spec = getattr(hookspecs, hook)
    wins = "First result wins" in body or "first result wins" in body.lower()
    firstresult = bool(spec.oms_spec.get("firstresult"))
    assert wins == firstresult, f"the section '{hook}' must say whether it is collect-all or first result wins"
    if not firstresult:
        assert "Collect-all" in body, f"the section '{hook}' must say it is collect-all"
    for param in inspect.signature(spec).parameters:
        assert re.search(rf"^- `{param}[`(]", body, re.MULTILINE), \
            f"the section '{hook}' does not describe the parameter '{param}' (a list item '- `{param}`...')"


def public_classes() -> list[str]:
    return sorted(n for n in oms_engine.__all__
                  if inspect.isclass(getattr(oms_engine, n)) and not issubclass(getattr(oms_engine, n), Exception))


@pytest.mark.parametrize("name", public_classes())
def test_every_public_class_is_described_with_its_fields(name: str) -> None:
    objects = section(TEXT, "Objects hooks receive")
    assert name in {t for level, t in headings(objects) if level == 4}, \
        f"'{name}' (oms_engine.__all__) has no '#### {name}' under 'Objects hooks receive'"
    cls = getattr(oms_engine, name)
    if dataclasses.is_dataclass(cls):
        fields = [f.name for f in dataclasses.fields(cls)]
    elif isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
        fields = list(cls.model_fields)
    else:  # a protocol: its attributes and methods
        fields = [n for n in {*getattr(cls, "__annotations__", {}), *vars(cls)}
                  if not n.startswith("_") and n not in ("register",)]
    body = section(objects, name)
    missing = [f for f in fields if not re.search(rf"`{re.escape(f)}[`:(]", body)]
    assert not missing, f"'{name}' in docs/plugins.md does not describe {missing}"


def test_hook_examples_carry_their_markers() -> None:
    unmarked = [b.line for b in BLOCKS if "@hookimpl" in b.source and not b.hook]
    assert not unmarked, f"python blocks at lines {unmarked} define hooks but say neither '# registers:' nor " \
                         "'# implements:'"
    unknown = [b.line for b in BLOCKS if "registers" in b.markers and b.hook is None]
    assert not unknown, f"python blocks at lines {unknown} register into an unknown registry"


# -- (b) the examples work ---------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OMS_LOAD_PLUGINS", "OMS_BLOCK_PLUGINS", "OMS_TRACE_HOOKS", "http_proxy", "HTTP_PROXY",
                "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def oms_rules_dir(tmp_path: Path) -> Path:
    """The shipped minimal rules; each exercise rewrites the ruleset it needs before the OMS starts."""
    return write_minimal_rules(tmp_path / "rules")


@pytest.fixture
def oms_templates_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir(exist_ok=True)
    return directory


class _RecordingServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]


class _Recorder(BaseHTTPRequestHandler):
    server: _RecordingServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        answer = b'{"id": "REMOTE-1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Server:
    url: str
    requests: list[dict[str, Any]]


@pytest.fixture
def server() -> Iterator[Server]:
    """A local HTTP server standing in for a WMS, an SMS gateway, a chat webhook: it records every POST."""
    httpd = _RecordingServer(("127.0.0.1", 0), _Recorder)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests)
    finally:
        httpd.shutdown()
        httpd.server_close()


def substitute(value: Any, **names: str) -> Any:
    if isinstance(value, str):
        for key, text in names.items():
            value = value.replace(f"${key}", text)
        return value
    if isinstance(value, dict):
        return {k: substitute(v, **names) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, **names) for v in value]
    return value


def write_ruleset(rules_dir: Path, point: str, *rules: dict[str, Any], keep: bool = False) -> None:
    data = yaml.safe_load(MINIMAL_RULES[f"{point}.yaml"]) if keep else {"ruleset": point, "rules": []}
    data["rules"] = [*data["rules"], *rules]
    (rules_dir / f"{point}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def order_of(ex: dict[str, Any], external_id: str) -> dict[str, Any]:
    builder = OrderBuilder(external_id, customer=ex.get("customer", "C-OLD"))
    for sku, qty, *price in ex.get("lines", [["TEA-1", 1]]):
        builder.line(sku, qty, unit_price=price[0] if price else None)
    if "ship_to" in ex:
        builder.ship_to(**ex["ship_to"])
    return builder.build()


@dataclass
class Run:
    """One example loaded as a plugin, and what its exercise needs."""

    block: Block
    name: str                 # the component's name (or the hook for '# implements:')
    plugin: str               # the plugin's name: the module's stem
    path: Path
    ex: dict[str, Any]
    make_oms: Callable[..., Any]
    rules: Path
    templates: Path
    server: Server
    tmp_path: Path

    def start(self, **config: Any) -> Any:
        settings = substitute(self.ex.get("settings", {}), server=self.server.url)
        oms = self.make_oms(plugins=[str(self.path)], plugin_settings=settings, **config)
        registry = self.block.markers.get("registers", "").split(" ")[0]
        if registry:
            where, _, point = registry.partition(".")
            components = getattr(oms.plugins, where)
            components = components[point] if point else components
            assert self.name in components, f"{self.name} is not in oms.plugins.{registry}"
            assert components.plugin_of(self.name) == self.plugin, \
                f"{registry} '{self.name}' was registered by {components.plugin_of(self.name)}, not the example"
        else:
            assert self.block.hook in oms.plugin_info[self.plugin].hooks
        return oms

    def module(self, oms: Any) -> Any:
        return oms.plugins.pm.get_plugin(self.plugin)

    def posted(self, text: str) -> list[dict[str, Any]]:
        return [r for r in self.server.requests if text in r["body"]]


def ex_channels(run: Run) -> None:
    oms = run.start()
    adapter = oms.plugins.channels.get(run.name)
    body = getattr(run.module(oms), run.ex["payload"])
    results = oms.intake.ingest(run.name, body)
    assert results and all(r.error is None and r.number and r.status == "paid" for r in results), results
    drive(oms)
    for r in results:
        order = show_order(oms, r.number)
        assert order["channel"] == run.name and order["status"] in END, order["status"]
    assert adapter.verify({}, body, "not-the-secret") is False


def ex_split_strategies(run: Run) -> None:
    write_ruleset(run.rules, "split", {"name": "exercise", "then": [
        {"split": {"strategy": run.name, **run.ex.get("params", {})}}]})
    oms = run.start()
    number = ingest_one(oms, order_of(run.ex, "SPLIT-1")).number
    drive(oms)
    order = show_order(oms, number)
    [decision] = [d for d in order["decisions"] if d["point"] == "split"]
    assert decision["outcome"]["strategy"] == run.name
    assert len(order["children"]) >= 2, order["children"]
    assert all(c["status"] in END for c in order["children"]), order["children"]


def ex_routing_strategies(run: Run) -> None:
    write_ruleset(run.rules, "routing", {"name": "exercise", "then": [
        {"route": {"strategy": run.name, **run.ex.get("params", {})}}]})
    oms = run.start()
    number = ingest_one(oms, order_of(run.ex, "ROUTE-1")).number
    drive(oms)
    order = show_order(oms, number)
    [decision] = [d for d in order["decisions"] if d["point"] == "routing"]
    assert decision["outcome"]["strategy"] == run.name, decision["outcome"]
    if "warehouse" in run.ex.get("expect", {}):
        assert order["warehouse"] == run.ex["expect"]["warehouse"]
    assert order["status"] in END, order["status"]


def ex_fact_providers(run: Run) -> None:
    write_ruleset(run.rules, "blocking", {"name": "exercise", "when": run.ex["when"],
                                          "then": [{"hold": {"reason": "held by the exercise"}}]})
    oms = run.start()
    number = ingest_one(oms, order_of(run.ex, "FACTS-1")).number
    drive(oms)
    order = show_order(oms, number)
    assert (order["status"], order["hold_reason"]) == ("on_hold", "held by the exercise")


def ex_connectors(run: Run) -> None:
    oms = run.start(wms_connector=run.name)
    assert oms.plugins.connectors.get(run.name).kind == "wms", "the exercise drives a WMS connector"
    number = ingest_one(oms, order_of(run.ex, "WMS-1")).number
    drive(oms)
    assert show_order(oms, number)["status"] == "dispatched"
    assert run.posted(number), f"the connector sent nothing about {number}: {run.server.requests}"
    for payload in substitute(run.ex.get("callbacks", []), order=number):
        with oms.db.session() as s:
            oms.callbacks.receive(s, run.name, payload)
    drive(oms)
    order = show_order(oms, number)
    assert any(h["to"] == "shipped" and h["actor"] == f"wms:{run.name}" for h in order["history"]), order["history"]
    assert order["status"] in END, order["status"]


def ex_senders(run: Run) -> None:
    (run.templates / "exercise.sms.j2").write_text("Order {{ order.number }} is {{ order.status }}.")
    write_ruleset(run.rules, "notifications", {"name": "exercise", "when": {"transition.event": "pay"},
                                               "then": [{"notify": {"template": "exercise"}}]})
    oms = run.start()
    sender = oms.plugins.senders.get(run.name)
    assert sender.medium == "sms", "the exercise sends an SMS"
    assert oms.plugins.sender_for(sender.medium).name == run.name
    number = ingest_one(oms, order_of(run.ex, "SEND-1")).number
    drive(oms)
    assert run.posted(f"Order {number} is paid."), run.server.requests


def ex_templates(run: Run) -> None:
    write_ruleset(run.rules, "notifications", {"name": "exercise", "when": {"transition.event": "pay"},
                                               "then": [{"notify": {"template": run.name}}]})
    oms = run.start()
    medium = oms.plugins.templates.get(run.name).medium
    number = ingest_one(oms, order_of(run.ex, "TPL-1")).number
    drive(oms)
    sent = [json.loads(line) for line in (run.tmp_path / "outbox" / f"{medium}.jsonl").read_text().splitlines()]
    mine = [m for m in sent if m["template"] == run.name and m["order"] == number]
    assert mine and number in mine[0]["body"], sent


def ex_einvoice_formats(run: Run) -> None:
    oms = run.start(einvoice_format=run.name)
    number = ingest_one(oms, order_of(run.ex, "EINV-1")).number
    shown = oms.invoices.einvoice(f"{number}-INV01")
    assert shown["format"] == run.name and f"{number}-INV01" in str(shown["einvoice"]), shown
    assert shown["invoice"]["amount"] == show_order(oms, number)["payable"]


def ex_rule_actions(run: Run) -> None:
    point = run.block.markers["registers"].split(" ")[0].partition(".")[2]
    rule: dict[str, Any] = {"name": "exercise", "then": [{run.name: run.ex.get("params", {})}]}
    if "when" in run.ex:
        rule["when"] = run.ex["when"]
    write_ruleset(run.rules, point, rule, keep=True)
    oms = run.start()
    number = ingest_one(oms, order_of(run.ex, "ACTION-1")).number
    drive(oms)
    assert run.posted(number), f"the action did not run for {number}: {run.server.requests}"
    assert not show_order(oms, number)["incidents"]


def ex_oms_resolve_sku(run: Run) -> None:
    oms = run.start()
    result = ingest_one(oms, order_of(run.ex, "SKU-1"))
    assert result.status == "paid", f"{result}: {show_order(oms, result.number)['hold_reason']}"
    drive(oms)
    order = show_order(oms, result.number)
    assert {ln["channel_sku"]: ln["sku"] for ln in order["lines"]} == run.ex["expect"]
    assert order["status"] in END


def ex_oms_after_transition(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=run.ex["logger"])
    oms = run.start()
    number = ingest_one(oms, order_of(run.ex, "OBSERVE-1")).number
    drive(oms)
    seen = [r.getMessage() for r in caplog.records if r.name == run.ex["logger"] and number in r.getMessage()]
    history = [h for h in show_order(oms, number)["history"] if h["from"] is not None]
    assert len(history) > 5 and len(seen) == len(history), (seen, history)
    for h, message in zip(history, seen, strict=True):
        assert f"{h['from']} -> {h['to']}" in message


EXERCISES: dict[str, Callable[..., None]] = {
    "oms_register_channels": ex_channels,
    "oms_register_split_strategies": ex_split_strategies,
    "oms_register_routing_strategies": ex_routing_strategies,
    "oms_register_fact_providers": ex_fact_providers,
    "oms_register_connectors": ex_connectors,
    "oms_register_senders": ex_senders,
    "oms_register_templates": ex_templates,
    "oms_register_einvoice_formats": ex_einvoice_formats,
    "oms_register_rule_actions": ex_rule_actions,
    "oms_resolve_sku": ex_oms_resolve_sku,
    "oms_after_transition": ex_oms_after_transition,
}


def test_every_hook_has_an_exercise() -> None:
    assert sorted(EXERCISES) == HOOKS


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_python_block_compiles(block: Block) -> None:
    compile(block.source, f"docs/plugins.md:{block.line}", "exec")


def test_other_python_blocks_import(tmp_path: Path) -> None:
    """Plugins are imported by loading them, test files by running them; any other block must import alone."""
    for block in PLAIN_BLOCKS:
        name = f"oms_doc_block_{block.index}_{uuid.uuid4().hex[:8]}"
        path = tmp_path / f"{name}.py"
        path.write_text(block.source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.mark.parametrize("block", PLUGIN_BLOCKS, ids=[b.id for b in PLUGIN_BLOCKS])
def test_example_works_as_a_plugin(block: Block, tmp_path: Path, make_oms: Callable[..., Any], oms_rules_dir: Path,
                                   oms_templates_dir: Path, server: Server, caplog: pytest.LogCaptureFixture) -> None:
    stem = block.markers["file"][:-3] if "file" in block.markers else f"oms_doc_plugin_{block.index}"
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    path = plugin_dir / f"{stem}.py"
    path.write_text(block.source, encoding="utf-8")
    name = block.markers["registers"].split(" ")[1] if "registers" in block.markers else block.markers["implements"]
    run = Run(block, name, stem, path, block.exercise, make_oms, oms_rules_dir, oms_templates_dir, server, tmp_path)
    exercise = EXERCISES[block.hook]  # type: ignore[index]
    if "caplog" in inspect.signature(exercise).parameters:
        exercise(run, caplog)
    else:
        exercise(run)


@pytest.mark.skipif(not TEST_FILES, reason="docs/plugins.md has no test file example")
def test_testing_examples_pass(tmp_path: Path) -> None:
    for name, block in FILES.items():
        (tmp_path / name).write_text(block.source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_") and k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_FILES],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout and "failed" not in p.stdout

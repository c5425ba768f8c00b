"""The facade and durable_rules' memory: poisoned freed memory, refused compiles, freeing rulesets."""

from __future__ import annotations

import gc
import json
import threading
from typing import Any

import durable_rules_engine

from oms_engine.rules import RuleEngine, evaluate_reference
from oms_engine.rules import engine as engine_module
from oms_engine.rules.compiler import compile_ruleset

from .child import run_python

# Every shape the compiler emits, top level and inside list quantifiers; `not any_line` over
# `not_in` and `all_lines` over `in` used to compile to `$iall` over an `$or`, which rete.c
# leaves partly uninitialised (error 102 when recycled memory holds byte 9 or 12).
SHAPES = [
    "{s: a}", "{s: {ne: a}}", "{n: {gt: 1}}", "{n: {gte: 1}}", "{n: {lt: 1}}", "{n: {lte: 1}}", "{x: {gt: 0.5}}",
    "{s: {in: [a, b]}}", "{s: {not_in: [a, b]}}", "{s: {matches: '^a'}}", "{not: {s: {matches: '^a'}}}",
    "{s: {exists: true}}", "{s: {exists: false}}", "{b: true}", "{any: [{s: a}, {n: 1}]}", "{any: [{s: a}, {s: c}]}",
    "{all: [{s: a}, {n: 1}]}", "{not: {all: [{s: a}, {n: 1}]}}", "{not: {any: [{s: a}, {n: {gt: 1}}]}}",
    "{any_line: {sku: A}}", "{any_line: {sku: {in: [A, B]}}}", "{any_line: {sku: A, q: {gt: 1}}}",
    "{any_line: {any: [{sku: A}, {q: {gt: 1}}]}}", "{any_line: {sku: {matches: 'B$'}}}",
    "{any_line: {sku: {exists: false}}}", "{all_lines: {sku: A}}", "{all_lines: {sku: {in: [A, B]}}}",
    "{all_lines: {any: [{sku: A}, {sku: B}]}}", "{all_lines: {sku: {not_in: [A, B]}}}",
    "{all_lines: {q: {gt: 1}, sku: {ne: C}}}", "{all_lines: {not: {sku: {matches: '^C'}}}}",
    "{all_lines: {q: {exists: true}}}", "{not: {any_line: {sku: {not_in: [A, B]}}}}", "{not: {any_line: {sku: C}}}",
    "{not: {all_lines: {sku: {in: [A, B]}}}}", "{any_item: {list: pk, where: {w: {gt: 1}}}}",
    "{all_items: {list: pk, where: {k: {in: [box, bag]}}}}",
    "{all: [{any_line: {sku: A}}, {all_lines: {q: {gt: 0}}}, {s: {in: [a, b]}}]}",
    "{any: [{all_lines: {sku: {in: [A, B]}}}, {n: 3}]}",
]  # fmt: skip

FACTS: list[dict[str, Any]] = [
    {"s": "a", "n": 1, "x": 1.5, "b": True, "lines": [{"sku": "A", "q": 2}, {"sku": "B", "q": 1}],
     "pk": [{"w": 2, "k": "box"}]},
    {"s": "c", "n": 3, "x": 0.5, "b": False, "lines": [{"sku": "C", "q": 5}], "pk": [{"w": 1, "k": "crate"}]},
    {"s": None, "lines": [{"sku": "A"}, {"q": 3}], "pk": []},
    {"lines": []},
    {},
]


def test_every_condition_shape_compiles_and_agrees_with_poisoned_freed_memory() -> None:
    """mallopt(M_PERTURB, b) fills freed memory with b: all 256 values, twice each."""
    out = run_python(f"""
        import ctypes

        SHAPES = {SHAPES!r}
        FACTS = {FACTS!r}
        libc = ctypes.CDLL(None)
        M_PERTURB = -6
        rs = ruleset(SHAPES)
        engine = RuleEngine()
        expected = [evaluate_reference(rs, f).fired_names for f in FACTS]
        compiled = 0
        try:
            for byte in range(256):
                libc.mallopt(M_PERTURB, byte)
                for _ in range(2):
                    engine.load(rs)  # a fresh durable compile; the hot reload frees the old one
                    compiled += 1
                    got = [engine.evaluate("p", f).fired_names for f in FACTS]
                    assert got == expected, (byte, got, expected)
        finally:
            libc.mallopt(M_PERTURB, 0)
        engine.close()
        print(json.dumps([compiled, [len(e) for e in expected]]))
    """)
    assert out[0] == 512
    assert all(0 < fired < len(SHAPES) for fired in out[1][:3])


def test_no_quantifier_over_an_or_is_ever_emitted(load: Any) -> None:
    rules = "".join(f"  - name: r{i}\n    when: {w}\n    then: [flag]\n" for i, w in enumerate(SHAPES))
    rs = load(f"ruleset: p\nrules:\n{rules}", schema=None)

    def walk(node: Any, inside: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert not (inside and key == "$or"), node
                walk(value, inside or key in ("$iall", "$iany"))
        elif isinstance(node, list):
            for item in node:
                walk(item, inside)

    for chunk in compile_ruleset(rs).chunks:
        walk(chunk.definition, False)
        assert "$or" not in json.dumps(chunk.definition)  # durable never even sees one


def test_refused_loads_do_not_leak_memory() -> None:
    """Every refused create_ruleset leaked ~200 KB in durable's C engine (300 reloads: +140 MB)."""
    growth = run_python("""
        import dataclasses
        from oms_engine.rules import RuleEngineError
        from oms_engine.rules import engine as engine_module
        from oms_engine.rules.compiler import Chunk, CompiledRuleset
        from oms_engine.rules.model import And, AnyItem, Compare

        def rss_mb():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

        many = ", ".join(f"{{any_line: {{sku: S{i}, q: {i}}}}}" for i in range(15))
        text = f"ruleset: p\\nrules:\\n  - name: r\\n    when: {{all: [{many}]}}\\n    then: [flag]\\n"
        good = ruleset(["{a: 1}"])
        huge = And(tuple(AnyItem("lines", And((Compare("sku", "eq", f"S{i}"), Compare("q", "eq", i))))
                         for i in range(15)))
        bypass = dataclasses.replace(good, rules=(dataclasses.replace(good.rules[0], when=huge),), version="x")
        engine = RuleEngine()
        engine.load(good)
        # What durable itself refuses but the compiler did not foresee: asked once, then remembered.
        refused = {"t0": {"all": [{"m": {"$and": [{"$k": "f"}] + [{"$and": [{"d.a": i}, {"d.b": i}]}
                                                                  for i in range(20)]}}], "pri": 0, "run": "r0"}}
        unforeseen = CompiledRuleset((Chunk(refused, good.rules, (), (), ()),), {})

        def loader():
            try:
                load_ruleset_text(text, filename="p.yaml")
            except RulesetInvalid:
                return
            raise AssertionError("loaded")

        def engine_bypass():
            try:
                engine.load(bypass)
            except RuleEngineError:
                return
            raise AssertionError("loaded")

        def durable_refusal():
            real = engine_module.compile_ruleset
            engine_module.compile_ruleset = lambda rs: unforeseen
            try:
                engine.load(good)
            except RuleEngineError:
                return
            finally:
                engine_module.compile_ruleset = real
            raise AssertionError("loaded")

        growth = {}
        for name, attempt in (("loader", loader), ("engine", engine_bypass), ("durable", durable_refusal)):
            for _ in range(20):
                attempt()
            before = rss_mb()
            for _ in range(300):
                attempt()
            growth[name] = rss_mb() - before
        assert engine.evaluate("p", {"a": 1}).fired_names == ["r0"]  # the good ruleset stayed
        print(json.dumps(growth))
    """)
    assert all(mb < 8 for mb in growth.values()), growth


def test_an_engine_collected_without_close_frees_its_durable_rulesets() -> None:
    out = run_python("""
        import gc
        import durable_rules_engine

        def rss_mb():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

        rs = ruleset(["{a: {gt: " + str(i) + "}}" for i in range(100)])  # two chunks

        def use_and_drop():
            engine = RuleEngine()
            engine.load(rs)
            assert len(engine.evaluate("p", {"a": 5}).fired) == 5
            handles = [r._handle for r in engine._host._ruleset_list]
            del engine
            gc.collect()
            return handles

        for _ in range(20):
            use_and_drop()
        before = rss_mb()
        for _ in range(200):
            handles = use_and_drop()

        def freed(handle):
            try:
                durable_rules_engine.get_state(handle, "no-such-sid")
            except Exception as exc:
                return str(exc).endswith("111")  # invalid handle; a live one says 309 (no such sid)
            return False

        print(json.dumps([rss_mb() - before, len(handles), all(freed(h) for h in handles)]))
    """)
    growth, chunks, freed = out
    assert chunks > 1 and freed
    assert growth < 8, growth


def _freed(handle: int) -> bool:
    try:
        durable_rules_engine.get_state(handle, "no-such-sid")
    except Exception as exc:
        return str(exc).endswith("111")  # invalid handle; a live ruleset says 309 (no such sid)
    return False


def _ruleset(load: Any, count: int) -> Any:
    rule = "  - name: r{0}\n    when: {{order.payable: {{gt: {0}}}}}\n    then: [flag]\n"
    rules = "".join(rule.format(i) for i in range(count))
    return load(f"ruleset: p\nrules:\n{rules}")


def test_close_frees_every_chunk(load: Any) -> None:
    engine = RuleEngine()
    engine.load(_ruleset(load, 200))
    handles = [r._handle for r in engine._host._ruleset_list]
    assert len(handles) > 1
    engine.close()
    assert engine._host._ruleset_list == [] and all(_freed(h) for h in handles)
    engine.load(_ruleset(load, 3))  # still usable
    assert engine.evaluate("p", {"order": {"payable": 2}}).fired_names == ["r0", "r1"]
    engine.close()


def test_collection_while_durable_is_busy_defers_the_free(load: Any) -> None:
    rs = _ruleset(load, 3)
    victims = [RuleEngine()]
    victims[0].load(rs)
    handles = [r._handle for r in victims[0]._host._ruleset_list]

    # Garbage collection inside an action: the finalizer must not call into durable re-entrantly.
    def drop_victim(ruleset: str, rule: str) -> None:
        if victims:
            victims.clear()
            gc.collect()
            assert set(handles) <= set(engine_module._DEFERRED_FREES)

    engine = RuleEngine(on_fire=drop_victim)
    try:
        engine.load(rs)
        assert engine.evaluate("p", {"order": {"payable": 5}}).fired_names == ["r0", "r1", "r2"]
        assert all(_freed(h) for h in handles)  # freed when the evaluation left durable

        # Another thread holds the lock: deferred until the next call into the engine.
        other = RuleEngine()
        other.load(rs)
        handles = [r._handle for r in other._host._ruleset_list]
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with engine_module.DURABLE_LOCK:
                holding.set()
                release.wait()

        thread = threading.Thread(target=hold)
        thread.start()
        holding.wait()
        del other
        gc.collect()
        assert set(handles) <= set(engine_module._DEFERRED_FREES)
        release.set()
        thread.join()
        assert engine.evaluate("p", {"order": {"payable": 1}}).fired_names == ["r0"]
        assert all(_freed(h) for h in handles) and not engine_module._DEFERRED_FREES
    finally:
        engine.close()


def test_reference_and_engine_agree_on_the_shapes(load: Any) -> None:
    rules = "".join(f"  - name: r{i}\n    when: {w}\n    then: [flag]\n" for i, w in enumerate(SHAPES))
    rs = load(f"ruleset: p\nrules:\n{rules}", schema=None)
    engine = RuleEngine()
    try:
        engine.load(rs)
        for facts in FACTS:
            assert engine.evaluate("p", facts).fired_names == evaluate_reference(rs, facts).fired_names, facts
    finally:
        engine.close()

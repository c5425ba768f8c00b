"""Measure the limits of durable_rules that compiler.py stays inside (prints figures; not a test).

Run: python tests/rules/probe_durable_limits.py   (takes a few minutes)

Every attempt runs in a child process that calls durable_rules_engine through the same
Host subclass as the facade, because going over a limit can abort the process, hang it,
or corrupt memory. Each limit is found by bisection on a count; the figures it printed
for durable-rules 2.0.28 on CPython 3.11 / x86_64 / glibc are the constants in
oms_engine/rules/limits.py. tests/rules/test_rules_limits.py re-checks the edges quickly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from durable.engine import MessageNotHandledException
from oms_engine.rules.engine import _QuietHost

spec = json.load(sys.stdin)
host = _QuietHost()
try:
    host.register_rulesets({"p": spec["definition"]})
except Exception as exc:
    print(json.dumps(["create", str(exc)[-3:]]))
    sys.exit(0)
counts = []
for k in range(2):
    fired = []
    host.sink = fired
    sid = f"s{k}"
    try:
        host.assert_fact("p", {"sid": sid, "id": sid, "$k": "f", **spec["fact"]})
    except MessageNotHandledException:
        pass
    except Exception as exc:  # reading or deleting this state would abort the process
        print(json.dumps(["assert", str(exc)[-3:]]))
        sys.exit(0)
    host.get_state("p", sid)
    host.delete_state("p", sid)
    counts.append(sum(1 for name in fired if name != "zz"))
print(json.dumps(["ok", counts[0]]))
"""

MARKER = {"$k": "f"}
SENTINEL = {"all": [{"m": dict(MARKER)}], "pri": 100000, "run": "zz"}
Result = tuple[Any, ...]


def rules(conditions: list[dict[str, Any]], *, sentinel: bool = True) -> dict[str, Any]:
    definition: dict[str, Any] = {
        f"r{i}": {"all": [{"m": {"$and": [dict(MARKER), c]}}], "pri": i, "run": f"r{i}"}
        for i, c in enumerate(conditions)
    }
    if sentinel:
        definition["zz"] = SENTINEL
    return definition


def attempt(definition: dict[str, Any], fact: dict[str, Any], timeout: float = 20) -> Result:
    """("ok", actions fired by one evaluation) | ("create"/"assert", error code) | ("crash", rc) | ("hang",)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(ROOT)],
            input=json.dumps({"definition": definition, "fact": fact}),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return ("hang",)
    if proc.returncode != 0:
        return ("crash", proc.returncode)
    return tuple(json.loads(proc.stdout.strip().splitlines()[-1]))


def largest(make: Callable[[int], Result], low: int, high: int, ok: Callable[[Result], bool]) -> tuple[int, Result]:
    """The largest n in [low, high] for which ok(make(n)); the first failure seen above it."""
    assert ok(make(low)), make(low)
    failure = make(high)
    if ok(failure):
        return high, failure
    while high - low > 1:
        middle = (low + high) // 2
        result = make(middle)
        if ok(result):
            low = middle
        else:
            high, failure = middle, result
    return low, failure


def is_ok(result: Result) -> bool:
    return result[0] == "ok"


def created(result: Result) -> bool:
    return result[0] not in ("create", "hang")


def fires(count: int) -> Callable[[Result], bool]:
    return lambda result: result == ("ok", count)


def report(what: str, found: tuple[int, Result]) -> None:
    print(f"{what:<66} {found[0]:>6}   then {found[1]}")


def main() -> None:
    zero = {"a": 0}
    report("sibling tests that all pass (error 303, facade: abort)",
           largest(lambda n: attempt(rules([{"$gt": {"a": -i - 1}} for i in range(n)]), zero), 1, 200, is_ok))
    report("... branches of one rule's $or that all pass",
           largest(lambda n: attempt(rules([{"$or": [{"$gt": {"a": -i - 1}} for i in range(n)]}]), zero),
                   1, 200, is_ok))
    report("... m in $and of two $or of m true tests (DFS on a shared trie: 2m-1)",
           largest(lambda m: attempt(rules([{"$and": [{"$or": [{"$gt": {f: -i - 1}} for i in range(m)]}
                                                      for f in ("a", "b")]}]), {"a": 0, "b": 0}), 1, 100, is_ok))
    report("... rules sharing one passing test (not a limit)",
           largest(lambda n: attempt(rules([{"a": 0} for _ in range(n)]), zero), 1, 256, is_ok))
    report("$and/$or groups in one rule, marker's $and included (error 113)",
           largest(lambda n: attempt(rules([_nested(n - 1)]), {f"x{j}": 0 for j in range(40)}), 2, 40, created))
    report("properties of the posted fact, sid/id/$k included (error 302)",
           largest(lambda n: attempt(rules([{"f0": 1}]), {f"f{i}": 1 for i in range(n - 3)}), 4, 400, fires(1)))
    report("properties of one list element (error 302)",
           largest(lambda n: attempt(rules([{"$iany": {"l": {"$i.f0": 1}}}]), {"l": [{f"f{i}": 1 for i in range(n)}]}),
                   1, 400, fires(1)))
    report("distinct tests below one node (512: create_ruleset hangs)",
           largest(lambda n: attempt(rules([{"$and": [{"a": 10**6 + i}, {"b": i}]} for i in range(n)]), zero,
                                     timeout=10), 1, 600, created))
    # The fields are present, so no `$nex` passes (more than 64 passing would be error 303).
    report("$nex tests below one node, evaluated (128: segfault)",
           largest(lambda n: attempt(_nex(n), {f"b{i}": 1 for i in range(n)}), 1, 300, is_ok))
    report("$nex tests below one node, created (error 107)",
           largest(lambda n: attempt(_nex(n), {f"b{i}": 1 for i in range(n)}), 1, 300, created))
    report("rules ending at one node, evaluated (256 on the marker: segfault)",
           largest(lambda n: attempt(_always(n), zero), 1, 400, is_ok))
    report("rules ending at one node, created (error 108)",
           largest(lambda n: attempt(_always(n), zero), 1, 400, created))
    # Not monotonic (the length wraps at 65,536), so no bisection: 'b' must not equal 'b' + 'x' * (n - 1).
    for n in (65535, 65536, 65537, 131073):
        wrong = attempt(rules([{"s": "b"}]), {"s": "b" + "x" * (n - 1)}) != ("ok", 0)
        print(f"{'string of n bytes compared wrongly with a 1-byte literal, n =':<66} {n:>6}   {wrong}")
    report("elements of a list, the last one matching (not a limit)",
           largest(lambda n: attempt(rules([{"$iany": {"l": {"$i.q": 1}}}]), {"l": [{"q": 0}] * (n - 1) + [{"q": 1}]}),
                   1, 10000, fires(1)))
    report("actions fired in one evaluation by $and of k $or of 2 (2^k; not a limit)",
           largest(lambda k: attempt(rules([{"$and": [{"$or": [{"$gt": {f"x{j}": -1}}, {"$gt": {f"x{j}": -2}}]}
                                                      for j in range(k)]}]), {f"x{j}": 0 for j in range(10)}),
                   1, 8, lambda r: r[0] == "ok"))
    print("refused create_ruleset, RSS growth per attempt (KiB):", _refusal_leak())
    print("MALLOC_PERTURB_ bytes that make create_ruleset fail (error 102):")
    for name, failures in _perturbed_shapes().items():
        print(f"  {name:<40} {failures or 'none'}")


def _nex(count: int) -> dict[str, Any]:
    return rules([{"$nex": {f"b{i}": 1}} for i in range(count)])


def _always(count: int) -> dict[str, Any]:
    return {f"r{i}": {"all": [{"m": dict(MARKER)}], "pri": i, "run": f"r{i}"} for i in range(count)}


def _nested(depth: int) -> dict[str, Any]:
    cond: dict[str, Any] = {"x0": 0}
    for j in range(depth):
        cond = {("$and" if j % 2 else "$or"): [cond, {"$gt": {f"x{j + 1}": -1}}]}
    return cond


LEAK = r"""
import json, sys
import durable_rules_engine
bad = {"r0": {"all": [{"m": {"$and": [{"$k": "f"}] + [{"$and": [{"a": i}, {"b": i}]} for i in range(20)]}}], "pri": 0}}
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
for i in range(20):
    try: durable_rules_engine.create_ruleset(f"w{i}", json.dumps(bad))
    except Exception: pass
before = rss()
for i in range(300):
    try: durable_rules_engine.create_ruleset(f"b{i}", json.dumps(bad))
    except Exception: pass
print((rss() - before) / 300)
"""


def _refusal_leak() -> float:
    out = subprocess.run([sys.executable, "-c", LEAK], capture_output=True, text=True, check=True).stdout
    return round(float(out), 1)


PERTURBED = r"""
import json, sys
import durable_rules_engine
shapes = json.loads(sys.argv[1])
out = {}
for name, cond in shapes.items():
    definition = {"r0": {"all": [{"m": {"$and": [{"$k": "f"}, cond]}}], "pri": 0}}
    for k in range(3):
        try:
            durable_rules_engine.delete_ruleset(durable_rules_engine.create_ruleset(f"x{k}", json.dumps(definition)))
        except Exception as exc:
            out[name] = str(exc)[-3:]
print(json.dumps(out))
"""


def _perturbed_shapes() -> dict[str, list[int]]:
    lines = "d.lines"
    shapes = {
        "$iall over $or of equalities": {"$iall": {lines: {"$or": [{"$i.q": 1}, {"$i.q": 2}, {"$i.q": 3}]}}},
        "$iall over $or, two fields": {"$iall": {lines: {"$or": [{"$neq": {"$i.s": "a"}}, {"$gt": {"$i.q": 1}}]}}},
        "$iany over $or": {"$iany": {lines: {"$or": [{"$i.s": "a"}, {"$i.s": "b"}]}}},
        "$iall over $and": {"$iall": {lines: {"$and": [{"$i.s": "a"}, {"$i.q": 1}]}}},
        "$iall over one test": {"$iall": {lines: {"$i.$m.m0": True}}},
        "$iany over $and": {"$iany": {lines: {"$and": [{"$neq": {"$i.s": "a"}}, {"$nex": {"$i.c": 1}}]}}},
        "$or at the top": {"$or": [{"d.a": 1}, {"d.b": 2}]},
    }
    failures: dict[str, list[int]] = {name: [] for name in shapes}
    for byte in range(256):
        env = dict(os.environ, MALLOC_PERTURB_=str(byte))
        proc = subprocess.run([sys.executable, "-c", PERTURBED, json.dumps(shapes)], env=env,
                              capture_output=True, text=True, check=True)
        for name in json.loads(proc.stdout):
            failures[name].append(byte)
    return failures


if __name__ == "__main__":
    main()

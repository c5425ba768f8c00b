"""Evaluations per second for rulesets of 5, 50 and 200 rules (prints figures only).

Run: python -m tests.rules.bench_rules (make bench-rules)
"""

from __future__ import annotations

import time
from typing import Any

from oms_engine.rules import RuleEngine, evaluate_reference, load_ruleset_text

FACTS: dict[str, Any] = {
    "order": {"payable": 120000, "currency": "CNY", "channel": "json"},
    "customer": {"level": "gold", "blacklisted": False, "order_count": 3},
    "ship_to": {"country": "CN", "region": "Shanghai", "city": "Shanghai"},
    "lines": [{"sku": f"A{i}", "quantity": i + 1, "attributes": {"cold_chain": i % 2 == 0}} for i in range(5)],
}


def make_ruleset(size: int) -> str:
    """A mix of realistic rule shapes; roughly one rule in ten matches FACTS."""
    shapes = [
        "{{order.payable: {{gt: {n}}}}}",
        "{{customer.level: {{in: [silver, bronze, level{n}]}}}}",
        "{{all: [{{ship_to.country: CN}}, {{customer.order_count: {{gte: {n}}}}}]}}",
        "{{any_line: {{sku: B{n}, quantity: {{gt: 1}}}}}}",
        "{{not: {{ship_to.region: {{in: [Shanghai, Region{n}]}}}}}}",
        "{{ship_to.city: {{matches: 'x{n}'}}}}",
        "{{all_lines: {{quantity: {{lt: {n}}}}}}}",
        "{{any: [{{order.channel: api{n}}}, {{customer.blacklisted: true}}]}}",
    ]
    lines = ["ruleset: bench", "rules:"]
    for i in range(size):
        when = shapes[i % len(shapes)].format(n=i * 5000 + 3)
        lines += [f"  - name: r{i}", f"    priority: {i % 7}", f"    when: {when}", f"    then: [{{flag: {{n: {i}}}}}]"]
    return "\n".join(lines) + "\n"


def rate(fn: Any, seconds: float = 1.0) -> tuple[float, int]:
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        count += 20
    return count / elapsed, count


def main() -> None:
    engine = RuleEngine()
    print(f"{'rules':>6} {'fired':>6} {'engine eval/s':>14} {'us/eval':>9} {'reference eval/s':>17} {'load ms':>8}")
    for size in (5, 50, 200):
        started = time.perf_counter()
        ruleset = load_ruleset_text(make_ruleset(size), filename=f"bench-{size}.yaml")
        engine.load(ruleset)
        load_ms = (time.perf_counter() - started) * 1000
        fired = len(engine.evaluate("bench", FACTS).fired)
        assert engine.evaluate("bench", FACTS).fired_names == evaluate_reference(ruleset, FACTS).fired_names
        per_sec, _ = rate(lambda: engine.evaluate("bench", FACTS))
        ref_per_sec, _ = rate(lambda rs=ruleset: evaluate_reference(rs, FACTS))
        print(f"{size:>6} {fired:>6} {per_sec:>14,.0f} {1e6 / per_sec:>9.0f} {ref_per_sec:>17,.0f} {load_ms:>8.1f}")
    engine.close()


if __name__ == "__main__":
    main()

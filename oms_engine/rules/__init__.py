"""Rules: YAML decision rules for the order management system.

Operations staff edit YAML rule files; this package loads and validates them,
compiles them to durable_rules, evaluates order facts and reports which rules
fired. It is the only place in the project that imports durable_rules.

Rule file format (one file = one ruleset = one decision point)::

    ruleset: blocking            # name, [a-z0-9][a-z0-9_-]*, unique across the rules dir
    description: Hold risky orders before they are split
    mode: all                    # all: every matching rule fires, in priority order
                                 # first: only the highest-priority matching rule fires
    rules:
      - name: blacklisted-customer     # unique within the file, [a-z0-9][a-z0-9_-]*
        priority: 10                   # integer (default 0); lower fires first; ties: file order
        description: optional text
        when:                          # a condition; omitted or {} means always true
          customer.blacklisted: true
        then:                          # non-empty list of actions: {name: params-or-null}
          - hold: {reason: customer is on the blacklist}   # (a bare `- name` also works)
      - name: big-order-new-customer
        priority: 20
        when:
          all:
            - order.payable: {gt: 500000}      # money is integer minor units
            - customer.order_count: {eq: 0}
        then:
          - hold: {reason: new customer, order over 5000.00}
      - name: cold-chain
        priority: 30
        when:
          any_line: {attributes.cold_chain: true}
        then:
          - split: {strategy: by_attribute, attribute: cold_chain}

Conditions (a mapping; several keys in one mapping are AND-ed):

* ``field.path: scalar`` - equality.
* ``field.path: {op: value, ...}`` - ops ``eq ne gt gte lt lte`` (ordering ops only on
  numbers), ``in``/``not_in`` (non-empty list), ``matches`` (regex, see below),
  ``exists`` (true/false). Several ops are AND-ed.
* ``all: [cond, ...]``, ``any: [cond, ...]``, ``not: cond``.
* ``any_line: cond`` / ``all_lines: cond`` - over the elements of the ``lines`` list;
  field paths inside are relative to one line. ``any_item``/``all_items`` take
  ``{list: <path>, where: cond}`` for other lists. Quantifiers cannot be nested.

Semantics:

* Types are strict. With a FactSchema, unknown fields and literals of the wrong type
  are load errors, and facts whose values have the wrong type raise FactError
  (int is accepted where float is declared; bool is never a number). Without a
  schema the types implied by the rule literals are enforced the same way.
* Null counts as missing. A comparison on a missing field is *unknown* and never
  fires - also under ``not`` and for ``ne``/``not_in``: ``{not: {a: 1}}`` and
  ``{a: {ne: 1}}`` are both false when ``a`` is missing. Use ``exists`` to test
  presence (three-valued Kleene logic; see reference.py).
* ``any_line`` is false for no lines; ``all_lines`` is true for no lines.
* ``matches`` means ``re.search``, evaluated with RE2 in linear time (no backreferences
  or lookaround; regex.py). It is evaluated in
  Python by the facade and durable_rules tests the result, because durable's own
  regex matcher gives wrong answers for ordinary patterns (see regex.py). ``in`` and
  ``not_in`` with several values are evaluated the same way (durable has no ``$in``,
  and its ``$or`` inside a line quantifier is broken, see normalize.py).
* Every Decision carries ``facts``: the checked, projected facts it was made on
  (only the fields the ruleset reads). Stored with the decision, they replay it.

Limits. durable_rules 2.0.28 aborts, hangs or answers wrongly past some small fixed
limits (compiler.py lists them; tests/rules/probe_durable_limits.py measures them).
The compiler keeps every ruleset inside them, and the loader refuses, naming file,
line and rule, what it cannot fit; durable itself is never asked to compile something
it would refuse (each refusal leaks ~200 KB in its C engine). So no ruleset that
loads can crash the process or fail an evaluation. What users can hit:

* Any number of rules loads. A ruleset is split into chunks of at most 64
  alternatives, each its own durable ruleset (durable aborts the process when more
  than 64 tests pass at once), so an evaluation costs one durable call per chunk
  that can fire; ``mode: first`` stops at the first chunk that fires.
* One rule may expand to at most 256 alternatives: and-ed ``any`` lists multiply
  (``all: [{any: [a, b, c]}, {any: [d, e]}]`` is 6), while ``in`` and an ``any`` of
  equalities on one field count as one. Split bigger rules.
* At most 14 ``any_line``/``any_item`` tests with several conditions each may be
  and-ed in one alternative (durable refuses a 16th and/or group, error 113).
* One rule may read at most ~250 fields, and ~250 fields of each list element
  (durable fails every evaluation of a fact with more than 254 properties, error 302).
  Lists may have any number of elements.
* Text literals are limited to 4096 characters (durable compares strings over a
  16-bit length); longer text in facts is fine: it is cut before posting to a length
  that still equals no literal.
* ``all_lines`` can only OR equalities on a single field inside it (``in`` is fine);
  other ORs are rejected at load time because durable_rules mis-evaluates them.
* YAML anchors and aliases (``&a``, ``*a``) are refused in rule files: a few hundred
  bytes of nested aliases expand to gigabytes. ``yaml_source.load_plain`` reads other
  YAML files (settings) with the same guarantees.

Rule tests live in ``rules/tests/*.yaml``::

    ruleset: blocking
    cases:
      - name: blacklisted customers are held
        facts: {customer: {blacklisted: true}, order: {payable: 1000}, lines: []}
        expect:
          fired: [blacklisted-customer]                  # exact list, in order
          actions: [{hold: {reason: customer is on the blacklist}}]
"""

from .catalog import ActionCatalog, ActionSpec
from .decision import Decision, FiredRule
from .engine import RuleEngine
from .errors import FactError, RuleEngineError, RuleError, RulesetInvalid
from .loader import load_rules_dir, load_ruleset_file, load_ruleset_text
from .model import Action, Rule, Ruleset
from .reference import evaluate_reference
from .schema import FactSchema
from .testing import RuleTestResult, run_rule_tests

__all__ = [
    "Action",
    "ActionCatalog",
    "ActionSpec",
    "Decision",
    "FactError",
    "FactSchema",
    "FiredRule",
    "Rule",
    "RuleEngine",
    "RuleEngineError",
    "RuleError",
    "RuleTestResult",
    "Ruleset",
    "RulesetInvalid",
    "evaluate_reference",
    "load_rules_dir",
    "load_ruleset_file",
    "load_ruleset_text",
    "run_rule_tests",
]

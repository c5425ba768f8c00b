"""The limits of durable_rules 2.0.28, measured, and the facade's own limits chosen inside them.

Every number here was found by tests/rules/probe_durable_limits.py and is
re-checked by tests/rules/test_rules_limits.py in child processes: past
them durable_rules refuses a ruleset, fails every evaluation, hangs, or
aborts the process. The compiler (compiler.py, terms.py) keeps every
ruleset inside them, and the loader refuses, with the rule, what it cannot.
"""

from __future__ import annotations

# ---- Limits of durable_rules 2.0.28, measured ------------------------------------------------
# Measured by tests/rules/probe_durable_limits.py: it calls durable_rules_engine directly,
# one child process per attempt (the failures include aborts and hangs), and bisects on the
# count (CPython 3.11, x86_64, glibc). tests/rules/test_rules_limits.py re-checks each edge.

DURABLE_STACK = 64
"""Alpha nodes that may be pending at once while one fact walks the network: 65 sibling tests
that all pass fail the assert with error 303, and deleting that broken state aborts the process
(`free(): invalid pointer`, double free): the "65 fired rules" crash. 130 rules sharing one
test fire fine; one rule whose `$or` has 65 true branches crashes the same way."""

MAX_GROUPS_PER_DURABLE_RULE = 15
"""`$and`/`$or` objects in one durable rule, nested ones and the marker's `$and` included (an
`$iany` itself does not count, the `$and` inside it does); 16 make create_ruleset fail, error 113."""

MAX_OBJECT_PROPERTIES = 254
"""Properties of one posted object, counted flattened: every nested object, list and scalar, and
`sid`/`id`/`$k` at the top. 255 make every assert fail with error 302 (250 flags in `$m` plus
`sid`, `id`, `$k` and `$m` itself was the "250 distinct patterns" report). Each list element is
an object of its own with the same cap; the number of elements is not capped (10,000 work)."""

MAX_NODE_CHILDREN = 511
"""Distinct tests directly below one alpha node; with 512, create_ruleset never returns (so a
ruleset of 512 rules on distinct fields hangs the loader)."""

MAX_NEX_CHILDREN = 127
"""`$nex` tests directly below one alpha node: with 128, create_ruleset succeeds but asserting a
fact segfaults (even when none of them passes); 129 usually make create_ruleset fail, error 107 (past
the limit, undefined: the same unchecked read as MAX_NODE_RULES)."""

MAX_NODE_RULES = 255
"""Durable rules ending at one alpha node: 256 always-true rules (all on the marker) are accepted
but asserting a fact segfaults; 257 usually make create_ruleset fail, error 108, but not always: rete.c
checks the list's length only after reading one entry past its end, in memory realloc() left
uninitialised, so past this limit what happens is undefined (the compiler never goes there)."""

MAX_STRING_BYTES = 65535
"""String values are compared over a 16-bit length: a value or literal of 65,536 bytes or more
compares as its length modulo 65,536, so 'b' + 'x' * 65535 == 'b' is true."""

# ---- The facade's own limits, chosen inside the measured ones --------------------------------

MAX_TERMS_PER_CHUNK = 64
"""Durable rules (terms) per chunk: pending nodes <= terms <= DURABLE_STACK; per node at most
64 children and 64 + 1 rules (the sentinel), far below the other caps."""

MAX_TERMS_PER_RULE = 256
"""Conjunctions one rule's condition may expand to (it may span 4 chunks); more is refused."""

MAX_LITERAL_CHARS = 4096
"""Longest string literal a rule may compare with. Posted strings longer than that are cut to
POSTED_STRING_CHARS characters: they equal no literal before or after the cut, and at most
6 bytes a character (JSON escapes) they stay below MAX_STRING_BYTES."""

POSTED_STRING_CHARS = MAX_LITERAL_CHARS + 1

assert min(DURABLE_STACK, MAX_NEX_CHILDREN, MAX_NODE_CHILDREN, MAX_NODE_RULES - 1) >= MAX_TERMS_PER_CHUNK
assert POSTED_STRING_CHARS * 6 <= MAX_STRING_BYTES

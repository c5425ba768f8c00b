"""`matches`: Python `re.search` semantics, evaluated by the facade, not by durable_rules.

durable_rules 2.0.28 has its own regex matcher (`$mt`, whole-string match). Measured
here, it gives wrong answers for ordinary patterns once they are padded with `.*`
for search semantics: `.*([ab]b).*` does not match "abb", `.*((b|ab)).*` does not
match "baa", `.*[^a].*` does not match "ab"; escapes such as `\\d` are silently
mis-read. So patterns are full Python `re` syntax, validated at load time, and
evaluated in Python; the compiled durable condition only tests the boolean result
(see compiler.py). Everything else in a condition is still decided by durable.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1024)
def compile_pattern(source: str) -> re.Pattern[str]:
    """Compile `source`, raising ValueError with a message fit for a rule error."""
    if not isinstance(source, str) or source == "":
        raise ValueError("regex must be a non-empty string")
    try:
        return re.compile(source)
    except re.error as exc:
        raise ValueError(f"regex {source!r} does not compile: {exc}") from None


def search(source: str, text: str) -> bool:
    return compile_pattern(source).search(text) is not None

"""`matches`: a regular expression searched in a text field, evaluated by the facade with RE2.

durable_rules 2.0.28 has its own regex matcher (`$mt`, whole-string match). Measured
here, it gives wrong answers for ordinary patterns once they are padded with `.*`
for search semantics: `.*([ab]b).*` does not match "abb", `.*((b|ab)).*` does not
match "baa", `.*[^a].*` does not match "ab"; escapes such as `\\d` are silently
mis-read. So patterns are validated at load time and evaluated in Python; the
compiled durable condition only tests the boolean result (see compiler.py).
Everything else in a condition is still decided by durable.

The text searched comes from payloads (an e-mail, a note), so a pattern must not be able to stall the
worker: Python's backtracking `re` takes time exponential in the text for `^(a+)+$` (30 `a`s and a `!`:
over a minute). Patterns are compiled and searched by RE2 (google-re2), whose time is linear in the text,
and the text is cut to MAX_TEXT characters. RE2 has no backreferences (`\\1`) and no lookaround
(`(?=...)`, `(?<=...)`): a rule using them is refused at load, naming file, line and rule. Otherwise
the syntax is Python's (`re.search`), with these differences: `\\d`, `\\w`, `\\s` and `\\b` are ASCII, and
case-insensitive matching `(?i)` folds simple cases only.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

# Characters of a text a pattern is searched in: beyond them nothing is looked at.
MAX_TEXT = 10_000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False    # a pattern refused is reported as a rule error, not printed by the library


@functools.lru_cache(maxsize=1024)
def compile_pattern(source: str) -> Any:
    """Compile `source`, raising ValueError with a message fit for a rule error."""
    if not isinstance(source, str) or source == "":
        raise ValueError("regex must be a non-empty string")
    try:
        re.compile(source)     # Python's messages for plain syntax errors are the clearer
    except re.error as exc:
        raise ValueError(f"regex {source!r} does not compile: {exc}") from None
    try:
        return re2.compile(source, _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"regex {source!r} cannot be searched in linear time ({why}): backreferences and "
                         "lookaround are not supported in rules") from None


def search(source: str, text: str) -> bool:
    return compile_pattern(source).search(text[:MAX_TEXT]) is not None

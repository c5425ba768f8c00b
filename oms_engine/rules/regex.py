"""The regular-expression dialect shared by Python `re` and durable_rules.

durable_rules compiles patterns with its own small matcher: it always matches the
whole string, silently mis-handles escapes (`\\d`, `\\.`), anchors and `(?...)`,
and accepts some patterns Python rejects. So a pattern must belong to a subset
that both engines read the same way:

  literals, `.`, classes `[a-z0-9_-]` (no escapes, no `[^...]`: durable
  mis-matches negated classes after `.*`; `-` only in a range or last),
  groups `( )`, alternation `|`, quantifiers `* + ? {m} {m,} {m,n}`, and
  `^` / `$` only at the very start / end of a pattern without top-level `|`.

`matches` means Python `re.search`: unanchored sides are padded with `.*` for
durable_rules' full-match semantics. A trailing `$` means end of text (like `\\Z`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_META = set(".^$*+?{}[]()|\\")


@dataclass(frozen=True)
class Pattern:
    source: str
    core: str
    anchored_start: bool
    anchored_end: bool

    def durable(self) -> str:
        start = "" if self.anchored_start else ".*"
        end = "" if self.anchored_end else ".*"
        return f"{start}({self.core}){end}"

    def python(self) -> str:
        start = "^" if self.anchored_start else ""
        end = r"\Z" if self.anchored_end else ""
        return f"{start}(?:{self.core}){end}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> ValueError:
        return ValueError(f"regex {self.text!r}: {message} (at position {self.pos})")

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def alternation(self) -> int:
        branches = 1
        self.sequence()
        while self.peek() == "|":
            self.pos += 1
            branches += 1
            self.sequence()
        return branches

    def sequence(self) -> None:
        count = 0
        while (ch := self.peek()) is not None and ch not in "|)":
            self.atom()
            self.quantifier()
            count += 1
        if count == 0:
            raise self.fail("empty alternative or group")

    def atom(self) -> None:
        ch = self.peek()
        assert ch is not None
        if ch == "\\":
            raise self.fail("escapes are not supported by the rule engine; use a class such as [0-9] or [.]")
        if ch in "^$":
            raise self.fail(f"'{ch}' is only allowed at the very start/end of the pattern")
        if ch == "(":
            self.pos += 1
            if self.peek() == "?":
                raise self.fail("'(?...)' groups are not supported")
            self.alternation()
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            return
        if ch == "[":
            self.char_class()
            return
        if ch in "*+?{":
            raise self.fail(f"nothing to repeat before '{ch}'")
        if ch in "]}":
            raise self.fail(f"unbalanced '{ch}'")
        self.pos += 1

    def char_class(self) -> None:
        self.pos += 1
        if self.peek() == "^":
            # durable's DFA mis-handles negated classes after `.*` (".*[^a]" fails on "ab").
            raise self.fail("negated classes [^...] are not supported by the rule engine")
        items = 0
        while True:
            ch = self.peek()
            if ch is None:
                raise self.fail("missing ']'")
            if ch == "]":
                if items == 0:
                    raise self.fail("empty character class")
                self.pos += 1
                return
            if ch in "\\[":
                raise self.fail(f"'{ch}' inside a character class is not supported")
            if ch == "-":
                if self.text[self.pos + 1 : self.pos + 2] != "]" or items == 0:
                    raise self.fail("'-' in a class must be a range or the last character")
                self.pos += 1
                items += 1
                continue
            self.pos += 1
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                low = ch
                self.pos += 1
                high = self.peek()
                assert high is not None
                if high in "\\[]":
                    raise self.fail("bad range in character class")
                if ord(high) < ord(low):
                    raise self.fail(f"bad range {low}-{high}")
                self.pos += 1
            items += 1

    def quantifier(self) -> None:
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.pos += 1
        elif ch == "{":
            match = re.compile(r"\{(\d+)(,(\d*))?\}").match(self.text, self.pos)
            if not match:
                raise self.fail("bad '{m,n}' repetition")
            low = int(match.group(1))
            high = match.group(3)
            if high and int(high) < low:
                raise self.fail("bad '{m,n}' repetition")
            self.pos = match.end()
        else:
            return
        if self.peek() in ("*", "+", "?", "{"):
            raise self.fail("multiple repeat (lazy or nested quantifiers are not supported)")


@functools.lru_cache(maxsize=1024)
def parse_pattern(source: str) -> Pattern:
    """Validate `source` against the shared dialect; raise ValueError with a readable message."""
    if not isinstance(source, str) or source == "":
        raise ValueError("regex must be a non-empty string")
    try:
        re.compile(source)
    except re.error as exc:
        raise ValueError(f"regex {source!r} does not compile: {exc}") from None
    core = source
    start = core.startswith("^")
    if start:
        core = core[1:]
    end = core.endswith("$")
    if end:
        core = core[:-1]
    parser = _Parser(core)
    branches = parser.alternation()
    if parser.pos != len(core):
        raise parser.fail("unbalanced ')'")
    if branches > 1 and (start or end):
        raise ValueError(f"regex {source!r}: wrap alternatives in ( ) when using ^ or $")
    return Pattern(source=source, core=core, anchored_start=start, anchored_end=end)


def search(pattern: Pattern, text: str) -> bool:
    return re.search(pattern.python(), text) is not None

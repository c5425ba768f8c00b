"""Safe YAML loading that remembers the line of every node.

Error messages must point staff at the exact line, so instead of `yaml.safe_load`
we compose the node graph and build plain containers that carry their marks.
Only the SafeLoader constructors are used: a `!!python/...` tag cannot be
constructed and becomes an ordinary error. Anchors and aliases (`&a`, `*a`) are
refused: a 495-byte "billion laughs" file of nested aliases took 18.7 s and 1.1 GB
to load, and hand-written rules and settings never need them. Nesting deeper than
Python's recursion limit is an error too, not a crash.

`load_plain` gives the same guarantees with plain dicts and lists, for the
other YAML files of the project (config.yaml, the status map).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class YamlProblem(Exception):
    """A YAML syntax or tag problem with its 1-based line (and file, when known)."""

    def __init__(self, line: int | None, message: str, *, filename: str | None = None) -> None:
        self.line = line
        self.message = message
        self.filename = filename
        super().__init__(message)

    def __str__(self) -> str:
        if self.filename is None:
            return self.message
        where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        return f"{where}: {self.message}"


class LMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each value."""

    line: int
    value_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.value_lines.get(key, self.line)


class LList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


def _line(node: yaml.Node | yaml.Event) -> int:
    return node.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases while composing, before anything expands."""

    def __init__(self, text: str, sink: list[YamlProblem]) -> None:
        super().__init__(text)
        self.sink = sink
        self.refused_lines: set[int] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self.get_event()
            self._refuse(event, f"YAML alias '*{event.anchor}' is not allowed")
            return yaml.ScalarNode("tag:yaml.org,2002:null", "", event.start_mark, event.end_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._refuse(event, f"YAML anchor '&{anchor}' is not allowed")
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def _refuse(self, event: yaml.Event, message: str) -> None:
        line = _line(event)
        if line not in self.refused_lines:  # one per line: a bomb repeats them many times
            self.refused_lines.add(line)
            self.sink.append(YamlProblem(line, f"{message}: write the value out where it is needed"))


@dataclass(frozen=True)
class _Style:
    located: bool  # LMap/LList with lines, or plain dict/list
    string_keys: bool


_LOCATED = _Style(located=True, string_keys=True)
_PLAIN = _Style(located=False, string_keys=False)


def load_located(text: str, problems: list[YamlProblem] | None = None) -> Any:
    """Parse one YAML document into LMap/LList/scalars.

    Syntax errors raise YamlProblem. Node-level problems (duplicate keys, python tags,
    anchors and aliases) are appended to `problems` so every one of them can be reported;
    the offending value becomes None. Without a `problems` list the first one is raised.
    """
    return _load(text, problems, _LOCATED)


def load_plain(text: str, *, filename: str) -> Any:
    """Parse one YAML document into plain dicts, lists and scalars (safe constructors only).

    Refuses anchors and aliases, duplicate keys and tags other than plain data; raises
    YamlProblem with the line (and `filename` in its text) for the first problem.
    """
    try:
        return _load(text, None, _PLAIN)
    except YamlProblem as exc:
        raise YamlProblem(exc.line, exc.message, filename=filename) from None


def _load(text: str, problems: list[YamlProblem] | None, style: _Style) -> Any:
    sink: list[YamlProblem] = [] if problems is None else problems
    try:
        loader = _Loader(text, sink)
    except yaml.reader.ReaderError as exc:
        # The reader checks every character before parsing starts: a control character anywhere stops it.
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise YamlProblem(line, f"invalid YAML: the control character {char} is not allowed in YAML text") from None
    try:
        try:
            root = loader.get_single_node()
            if root is None:
                return None
            tree = _build(loader, root, sink, style)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise YamlProblem(line, f"invalid YAML: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise YamlProblem(None, f"invalid YAML: {exc}") from None
        except RecursionError:
            raise YamlProblem(None, "invalid YAML: nested too deeply") from None
        if problems is None and sink:
            raise sink[0]
        return tree
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, sink: list[YamlProblem], style: _Style) -> Any:
    if isinstance(node, yaml.MappingNode):
        if not _tag_ok(node, "tag:yaml.org,2002:map", sink):
            return None
        return _build_map(loader, node, sink, style)
    if isinstance(node, yaml.SequenceNode):
        if not _tag_ok(node, "tag:yaml.org,2002:seq", sink):
            return None
        items = [_build(loader, item, sink, style) for item in node.value]
        if not style.located:
            return items
        seq = LList(items)
        seq.line = _line(node)
        seq.item_lines = [_line(item) for item in node.value]
        return seq
    if node.tag not in _PLAIN_SCALARS:
        # SafeLoader would still build bytes (!!binary) or a merge key; settings are plain data.
        sink.append(YamlProblem(_line(node), f"unsupported YAML tag {node.tag!r} (only plain data is allowed)"))
        return None
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        sink.append(YamlProblem(_line(node), f"unsupported YAML tag {node.tag!r} (only plain data is allowed)"))
    except (ValueError, TypeError) as exc:
        sink.append(YamlProblem(_line(node), f"invalid YAML value: {exc}"))
    return None


_PLAIN_SCALARS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
)


def _tag_ok(node: yaml.Node, expected: str, sink: list[YamlProblem]) -> bool:
    # Python tags on collections (e.g. !!python/object) must never be executed.
    if node.tag == expected:
        return True
    sink.append(YamlProblem(_line(node), f"unsupported YAML tag {node.tag!r} (only plain data is allowed)"))
    return False


def _build_map(loader: yaml.SafeLoader, node: yaml.MappingNode, sink: list[YamlProblem], style: _Style) -> Any:
    result: dict[Any, Any] = LMap() if style.located else {}
    value_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = _build(loader, key_node, sink, style)
        if style.string_keys and not isinstance(key, str):
            # Unquoted `yes`/`1` keys would silently become bools/ints; keys are names.
            sink.append(YamlProblem(_line(key_node), f"mapping key {key!r} must be a string"))
            continue
        if not style.string_keys and (isinstance(key, list | dict) or not isinstance(key_node, yaml.ScalarNode)):
            sink.append(YamlProblem(_line(key_node), "mapping keys must be plain values"))
            continue
        if key in result:
            # YAML would silently keep the last one; a lost condition must be reported.
            sink.append(YamlProblem(_line(key_node), f"duplicate key {_key_text(key)}"))
            continue
        result[key] = _build(loader, value_node, sink, style)
        # The key's line is where staff look for `field: value` problems.
        value_lines[key] = _line(key_node)
    if isinstance(result, LMap):
        result.line = _line(node)
        result.value_lines = value_lines
    return result


def _key_text(key: Any) -> str:
    return f"'{key}'" if isinstance(key, str) else repr(key)

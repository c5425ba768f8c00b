"""Safe YAML loading that remembers the line of every node.

Error messages must point staff at the exact line, so instead of `yaml.safe_load`
we compose the node graph and build plain containers that carry their marks.
Only the SafeLoader constructors are used: a `!!python/...` tag cannot be
constructed and becomes an ordinary error.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlProblem(Exception):
    """A YAML syntax or tag problem with its 1-based line."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(message)


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


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def load_located(text: str, problems: list[YamlProblem] | None = None) -> Any:
    """Parse one YAML document into LMap/LList/scalars.

    Syntax errors raise YamlProblem. Node-level problems (duplicate keys, python tags)
    are appended to `problems` so every one of them can be reported; the offending
    value becomes None. Without a `problems` list the first one is raised.
    """
    sink: list[YamlProblem] = [] if problems is None else problems
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise YamlProblem(line, f"invalid YAML: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise YamlProblem(None, f"invalid YAML: {exc}") from None
        if root is None:
            return None
        tree = _build(loader, root, sink)
        if problems is None and sink:
            raise sink[0]
        return tree
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, sink: list[YamlProblem]) -> Any:
    if isinstance(node, yaml.MappingNode):
        if not _tag_ok(node, "tag:yaml.org,2002:map", sink):
            return None
        return _build_map(loader, node, sink)
    if isinstance(node, yaml.SequenceNode):
        if not _tag_ok(node, "tag:yaml.org,2002:seq", sink):
            return None
        seq = LList()
        seq.line = _line(node)
        seq.item_lines = []
        for item in node.value:
            seq.append(_build(loader, item, sink))
            seq.item_lines.append(_line(item))
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        sink.append(YamlProblem(_line(node), f"unsupported YAML tag {node.tag!r} (only plain data is allowed)"))
    except (ValueError, TypeError) as exc:
        sink.append(YamlProblem(_line(node), f"invalid YAML value: {exc}"))
    return None


def _tag_ok(node: yaml.Node, expected: str, sink: list[YamlProblem]) -> bool:
    # Python tags on collections (e.g. !!python/object) must never be executed.
    if node.tag == expected:
        return True
    sink.append(YamlProblem(_line(node), f"unsupported YAML tag {node.tag!r} (only plain data is allowed)"))
    return False


def _build_map(loader: yaml.SafeLoader, node: yaml.MappingNode, sink: list[YamlProblem]) -> LMap:
    result = LMap()
    result.line = _line(node)
    result.value_lines = {}
    for key_node, value_node in node.value:
        key = _build(loader, key_node, sink)
        if not isinstance(key, str):
            # Unquoted `yes`/`1` keys would silently become bools/ints; keys are names.
            sink.append(YamlProblem(_line(key_node), f"mapping key {key!r} must be a string"))
            continue
        if key in result:
            # YAML would silently keep the last one; a lost condition must be reported.
            sink.append(YamlProblem(_line(key_node), f"duplicate key '{key}'"))
            continue
        result[key] = _build(loader, value_node, sink)
        # The key's line is where staff look for `field: value` problems.
        result.value_lines[key] = _line(key_node)
    return result

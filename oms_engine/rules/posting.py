"""What one evaluation posts to one chunk: the fields it reads, its flags, list lengths, within the limits.

Flags (`matches`, membership) are computed once per evaluation and shared by
the chunks; long strings are cut so durable compares them exactly (limits.py).
"""

from __future__ import annotations

from typing import Any

from .compiler import Chunk
from .facts import MISSING
from .limits import MAX_LITERAL_CHARS, POSTED_STRING_CHARS
from .regex import search
from .terms import COUNTS_KEY, DATA_KEY, MATCHES_KEY, Flag


class FlagValues:
    """The flags of one evaluation, computed on first use and shared by the chunks."""

    def __init__(self, names: dict[Flag, str], doc: dict[str, Any]) -> None:
        self.names = names
        self.doc = doc
        self._top: dict[str, bool] | None = None
        self._items: dict[str, list[dict[str, bool]]] = {}

    def top(self) -> dict[str, bool]:
        if self._top is None:
            scoped = [(name, flag) for flag, name in self.names.items() if flag.scope is None]
            self._top = _flags_for(scoped, self.doc)
        return self._top

    def items(self, list_path: str, elements: list[Any]) -> list[dict[str, bool]]:
        if list_path not in self._items:
            scoped = [(name, flag) for flag, name in self.names.items() if flag.scope == list_path]
            self._items[list_path] = [_flags_for(scoped, element) for element in elements]
        return self._items[list_path]


def _flags_for(flags: list[tuple[str, Flag]], record: Any) -> dict[str, bool]:
    out = {}
    for name, flag in flags:
        value = _get(record, flag.path)
        if value is not MISSING:  # absent flag = unknown, as for any missing field
            out[name] = search(flag.value, value) if flag.op == "matches" else value in flag.value
    return out


def _get(doc: Any, path: str) -> Any:
    # prepare_facts builds plain dicts without nulls: cheaper than facts.lookup's Mapping checks.
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict):
            return MISSING
        node = node.get(part, MISSING)
        if node is MISSING:
            return MISSING
    return node


def post_document(chunk: Chunk, doc: dict[str, Any], flags: FlagValues) -> dict[str, Any]:
    """The part of `doc` one chunk reads, shaped to stay inside durable's limits."""
    data = _project(doc, chunk.fields)
    out: dict[str, Any] = {DATA_KEY: data}
    counts: dict[str, int] = {}
    for post in chunk.lists:
        items = _get(doc, post.path)
        elements = items if isinstance(items, list) else []
        if post.count_key is not None:
            counts[post.count_key] = len(elements)
        if post.elements and isinstance(items, list):
            all_flags = flags.items(post.path, elements) if post.flags else []
            posted = []
            for i, element in enumerate(elements):
                item = _project(element, post.fields)
                if post.flags:
                    item[MATCHES_KEY] = {name: all_flags[i][name] for name, _ in post.flags if name in all_flags[i]}
                posted.append(item)
            _put(data, post.path, posted)
    if counts:
        out[COUNTS_KEY] = counts
    if chunk.flags:
        top = flags.top()
        out[MATCHES_KEY] = {name: top[name] for name, _ in chunk.flags if name in top}
    return out


def _project(source: Any, fields: tuple[tuple[str, bool], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, has_children in fields:
        value = _get(source, path)
        if value is MISSING:
            continue
        if isinstance(value, str):
            if len(value) > MAX_LITERAL_CHARS:
                # Equal to no literal either way; durable mis-compares strings of 64 KiB and more.
                value = value[:POSTED_STRING_CHARS]
        elif isinstance(value, dict):
            # Only presence is tested (`exists`) or the object leads to read fields: never post
            # its own content, which could be any size.
            value = {} if has_children else True
        elif isinstance(value, list):
            value = True  # `exists` on a list of scalars; quantified lists are posted apart
        if "." in path:
            _put(out, path, value)
        else:
            out[path] = value
    return out


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value

"""The YAML status map: external WMS and carrier statuses -> OMS events.

```yaml
wms:
  ACCEPTED:  {event: wms_accept}
  SHIPPED:   {event: ship, customer_visible: true, label: Shipped}
carrier:
  SIGNED:    {event: deliver, customer_visible: true, label: Delivered}
```
A status missing from the map is rejected (stored in the inbox with the
reason), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .states import Event


class StatusMapError(Exception):
    pass


@dataclass(frozen=True)
class StatusEntry:
    event: Event
    customer_visible: bool
    label: str


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping_with_lines(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_lines)


def load_status_map(path: Path) -> dict[str, dict[str, StatusEntry]]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise StatusMapError(f"{path}:{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise StatusMapError(f"{path}:1: expected a mapping of 'wms' and 'carrier'")
    data.pop("__line__", None)
    out: dict[str, dict[str, StatusEntry]] = {}
    known = {e.value for e in Event}
    for kind, entries in data.items():
        if kind not in ("wms", "carrier") or not isinstance(entries, dict):
            raise StatusMapError(f"{path}: '{kind}' must be 'wms' or 'carrier' with a mapping of statuses")
        kind_line = entries.pop("__line__", 1)
        out[kind] = {}
        for status, entry in entries.items():
            line = entry.get("__line__", kind_line) if isinstance(entry, dict) else kind_line
            if not isinstance(entry, dict) or "event" not in entry:
                raise StatusMapError(f"{path}:{line}: status '{status}' needs an 'event'")
            extra = set(entry) - {"event", "customer_visible", "label", "__line__"}
            if extra:
                raise StatusMapError(f"{path}:{line}: status '{status}': unknown key(s) {', '.join(sorted(extra))}")
            if entry["event"] not in known:
                raise StatusMapError(f"{path}:{line}: status '{status}': unknown event '{entry['event']}'")
            out[kind][str(status)] = StatusEntry(Event(entry["event"]), bool(entry.get("customer_visible", False)),
                                                 str(entry.get("label", status)))
    return out

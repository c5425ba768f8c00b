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

from ..errors import OmsError
from ..orders.machine import Event
from ..plugin.contracts import Connector
from ..rules.yaml_source import LMap, YamlProblem, load_located


class StatusMapError(OmsError):
    pass


@dataclass(frozen=True)
class StatusEntry:
    event: Event
    customer_visible: bool
    label: str


KINDS = ("wms", "carrier")
ENTRY_KEYS = ("event", "customer_visible", "label")


class StatusMap:
    def __init__(self, entries: dict[str, dict[str, StatusEntry]]) -> None:
        self.entries = entries

    def entry(self, connector: Connector, status: str) -> StatusEntry:
        try:
            return self.entries[connector.kind][status]
        except KeyError:
            raise LookupError(f"status '{status}' from {connector.kind} '{connector.name}' "
                              "is not in the status map") from None


def load_status_map(path: Path) -> StatusMap:
    try:
        data = load_located(path.read_text(encoding="utf-8"))
    except YamlProblem as exc:
        raise StatusMapError(f"{path}:{exc.line or 1}: {exc.message}") from None
    except OSError as exc:
        raise StatusMapError(f"{path}: {exc.strerror}") from None
    if not isinstance(data, LMap):
        raise StatusMapError(f"{path}:1: expected a mapping of 'wms' and 'carrier'")
    out: dict[str, dict[str, StatusEntry]] = {}
    known = {e.value for e in Event}
    for kind, entries in data.items():
        if kind not in KINDS or not isinstance(entries, LMap):
            raise StatusMapError(f"{path}:{data.line_of(kind)}: '{kind}' must be 'wms' or 'carrier' "
                                 "with a mapping of statuses")
        out[kind] = {}
        for status, entry in entries.items():
            line = entries.line_of(status)
            if not isinstance(entry, LMap) or "event" not in entry:
                raise StatusMapError(f"{path}:{line}: status '{status}' needs an 'event'")
            extra = set(entry) - set(ENTRY_KEYS)
            if extra:
                raise StatusMapError(f"{path}:{line}: status '{status}': unknown key(s) {', '.join(sorted(extra))}")
            if entry["event"] not in known:
                raise StatusMapError(f"{path}:{line}: status '{status}': unknown event '{entry['event']}'")
            out[kind][str(status)] = StatusEntry(Event(entry["event"]), bool(entry.get("customer_visible", False)),
                                                 str(entry.get("label", status)))
    return StatusMap(out)

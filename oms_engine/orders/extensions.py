"""Fitting a channel's own fields into what an order keeps of them, for adapters (canonical.py: Extensions).

The canonical model refuses extension fields it cannot store and more than
:data:`~oms_engine.orders.canonical.MAX_EXTENSION_BYTES` of them; an adapter
keeps what it can instead of refusing the order. :func:`fit_extensions` applies
the model's own rules, so nothing it lets through is refused and nothing the
model would take is left out: a field the model would refuse is left out, then
the largest (``protected`` ones last) until the rest fits with room for the
note, and what was left out is named under :data:`NOT_KEPT` (all of it stays in
the raw payload).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from .canonical import MAX_EXTENSION_BYTES, extension_problem, shown

NOT_KEPT = "not_kept"
# Of MAX_EXTENSION_BYTES, kept for the note: at most 11 entries of 150 characters.
NOTE_ROOM = 2_048
NOTES = 10


def json_size(value: object) -> int:
    """Bytes of ``value`` as the model measures extensions: compact JSON in UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def fit_extensions(entries: Mapping[str, Any], *, protected: Collection[str] = ()) -> dict[str, Any]:
    """``entries`` as the canonical model keeps them; what was left out is named under ``not_kept``."""
    kept: dict[str, Any] = {}
    left_out: list[str] = []
    for key, value in entries.items():
        if extension_problem({key: None}, 0):
            left_out.append(f"{shown(key, 30)}: the name is not 1 to 64 characters that can be stored")
        elif problem := extension_problem(value, 1):
            left_out.append(f"{shown(key, 30)}: {problem}")
        else:
            kept[key] = value
    room = MAX_EXTENSION_BYTES - NOTE_ROOM
    total = json_size(kept)
    if total > room:
        sizes = {key: json_size({key: value}) for key, value in kept.items()}
        while kept and total > room:
            key = max([k for k in kept if k not in protected] or kept, key=lambda k: sizes[k])
            left_out.append(f"{key}: {sizes[key]:,} bytes, past the {MAX_EXTENSION_BYTES:,} the order keeps")
            del kept[key]
            total = json_size(kept)
    if left_out:
        notes = [note[:150] for note in left_out[:NOTES]]
        if len(left_out) > NOTES:
            notes.append(f"and {len(left_out) - NOTES} more")
        kept[NOT_KEPT] = [*notes, "all of it is in the raw payload"]
    return kept

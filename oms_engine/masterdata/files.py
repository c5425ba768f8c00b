"""Reading a master-data file: CSV or JSON, row by row, each row with where it came from.

CSV: UTF-8 (a byte-order mark is allowed), a header row, one record per row,
rows numbered as the file's lines (the header is line 1). A header with a dot
names a field of a nested object: ``address.postcode`` or ``attributes.category``;
in those, ``true`` and ``false`` are booleans, everything else text. A list
field (``capabilities``, ``regions``) is one cell, its items separated by
``;``. An empty cell is a field not given (its default applies).

JSON: a list of objects (or ``{"items": [...]}``), rows numbered from 1 in
list order, read with the project's strict JSON reader (duplicate keys, NaN
and the like are refused).

Either way a row is a plain dict; the entity's schema (entities.py) checks it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OmsError
from ..strict_json import JsonRejected, loads

MAX_FILE_BYTES = 200 * 1024 * 1024


class FileUnreadable(OmsError):
    pass


@dataclass(frozen=True)
class Row:
    where: str          # "products.csv:12" or "products.json:row 3"
    data: dict[str, Any]
    error: str | None = None   # the row could not be read as a record at all (a bad row, like any other)


def read_rows(path: Path | str, *, name: str | None = None, body: bytes | None = None) -> list[Row]:
    """The rows of a CSV or JSON file (by its suffix, or ``name``'s); FileUnreadable when it is neither."""
    path = Path(path)
    label = name or path.name
    if body is None:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise FileUnreadable(f"{label}: over the limit of {MAX_FILE_BYTES:,} bytes")
            body = path.read_bytes()
        except OSError as exc:
            raise FileUnreadable(f"{label}: {exc.strerror or exc}") from None
    suffix = Path(label).suffix.lower()
    if suffix == ".csv":
        return _csv_rows(body, label)
    if suffix == ".json":
        return _json_rows(body, label)
    raise FileUnreadable(f"{label}: a master-data file is .csv or .json")


def _csv_rows(body: bytes, label: str) -> list[Row]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileUnreadable(f"{label}: not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileUnreadable(f"{label}: empty file (a header row is needed)") from None
    except csv.Error as exc:
        raise FileUnreadable(f"{label}:1: {exc}") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise FileUnreadable(f"{label}:1: the header row is empty")
    seen: set[str] = set()
    for h in header:
        if not h:
            raise FileUnreadable(f"{label}:1: a column has no name")
        if h in seen:
            raise FileUnreadable(f"{label}:1: column '{h}' appears twice")
        seen.add(h)
    rows: list[Row] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue   # blank line
            where = f"{label}:{line}"
            if len(cells) != len(header):
                rows.append(Row(where, {}, f"{len(cells)} cells, the header has {len(header)}"))
                continue
            rows.append(Row(where, _nest(header, cells)))
    except csv.Error as exc:
        raise FileUnreadable(f"{label}:{reader.line_num}: {exc}") from None
    return rows


def _nest(header: list[str], cells: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, raw in zip(header, cells, strict=True):
        value = raw.strip()
        if value == "":
            continue
        if "." in name:
            head, _, tail = name.partition(".")
            data.setdefault(head, {})[tail] = {"true": True, "false": False}.get(value.lower(), value)
        else:
            data[name] = value
    return data


def _json_rows(body: bytes, label: str) -> list[Row]:
    try:
        data = loads(body)
    except JsonRejected as exc:
        raise FileUnreadable(f"{label}: {exc}") from None
    if isinstance(data, dict) and set(data) == {"items"}:
        data = data["items"]
    if not isinstance(data, list):
        raise FileUnreadable(f"{label}: a JSON master-data file is a list of objects")
    rows: list[Row] = []
    for i, item in enumerate(data, start=1):
        where = f"{label}:row {i}"
        if not isinstance(item, dict):
            rows.append(Row(where, {}, f"an object is needed, got {type(item).__name__}"))
            continue
        rows.append(Row(where, item))
    return rows
